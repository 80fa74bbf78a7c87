/**
 * The workload both suites run: a plan of steps drawn up front from the run's seed (sends and
 * requests both ways, pauses, faults switched on and off, server and client restarts), executed
 * against a client in this process and a server side (in-process or in a network namespace),
 * then healing, quiescence and the final measurements. Every operation and observation goes to
 * the history; judging it is the checker's job.
 *
 * Operation kinds are `send` (both directions), `request` and `file`. File transfers plug in
 * through {@link FileOps}: the workload draws `file` steps only when the run provides one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { deriveSeed, mulberry32, type Random } from '@tether/chaos';
import { ClientState, type OverflowPolicy, TetherClient, type Transfer } from '@tether/client';
import { requestExcused } from './checker.js';
import {
  complete,
  Direction,
  decodeValue,
  dropKey,
  encodeValue,
  type FaultRecord,
  type FileOp,
  fail,
  type History,
  now,
  OpStatus,
} from './history.js';
import type { ServerSide } from './mirror.js';
import { digestFile } from './server-host.js';

/** Client settings of a run. */
export interface ClientSettings {
  host: string;
  port: number;
  /** Connect over WebSocket to this URL instead of TCP to host:port. */
  url?: string;
  clientId: string;
  pingIntervalMs: number;
  deadAfterMs: number;
  connectTimeoutMs: number;
  backoff: { minDelayMs: number; maxDelayMs: number };
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  overflow: OverflowPolicy;
  maxInFlightBytes: number;
  requestTimeoutMs: number;
  /** Where files from the server are stored (file transfers on when set). */
  downloadDir?: string;
}

/** A kind of fault an environment can inject. */
export interface FaultKind {
  name: string;
  /** Nothing is closed: both heartbeats must find the link dead within their deadlines. */
  silent: boolean;
  /** Slows the link without cutting it; may stay on while other steps run. */
  background: boolean;
  /** Silent and one-way: only this direction is cut (a half-open link). */
  oneWay?: Direction;
}

/** Injects faults into one environment (proxy toxics, or nft/ip/tc in a namespace). */
export interface FaultInjector {
  readonly kinds: readonly FaultKind[];
  /** Applies a fault, drawing its parameters from `random`; resolves once it is in effect. */
  apply(kind: FaultKind, random: Random): Promise<{ detail: string; heal: () => Promise<void> }>;
}

/**
 * File transfers as an operation kind (implemented by FileTransfers in files.ts over
 * client.sendFile / peer.sendFile). An implementation sends
 * `content` under `name` in `dir`, records a FileOp in the history when invoked and settles it
 * with the transfer's outcome, and records a FileDelivery (name, size, SHA-256 of the bytes the
 * receiver stored) when the receiving side reports a complete file. The checker then flags files
 * acknowledged but never received and files whose bytes differ.
 */
export interface FileOps {
  send(dir: Direction, name: string, content: Buffer): void;
  /** Transfers that must settle before the run is quiescent. */
  unsettled(): string[];
}

/** One step of a run's plan. */
export type Step =
  | { kind: 'send'; dir: Direction; pads: number[] }
  | { kind: 'request'; pads: number[] }
  | { kind: 'pause'; ms: number }
  | { kind: 'background'; fault: string }
  | { kind: 'cut'; fault: string; holdMs: number; during: Step[] }
  | { kind: 'restart'; side: 'server' | 'client' }
  | { kind: 'file'; dir: Direction; size: number };

/**
 * A fault, a heal or a restart that takes longer than this fails the run (with what hung)
 * instead of hanging it; they normally take milliseconds.
 */
const STEP_TIMEOUT_MS = 5000;

/** Seed streams: one per purpose, so the plan never depends on what the system did. */
export const Stream = { PLAN: 1, PROXY: 2, JITTER: 3, SETTINGS: 4, FAULT: 1000 } as const;

