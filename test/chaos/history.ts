/**
 * The history of one chaos run, in the manner of Jepsen: every operation is recorded when it is
 * invoked and again when it completes (ok with the receipt's message id, or failed with an error
 * code), every delivery with its value and message id, and every fault with when it started and
 * healed. The checker (checker.ts) judges the history afterwards; nothing here decides anything.
 *
 * Times are epoch milliseconds with sub-millisecond precision (`performance.timeOrigin +
 * performance.now()`), so that events recorded by the server child process of the netns suite
 * line up with the parent's.
 */

/** A clock shared by every process of a run. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Client to server, or server to client. */
export const Direction = { C2S: 'c2s', S2C: 's2c' } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** Outcome of an operation so far. */
export const OpStatus = { PENDING: 'pending', OK: 'ok', FAIL: 'fail' } as const;
export type OpStatus = (typeof OpStatus)[keyof typeof OpStatus];

/**
 * One `send()` (client to server) or `peer.send()` (server to client). `value` is unique per
 * direction within a run and grows in invocation order, so it names the message and orders it.
 */
export interface SendOp {
  dir: Direction;
  value: number;
  /** Client incarnation: the sender for c2s; for s2c the one whose session was addressed. */
  incarnation: number;
  /** s2c: the session the server sent to. */
  target?: string;
  /** Payload bytes. */
  bytes: number;
  invokedAt: number;
  status: OpStatus;
  /** The receipt's message id (ok). */
  id?: string;
  /** The error code (fail); `undefined` code on a failure is itself a violation. */
  code?: string | undefined;
  completedAt?: number;
}

/** A message handed to the receiving application. */
export interface Delivery {
  dir: Direction;
  /** Parsed value; undefined when the payload is not one of ours (garbage). */
  value: number | undefined;
  raw: string;
  /** Message id as the receiver saw it. */
  id: string;
  /** Session it arrived in (server session id). */
  session: string;
  /** Receiving client incarnation (s2c only). */
  incarnation?: number;
  at: number;
}

/** One `request()`. */
export interface RequestOp {
  value: number;
  incarnation: number;
  invokedAt: number;
  status: OpStatus;
  reply?: string;
  code?: string | undefined;
  completedAt?: number;
}

/** The server's request handler ran. */
export interface Served {
  value: number | undefined;
  raw: string;
  session: string;
  at: number;
}

/**
 * One file transfer (either direction). File transfers plug into the workload as one more
 * operation kind (see FileOps in workload.ts); `identical` is the receiver-side verdict that
 * the received bytes equal the sent ones (SHA-256 and length).
 */
export interface FileOp {
  dir: Direction;
  name: string;
  size: number;
  sha256: string;
  incarnation: number;
  /** s2c: the session the server sent to. */
  target?: string;
  invokedAt: number;
  status: OpStatus;
  code?: string | undefined;
  completedAt?: number;
  /**
   * Set by a scenario that bounds recovery (the loss suite): the file must have been received,
   * byte-identical, by this time, or the run fails with `file-late`. `due` says how it was set.
   */
  dueBy?: number;
  due?: string;
  /** The receiver's committed offset as the sender last heard it (for a transfer that stalled). */
  committed?: number;
}

/** A file the receiver reported complete. */
export interface FileDelivery {
  dir: Direction;
  name: string;
  /** Size and SHA-256 of the bytes stored on disk. */
  size: number;
  sha256: string;
  /** Session it arrived in (server session id). */
  session: string;
  at: number;
}

/** A fault as injected: `silent` faults close nothing and must be found by the heartbeats. */
export interface FaultRecord {
  kind: string;
  silent: boolean;
  /** Background faults (latency, throttling) slow the link without cutting it. */
  background: boolean;
  /** A one-way silent fault: the direction that is cut (the other still flows). */
  oneWay?: Direction;
  detail: string;
  startAt: number;
  healAt?: number;
  /** Whether each side had a live connection when the fault started. */
  clientConnected: boolean;
  serverConnected: boolean;
}

export interface ClientStateEvent {
  at: number;
  incarnation: number;
  state: string;
  previous: string;
  code?: string | undefined;
  /** Whether the run had asked this incarnation to close (close() called). */
  closeAsked: boolean;
}

export interface SessionEvent {
  at: number;
  incarnation: number;
  sessionId: string;
  resumed: boolean;
  lost: boolean;
}

export interface ServerConnEvent {
  at: number;
  session: string;
  /** 'connection' (handshake done), 'disconnect', 'evict' or 'expire'. */
  kind: 'connection' | 'disconnect' | 'evict' | 'expire';
  code?: string;
  resumed?: boolean;
}

/** Outbox gauges sampled on every client event. */
export interface QueueSample {
  at: number;
  incarnation: number;
  depth: number;
  bytes: number;
}

