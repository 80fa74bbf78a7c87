import { TetherClient } from '@tether/client';

/** What one client of the fleet did. */
export interface ClientRecord {
  clientId: string;
  /** Values handed to `send()`, in order. */
  sent: string[];
  /** Values whose `send()` resolved, with the receipt's id. */
  resolved: Map<string, string>;
  /** Values whose `send()` rejected, with the code. */
  rejected: Map<string, string>;
  /** Server messages as the application received them. */
  received: { value: string; id: string; redelivered: boolean; at: number }[];
  /** Sessions the client had to open anew after having one (a session the cluster lost). */
  sessionsLost: number;
  /** Wall-clock times of every WELCOME (first, resumes). */
  welcomes: number[];
}

/** Settings of a {@link Fleet}. */
export interface FleetOptions {
  port: number;
  count: number;
  /** Messages each client sends per second. */
  ratePerClient: number;
  /** Most unresolved sends per client at once (the rest wait for a turn). */
  maxPending: number;
  pingIntervalMs: number;
  deadAfterMs: number;
  /** Client ids are `${prefix}${i}`. */
  prefix: string;
}

/**
 * Clients that connect through the proxy and send steadily while the cluster is hurt; each
 * records what it sent, what resolved and what it received, for the checks.
 */
export class Fleet {
  readonly records: ClientRecord[] = [];
  readonly #clients: TetherClient[] = [];
  readonly #options: FleetOptions;
  readonly #pending: Set<Promise<unknown>>[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: FleetOptions) {
    this.#options = options;
    for (let i = 0; i < options.count; i++) {
      const clientId = `${options.prefix}${i}`;
      const record: ClientRecord = {
        clientId,
        sent: [],
        resolved: new Map(),
        rejected: new Map(),
        received: [],
        sessionsLost: 0,
        welcomes: [],
      };
      const client = new TetherClient({
        port: options.port,
        clientId,
        pingIntervalMs: options.pingIntervalMs,
        deadAfterMs: options.deadAfterMs,
        backoff: { minDelayMs: 50, maxDelayMs: 1000 },
        connectTimeoutMs: 5000,
      });
      client.on('message', (message) =>
        record.received.push({
          value: message.text(),
          id: message.id,
          redelivered: message.redelivered,
          at: Date.now(),
        }),
      );
      client.on('session', (info) => {
        record.welcomes.push(Date.now());
        if (info.lost) record.sessionsLost++;
      });
      client.on('error', () => {});
      this.records.push(record);
      this.#clients.push(client);
      this.#pending.push(new Set());
    }
  }

  /** Connects every client (a few at a time) and starts sending. */
  async start(): Promise<void> {
    for (let i = 0; i < this.#clients.length; i += 20) {
      await Promise.all(this.#clients.slice(i, i + 20).map((client) => client.connect()));
    }
    const { ratePerClient, count } = this.#options;
    // One tick sends for a slice of the clients, so sends spread over the second.
    const tickMs = 20;
    const perTick = (ratePerClient * count * tickMs) / 1000;
    let carry = 0;
    let next = 0;
    this.#timer = setInterval(() => {
      carry += perTick;
      while (carry >= 1) {
        carry--;
        this.#sendOne(next);
        next = (next + 1) % count;
      }
    }, tickMs);
  }

  /** Clients currently connected. */
  connectedCount(): number {
    return this.#clients.filter((client) => client.state === 'connected').length;
  }

  /** Stops sending; resolves when every send settled or `timeoutMs` passed. */
  async stopSending(timeoutMs: number): Promise<boolean> {
    clearInterval(this.#timer);
    const all = this.#pending.flatMap((set) => [...set]);
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled(all).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return settled;
  }

  /** Closes every client. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#clients.map((client) => client.close()));
  }

  #sendOne(index: number): void {
    const client = this.#clients[index] as TetherClient;
    const record = this.records[index] as ClientRecord;
    const pending = this.#pending[index] as Set<Promise<unknown>>;
    if (pending.size >= this.#options.maxPending) return;
    const value = `${record.clientId}:${record.sent.length}`;
    record.sent.push(value);
    const sent = client.send(value).then(
      (receipt) => {
        record.resolved.set(value, receipt.id);
      },
      (error: { code?: string }) => {
        record.rejected.set(value, error.code ?? 'unknown');
      },
    );
    pending.add(sent);
    void sent.finally(() => pending.delete(sent));
  }
}