function int(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

function pads(random: Random, count: number): number[] {
  return Array.from({ length: count }, () => int(random, 0, 160));
}

/** Draws a plan of about `budgetMs` of steps from the seed. */
export function makePlan(
  seed: number,
  kinds: readonly FaultKind[],
  options: { budgetMs: number; files: boolean },
): Step[] {
  const random = mulberry32(deriveSeed(seed, Stream.PLAN));
  const cuts = kinds.filter((k) => !k.background);
  const backgrounds = kinds.filter((k) => k.background);
  const steps: Step[] = [];
  const restarts = { server: 0, client: 0 };
  let spent = 0;
  const traffic = (): Step => {
    const r = random();
    if (r < 0.4)
      return { kind: 'send', dir: Direction.C2S, pads: pads(random, int(random, 1, 25)) };
    if (r < 0.75)
      return { kind: 'send', dir: Direction.S2C, pads: pads(random, int(random, 1, 25)) };
    if (r < 0.85) return { kind: 'request', pads: pads(random, int(random, 1, 4)) };
    return { kind: 'pause', ms: int(random, 5, 40) };
  };
  // Step weights; files get a share only when the run can transfer them.
  const fileShare = options.files ? 0.08 : 0;
  while (spent < options.budgetMs) {
    const r = random() * (1 + fileShare);
    if (r < 0.45) {
      const step = traffic();
      steps.push(step);
      spent += step.kind === 'pause' ? step.ms : 3;
    } else if (r < 0.6) {
      const ms = int(random, 10, 80);
      steps.push({ kind: 'pause', ms });
      spent += ms;
    } else if (r < 0.68) {
      if (backgrounds.length > 0)
        steps.push({ kind: 'background', fault: pick(random, backgrounds).name });
    } else if (r < 0.86) {
      if (cuts.length === 0) continue;
      const holdMs = int(random, 60, 450);
      const during: Step[] = [];
      for (let i = int(random, 1, 5); i > 0; i--) during.push(traffic());
      steps.push({ kind: 'cut', fault: pick(random, cuts).name, holdMs, during });
      // Traffic after healing measures recovery; the pause lets it happen before the next fault.
      steps.push({ kind: 'send', dir: Direction.C2S, pads: pads(random, 2) });
      steps.push({ kind: 'send', dir: Direction.S2C, pads: pads(random, 2) });
      const cooldown = int(random, 150, 300);
      steps.push({ kind: 'pause', ms: cooldown });
      spent += holdMs + cooldown;
    } else if (r < 0.93) {
      if (restarts.server >= 2) continue;
      restarts.server++;
      steps.push({ kind: 'restart', side: 'server' });
      spent += 50;
    } else if (r < 1) {
      if (restarts.client >= 2) continue;
      restarts.client++;
      steps.push({ kind: 'restart', side: 'client' });
      spent += 30;
    } else {
      const dir = random() < 0.5 ? Direction.C2S : Direction.S2C;
      steps.push({ kind: 'file', dir, size: int(random, 1, 256 * 1024) });
      spent += 20;
    }
  }
  return steps;
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** Short, one line per step: printed for a failing run. */
export function describePlan(steps: readonly Step[]): string {
  const one = (s: Step): string => {
    switch (s.kind) {
      case 'send':
        return `${s.dir}x${s.pads.length}`;
      case 'request':
        return `reqx${s.pads.length}`;
      case 'pause':
        return `pause ${s.ms}`;
      case 'background':
        return `toggle ${s.fault}`;
      case 'cut':
        return `${s.fault} ${s.holdMs}ms [${s.during.map(one).join(', ')}]`;
      case 'restart':
        return `restart ${s.side}`;
      case 'file':
        return `file ${s.dir} ${s.size}B`;
    }
  };
  return steps.map(one).join('; ');
}

/** The client side: one TetherClient at a time (an incarnation), restarted with the same id. */
export class ClientDriver {
  readonly #history: History;
  readonly #settings: ClientSettings;
  readonly #random: Random;
  #client: TetherClient | undefined;
  #incarnation = 0;
  #closeAsked = { value: false };

  constructor(history: History, settings: ClientSettings, seed: number) {
    this.#history = history;
    this.#settings = settings;
    // Backoff jitter from the seed, never Math.random.
    this.#random = mulberry32(deriveSeed(seed, Stream.JITTER));
  }

  get client(): TetherClient {
    if (this.#client === undefined) throw new Error('client not started');
    return this.#client;
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  get connected(): boolean {
    return this.#client?.state === ClientState.CONNECTED;
  }

  /** Starts a new incarnation; with `wait`, resolves once it is connected. */
  async start(wait: boolean): Promise<void> {
    const s = this.#settings;
    const history = this.#history;
    const incarnation = ++this.#incarnation;
    const closeAsked = { value: false };
    this.#closeAsked = closeAsked;
    const client = new TetherClient({
      host: s.host,
      port: s.port,
      clientId: s.clientId,
      pingIntervalMs: s.pingIntervalMs,
      deadAfterMs: s.deadAfterMs,
      connectTimeoutMs: s.connectTimeoutMs,
      backoff: s.backoff,
      maxQueuedMessages: s.maxQueuedMessages,
      maxQueuedBytes: s.maxQueuedBytes,
      overflow: s.overflow,
      maxInFlightBytes: s.maxInFlightBytes,
      random: this.#random,
      ...(s.url === undefined ? {} : { url: s.url }),
      ...(s.downloadDir === undefined ? {} : { downloadDir: s.downloadDir }),
    });
    this.#client = client;
    const sample = (): void => this.#sample(client, incarnation);
    client.on('state', (change) => {
      history.clientStates.push({
        at: now(),
        incarnation,
        state: change.state,
        previous: change.previous,
        code: change.error?.code,
        closeAsked: closeAsked.value,
      });
      sample();
    });
    client.on('session', (info) => {
      history.sessions.push({
        at: now(),
        incarnation,
        sessionId: info.sessionId,
        resumed: info.resumed,
        lost: info.lost,
      });
      sample();
    });
    client.on('message', (message) => {
      const raw = message.text();
      history.deliveries.push({
        dir: Direction.S2C,
        value: decodeValue('v', raw),
        raw,
        id: message.id,
        session: message.id.slice(0, message.id.lastIndexOf(':')),
        incarnation,
        at: now(),
      });
      sample();
    });
    client.on('file', (file) => {
      const at = now();
      const session = client.stats().sessionId ?? '';
      void digestFile(file.path).then(({ size, sha256 }) =>
        history.fileDeliveries.push({
          dir: Direction.S2C,
          name: file.name,
          size,
          sha256,
          session,
          at,
        }),
      );
      sample();
    });
    client.on('drop', (info) => {
      history.drops.push(dropKey(info.payload.toString('utf8')));
      sample();
    });
    client.on('reconnecting', sample);
    client.on('heartbeat', sample);
    client.on('error', (error) => history.clientErrors.push(`${error.code}: ${error.message}`));
    const connected = client.connect();
    connected.catch(() => {});
    if (wait) await withTimeout(connected, 5000, 'the client did not connect within 5 s');
  }

  send(value: number, pad: number): void {
    const client = this.client;
    const payload = encodeValue('v', value, pad);
    const op = this.#history.invokeSend(
      Direction.C2S,
      value,
      this.#incarnation,
      Buffer.byteLength(payload),
    );
    client.send(payload).then(
      (receipt) => {
        complete(op, receipt.id);
        this.#sample(client, op.incarnation);
      },
      (error: unknown) => {
        fail(op, error);
        this.#sample(client, op.incarnation);
      },
    );
    this.#sample(client, op.incarnation);
  }

  request(value: number, pad: number): void {
    const client = this.client;
    const op = this.#history.invokeRequest(value, this.#incarnation);
    client
      .request(encodeValue('q', value, pad), { timeoutMs: this.#settings.requestTimeoutMs })
      .then(
        (reply) => complete(op, reply.toString('utf8')),
        (error: unknown) => fail(op, error),
      );
    this.#sample(client, op.incarnation);
  }

  /**
   * Sends the file at `path` as `name`; `size` and `sha256` are what was written there. Returns
   * the operation recorded in the history and the client's transfer (for its progress).
   */
  sendFile(
    name: string,
    path: string,
    size: number,
    sha256: string,
  ): { op: FileOp; transfer: Transfer } {
    const op: FileOp = {
      dir: Direction.C2S,
      name,
      size,
      sha256,
      incarnation: this.#incarnation,
      invokedAt: now(),
      status: OpStatus.PENDING,
    };
    this.#history.files.push(op);
    const transfer = this.client.sendFile(path, { name });
    transfer.done.then(
      () => {
        op.status = OpStatus.OK;
        op.completedAt = now();
      },
      (error: unknown) => fail(op, error),
    );
    return { op, transfer };
  }

  /** Closes this incarnation (its pending sends fail with CLOSED) and starts the next one. */
  async restart(): Promise<void> {
    await this.close();
    await this.start(false);
  }

  async close(): Promise<void> {
    this.#closeAsked.value = true;
    await this.#client?.close();
  }

  #sample(client: TetherClient, incarnation: number): void {
    const { depth, bytes } = client.stats().outbox;
    this.#history.queue.push({ at: now(), incarnation, depth, bytes });
  }
}

export interface WorkloadEnv {
  seed: number;
  history: History;
  client: ClientDriver;
  server: ServerSide;
  faults: FaultInjector;
  files: FileOps | undefined;
}

/** Executes `plan`; faults are always healed, also when a step throws. */
export async function runPlan(env: WorkloadEnv, plan: readonly Step[]): Promise<void> {
  const counters = { c2s: 0, s2c: 0, request: 0, fault: 0, file: 0 };
  const backgrounds = new Map<string, { record: FaultRecord; heal: () => Promise<void> }>();
  const kinds = new Map(env.faults.kinds.map((k) => [k.name, k]));

  const apply = async (
    name: string,
  ): Promise<{ record: FaultRecord; heal: () => Promise<void> }> => {
    const kind = kinds.get(name);
    if (kind === undefined) throw new Error(`unknown fault ${name}`);
    const random = mulberry32(deriveSeed(env.seed, Stream.FAULT + counters.fault++));
    const { detail, heal } = await withTimeout(
      env.faults.apply(kind, random),
      STEP_TIMEOUT_MS,
      `applying ${kind.name} did not finish within ${STEP_TIMEOUT_MS} ms`,
    );
    const record = env.history.fault({
      kind: kind.name,
      silent: kind.silent,
      background: kind.background,
      detail,
      clientConnected: env.client.connected,
      serverConnected: env.server.connected,
    });
    if (kind.oneWay !== undefined) record.oneWay = kind.oneWay;
    return {
      record,
      heal: async () => {
        await withTimeout(
          heal(),
          STEP_TIMEOUT_MS,
          `healing ${kind.name} did not finish within ${STEP_TIMEOUT_MS} ms`,
        );
        record.healAt = now();
      },
    };
  };

  const run = async (step: Step): Promise<void> => {
    if (step.kind !== 'send' && step.kind !== 'pause') env.history.mark(describePlan([step]));
    switch (step.kind) {
      case 'send':
        for (const pad of step.pads) {
          if (step.dir === Direction.C2S) env.client.send(++counters.c2s, pad);
          else {
            const value = ++counters.s2c;
            env.server.send(value, encodeValue('v', value, pad), env.client.incarnation);
          }
        }
        break;
      case 'request':
        for (const pad of step.pads) env.client.request(++counters.request, pad);
        break;
      case 'pause':
        await sleep(step.ms);
        break;
      case 'background': {
        const active = backgrounds.get(step.fault);
        if (active !== undefined) {
          backgrounds.delete(step.fault);
          await active.heal();
        } else {
          backgrounds.set(step.fault, await apply(step.fault));
        }
        break;
      }
      case 'cut': {
        const fault = await apply(step.fault);
        try {
          for (const inner of step.during) await run(inner);
          const left = fault.record.startAt + step.holdMs - now();
          if (left > 0) await sleep(left);
        } finally {
          await fault.heal();
        }
        break;
      }
      case 'restart':
        if (step.side === 'server') {
          env.history.restarts.server++;
          await withTimeout(
            env.server.restart(),
            STEP_TIMEOUT_MS,
            `restarting the server did not finish within ${STEP_TIMEOUT_MS} ms`,
          );
        } else {
          env.history.restarts.client++;
          await withTimeout(
            env.client.restart(),
            STEP_TIMEOUT_MS,
            `restarting the client did not finish within ${STEP_TIMEOUT_MS} ms`,
          );
        }
        break;
      case 'file':
        if (env.files !== undefined) {
          const random = mulberry32(deriveSeed(env.seed, Stream.FAULT, 7, counters.file));
          const content = Buffer.alloc(step.size);
          for (let i = 0; i < content.length; i++) content[i] = Math.floor(random() * 256);
          env.files.send(step.dir, `chaos-${env.seed}-${counters.file++}.bin`, content);
        }
        break;
    }
  };

  try {
    for (const step of plan) await run(step);
  } finally {
    for (const active of backgrounds.values()) await active.heal();
  }
  // Probe traffic after the last fault.
  for (let i = 0; i < 2; i++) {
    env.client.send(++counters.c2s, 0);
    const value = ++counters.s2c;
    env.server.send(value, encodeValue('v', value, 0), env.client.incarnation);
  }
}

/** Timings of the final phase. */
export interface FinishSettings {
  sessionTtlMs: number;
  /** How long everything may take to settle after healing. */
  quiesceMs: number;
  /** How long stale connections may linger on the server (eviction, hello timeout). */
  staleMs: number;
}

/**
 * After healing: waits until everything that should settle has, measures the server while the
 * client is connected, closes the client (asked), and measures the server again once the session
 * TTL has passed. Leaves the server running for the caller to close.
 */
export async function finish(env: WorkloadEnv, settings: FinishSettings): Promise<void> {
  const { history, client, server } = env;
  const unsettled = (): string[] => {
    const list: string[] = [];
    if (!client.connected) list.push(`client ${client.client.state}`);
    const incarnation = client.incarnation;
    const session = client.client.stats().sessionId;
    for (const op of history.sends) {
      if (op.status !== OpStatus.PENDING) continue;
      if (op.dir === Direction.C2S && op.incarnation === incarnation) list.push(`c2s ${op.value}`);
      if (op.dir === Direction.S2C && op.target === session) list.push(`s2c ${op.value}`);
    }
    for (const op of history.requests) {
      if (
        op.status === OpStatus.PENDING &&
        op.incarnation === incarnation &&
        !requestExcused(history, op.incarnation, op.invokedAt)
      )
        list.push(`request ${op.value}`);
    }
    if (env.files !== undefined) list.push(...env.files.unsettled());
    return list;
  };
  history.mark('finish: waiting for quiescence');
  const quietBy = now() + settings.quiesceMs;
  let left = unsettled();
  // A closed client never settles anything again: no point waiting for it.
  while (left.length > 0 && now() < quietBy && client.client.state !== ClientState.CLOSED) {
    await sleep(20);
    left = unsettled();
  }
  // Stale connections (a HELLO lost in a black hole, a half-open socket) go within `staleMs`.
  const session = client.client.stats().sessionId;
  const staleBy = now() + settings.staleMs;
  let quiet = await server.stats();
  const isQuiet = (): boolean =>
    quiet.connections === 1 && quiet.peers.some((p) => p.id === session && p.connected);
  while (!isQuiet() && now() < staleBy) {
    await sleep(25);
    quiet = await server.stats();
  }
  history.final = {
    quiescent: left.length === 0,
    unsettled: left,
    clientState: client.client.state,
    serverQuiet: {
      connections: quiet.connections,
      sessions: quiet.sessions,
      currentSessionConnected: quiet.peers.some((p) => p.id === session && p.connected),
    },
    expectedSessions: quiet.liveSessions,
    leakedHandles: {},
  };

  history.mark('finish: closing the client');
  await client.close();
  history.mark('finish: waiting for the session TTL');
  const ttlBy = now() + settings.sessionTtlMs + settings.staleMs;
  let after = await server.stats();
  while ((after.connections > 0 || after.sessions > 0) && now() < ttlBy) {
    await sleep(25);
    after = await server.stats();
  }
  history.final.serverAfterTtl = { connections: after.connections, sessions: after.sessions };
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