/** Facts recorded at the end of a run, judged by the checker. */
export interface FinalFacts {
  /** The client reached quiescence (everything it should settle settled) after healing. */
  quiescent: boolean;
  /** Values still unsettled when quiescence was given up on, per kind. */
  unsettled: string[];
  /** The last client's state after healing and quiescence (before the run closed it). */
  clientState: string;
  /** Server gauges once quiet, with the client connected. */
  serverQuiet?: { connections: number; sessions: number; currentSessionConnected: boolean };
  /** Server gauges after the client closed and the session TTL passed. */
  serverAfterTtl?: { connections: number; sessions: number };
  /** Handles left (beyond the run's baseline) after everything was closed, by type. */
  leakedHandles: Record<string, number>;
  /** netns suite: the server child process must exit on its own once its server is closed. */
  childExit?: { code: number | null; signal: string | null; timedOut: boolean };
  /** Expected sessions at quiet time: 1 (the live one). */
  expectedSessions?: number;
}

/** Settings the checker needs to judge a history. */
export interface RunLimits {
  /** Client's dead-link deadline (deadAfterMs). */
  clientDeadlineMs: number;
  /** Server's eviction deadline (evictAfterMs). */
  serverDeadlineMs: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  overflow: string;
}

export class History {
  readonly sends: SendOp[] = [];
  readonly deliveries: Delivery[] = [];
  readonly requests: RequestOp[] = [];
  readonly served: Served[] = [];
  readonly files: FileOp[] = [];
  readonly fileDeliveries: FileDelivery[] = [];
  readonly faults: FaultRecord[] = [];
  readonly clientStates: ClientStateEvent[] = [];
  readonly sessions: SessionEvent[] = [];
  readonly serverEvents: ServerConnEvent[] = [];
  readonly queue: QueueSample[] = [];
  /**
   * Payloads of `drop` events (drop-oldest overflow) as `v:<value>` (a send) or `q:<value>` (a
   * request), or the raw payload when it is neither.
   */
  readonly drops: string[] = [];
  /** Client `error` events (fatal: the client gave up). */
  readonly clientErrors: string[] = [];
  /** Steps of the plan as they were executed (for the timeline of a failing run). */
  readonly marks: { at: number; text: string }[] = [];
  /** Closes that did not finish in time at the end of the run (what hung, with details). */
  readonly teardownHangs: string[] = [];
  /** Restarts done, by side. */
  readonly restarts = { server: 0, client: 0 };
  final: FinalFacts | undefined;

  invokeSend(
    dir: Direction,
    value: number,
    incarnation: number,
    bytes: number,
    target?: string,
  ): SendOp {
    const op: SendOp = {
      dir,
      value,
      incarnation,
      bytes,
      invokedAt: now(),
      status: OpStatus.PENDING,
    };
    if (target !== undefined) op.target = target;
    this.sends.push(op);
    return op;
  }

  invokeRequest(value: number, incarnation: number): RequestOp {
    const op: RequestOp = { value, incarnation, invokedAt: now(), status: OpStatus.PENDING };
    this.requests.push(op);
    return op;
  }

  mark(text: string): void {
    this.marks.push({ at: now(), text });
    // CHAOS_TRACE=1 follows a run live (for a run that hangs: no timeline is written then).
    if (process.env.CHAOS_TRACE === '1') process.stderr.write(`[chaos] ${text}\n`);
  }

  fault(record: Omit<FaultRecord, 'startAt'>): FaultRecord {
    const full: FaultRecord = { ...record, startAt: now() };
    this.faults.push(full);
    return full;
  }
}

/** Marks an operation ok. */
export function complete(op: SendOp, id: string): void;
export function complete(op: RequestOp, reply: string): void;
export function complete(op: SendOp | RequestOp, result: string): void {
  op.status = OpStatus.OK;
  op.completedAt = now();
  if ('dir' in op) op.id = result;
  else op.reply = result;
}

/** Marks an operation failed with the error's code (undefined when the error has none). */
export function fail(op: SendOp | RequestOp | FileOp, error: unknown): void {
  op.status = OpStatus.FAIL;
  op.completedAt = now();
  op.code = codeOf(error);
}

export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The payloads the workload sends: `{"v":7,"p":"xxx"}`; padding varies the byte counts. */
export function encodeValue(key: 'v' | 'q' | 'r', value: number, pad: number): string {
  return JSON.stringify({ [key]: value, p: 'x'.repeat(pad) });
}

/** Names a dropped payload: `v:7` for a send, `q:7` for a request, else the raw text. */
export function dropKey(raw: string): string {
  const v = decodeValue('v', raw);
  if (v !== undefined) return `v:${v}`;
  const q = decodeValue('q', raw);
  return q === undefined ? raw : `q:${q}`;
}

/** Reads a value back; undefined when the payload is not one of ours. */
export function decodeValue(key: 'v' | 'q' | 'r', raw: string): number | undefined {
  try {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    const value = parsed[key];
    return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
