// The adapter interface every system under test implements: one file per system in bench/systems.
import { BARRIER_LENGTH, barrier, parseBarrier } from '../lib/common.js';

export type Reply = (data: Buffer) => void;
export type Handler = (data: Buffer, reply: Reply) => void;

export interface ServerOptions {
  handler: Handler;
  tls?: { cert: string; key: string } | undefined;
  uploadDir?: string | undefined;
  /** Tether only: the server's dashboard on (port 0), nobody watching it here. */
  dashboard?: boolean | undefined;
  /**
   * Called when the server side can no longer be measured as asked after it started (the
   * `tether-watched` watcher lost the dashboard): the worker reports it and exits.
   */
  onFailure?: ((error: Error) => void) | undefined;
}

export interface ServerSide {
  port: number;
  /** The process whose memory counts as the server's (the broker for NATS). */
  memoryPid: number;
  /** Processes of the server side besides the worker (nats-server), whose CPU counts too. */
  helpers: { name: string; pid: number }[];
  /** The dashboard's port, when it was asked for (`ServerOptions.dashboard`). */
  dashboardPort?: number | undefined;
  close(): Promise<void>;
  /**
   * Heartbeat frames the server received so far (PINGs it answered, PONGs to its own PINGs): one
   * per heartbeat exchange. Only for systems with heartbeats they count (idle-connections).
   */
  heartbeatFrames?(): number;
}

export interface ClientOptions {
  port: number;
  tls?: { cert: string } | undefined;
}

export interface ClientSide {
  /**
   * Sends one message. Returns a promise when the caller must wait before sending more
   * (backpressure: the system's own flow control or a checkpoint window), else undefined.
   */
  send(data: Buffer): Promise<unknown> | undefined;
  /** Resolves when everything sent so far has left this process (or was acknowledged). */
  flush(): Promise<void>;
  onMessage(cb: (data: Buffer) => void): void;
  /** Calls `cb` when the client itself notices that its link is dead (default settings). */
  onDead(cb: (reason: string) => void): void;
  close(): Promise<void>;
}

export interface System {
  startServer(options: ServerOptions): Promise<ServerSide>;
  connect(options: ClientOptions): Promise<ClientSide>;
}

/**
 * Keeps a bounded number of checkpoints in flight: every `every` messages or `bytes` bytes the
 * caller hands a completion promise; past `depth` outstanding checkpoints the oldest is awaited.
 */
export class Window {
  #n = 0;
  #bytes = 0;
  readonly #pending: Promise<unknown>[] = [];
  constructor(
    readonly every = 1024,
    readonly bytes = 1024 * 1024,
    readonly depth = 8,
  ) {}
  /** True when this message should carry a checkpoint. */
  due(length: number): boolean {
    this.#n++;
    this.#bytes += length;
    if (this.#n >= this.every || this.#bytes >= this.bytes) {
      this.#n = 0;
      this.#bytes = 0;
      return true;
    }
    return false;
  }
  push(p: Promise<unknown>): Promise<unknown> | undefined {
    this.#pending.push(p);
    return this.#pending.length > this.depth ? this.#pending.shift() : undefined;
  }
  async drain(): Promise<void> {
    await Promise.all(this.#pending.splice(0));
  }
}

/**
 * The receiver's logic, the same for every system: in 'sink' mode it counts messages and answers
 * a barrier ('BARR' + expected count) with 'DONE' + the count once that many arrived; in 'echo'
 * mode it sends every message back.
 */
export function makeHandler(initial: 'sink' | 'echo'): Handler {
  let mode = initial;
  let count = 0;
  let waiting: { count: number; run: number; reply: Reply } | undefined;
  return (data, reply) => {
    if (data.length === BARRIER_LENGTH) {
      const b = parseBarrier(data);
      // 'MODE' + 1 switches to echo, + 0 to sink: throughput and rtt share one server process.
      if (b?.kind === 'MODE') {
        mode = b.count === 1 ? 'echo' : 'sink';
        return;
      }
      if (b?.kind === 'BARR') {
        if (count >= b.count) {
          reply(barrier('DONE', count, b.run));
          count = 0;
        } else waiting = { count: b.count, run: b.run, reply };
        return;
      }
    }
    if (mode === 'echo') {
      reply(data);
      return;
    }
    count++;
    if (waiting !== undefined && count >= waiting.count) {
      waiting.reply(barrier('DONE', count, waiting.run));
      waiting = undefined;
      count = 0;
    }
  };
}
