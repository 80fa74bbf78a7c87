import type { Scheduler } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';
import { Redis } from 'ioredis';
import { SCRIPTS, type ScriptName } from './scripts.js';

/** A script call as ioredis runs it (`name` and `nameBuffer`, arguments only: no keys). */
type ScriptCall = (...args: (string | number | Buffer)[]) => Promise<unknown>;
type ScriptClient = Redis & Record<ScriptName | `${ScriptName}Buffer`, ScriptCall>;

/** Settings of a {@link StoreClient}. */
export interface StoreClientOptions {
  /** A `redis://` or `rediss://` URL. */
  url: string;
  prefix: string;
  instanceId: string;
  /** How long an operation may wait for Redis before it fails with STORE_UNAVAILABLE. */
  timeoutMs: number;
  scheduler: Scheduler;
  /** A message on this instance's channel. */
  message(message: Buffer): void;
  /** A connection (re)opened: notifications may have been missed, re-read what matters. */
  ready(): void;
}

/** How an operation behaves when Redis does not answer in time. */
export const Uncertain = {
  /** Fail at the deadline whatever happened (the operation is safe to apply late). */
  FAIL: 0,
  /**
   * Fail at the deadline only if it never reached Redis; once sent, wait for Redis to come back
   * and retry (the retry tells whether the first attempt was applied): an append is never
   * reported failed when it may be delivered.
   */
  WAIT: 1,
} as const;
export type Uncertain = (typeof Uncertain)[keyof typeof Uncertain];

interface Op {
  readonly run: (client: ScriptClient, epoch: string) => Promise<unknown>;
  readonly uncertain: Uncertain;
  resolve(value: unknown): void;
  reject(error: Error): void;
  /** Bumped per attempt: the answer of an abandoned attempt is ignored. */
  attempt: number;
  /** An attempt was written to Redis (it may have been applied). */
  sent: boolean;
  done: boolean;
  timer: unknown;
}

// Reply errors that mean "try again": Redis is loading its AOF, or busy with a script.
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/;

/**
 * The store's two connections to Redis (commands, pipelined per tick; and the subscriber of
 * this instance's channel), with the rules every operation follows: it waits while Redis is
 * away, up to `timeoutMs`, and is retried after a reconnect (every operation is safe to repeat:
 * appends carry an id, positions only rise). Each connection to Redis gets a new epoch, so an
 * append still in flight on a dead connection can never be applied after its retry.
 */
export class StoreClient {
  readonly commands: ScriptClient;
  readonly subscriber: Redis;
  readonly #options: StoreClientOptions;
  readonly #channel: string;
  readonly #waiting = new Set<Op>();
  readonly #inFlight = new Set<Op>();
  #epoch = '';
  #ready = false;
  #closed = false;
  #subscribed = false;
  /** When the command connection last became ready (scheduler time). */
  #readySince = 0;

  constructor(options: StoreClientOptions) {
    this.#options = options;
    this.#channel = `${options.prefix}ch:${options.instanceId}`;
    const make = (): Redis =>
      new Redis(options.url, {
        // We subscribe ourselves on every connection, and re-read what we may have missed only
        // once the subscription is confirmed.
        autoResubscribe: false,
        lazyConnect: true,
        enableAutoPipelining: true,
        // Our operations decide what to retry; ioredis must neither replay nor queue them.
        autoResendUnfulfilledCommands: false,
        enableOfflineQueue: false,
        maxRetriesPerRequest: null,
        retryStrategy: (times) => Math.min(50 * times, 500),
      });
    this.commands = make() as ScriptClient;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      this.commands.defineCommand(name, { numberOfKeys: 0, lua });
    }
    this.subscriber = make();
    // Errors surface through the operations; a reconnecting client must not crash the process.
    this.commands.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.commands.on('ready', () => void this.#onReady());
    this.commands.on('close', () => this.#onClose());
    this.subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) =>
      options.message(message),
    );
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.#channel).then(
        () => {
          this.#subscribed = true;
          this.#readyEvent();
        },
        () => {}, // the connection dropped again: the next ready subscribes
      );
    });
    this.subscriber.on('close', () => {
      this.#subscribed = false;
    });
  }

  // Both connections are up (again): notifications may have been missed while either was down.
  #readyEvent(): void {
    if (!this.#ready || !this.#subscribed) return;
    this.commands.emit('tether-ready');
    this.#options.ready();
  }

  /** Whether commands can be sent now. */
  get ready(): boolean {
    return this.#ready;
  }

  /** How long the command connection has been up (0 while it is down). */
  upForMs(): number {
    return this.#ready ? this.#options.scheduler.now() - this.#readySince : 0;
  }

  /** Connects both connections and subscribes; rejects when Redis cannot be reached in time. */
  async connect(): Promise<void> {
    const deadline = this.#options.timeoutMs;
    const within = <T>(promise: Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(unavailable(`Redis did not answer within ${deadline} ms`)),
          deadline,
        );
        promise.then(
          (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(unavailable('cannot connect to Redis', error));
          },
        );
      });
    await within(Promise.all([this.commands.connect(), this.subscriber.connect()]));
    if (!this.#ready || !this.#subscribed) {
      await within(
        new Promise<void>((resolve) => this.commands.once('tether-ready', () => resolve())),
      );
    }
  }

  /**
   * Runs `run` against Redis under the rules above; `run` gets the connection's epoch. Resolves
   * with its answer; rejects with STORE_UNAVAILABLE, or the script's own error.
   */
  call<T>(
    run: (client: ScriptClient, epoch: string) => Promise<T>,
    uncertain: Uncertain = Uncertain.FAIL,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#closed) {
        reject(unavailable('the store is closed'));
        return;
      }
      const op: Op = {
        run,
        uncertain,
        resolve: resolve as (value: unknown) => void,
        reject,
        attempt: 0,
        sent: false,
        done: false,
        timer: undefined,
      };
      op.timer = this.#options.scheduler.setTimeout(
        () => this.#expired(op),
        this.#options.timeoutMs,
        true,
      );
      if (this.#ready) this.#send(op);
      else this.#waiting.add(op);
    });
  }

  /** Closes both connections; pending operations fail with STORE_UNAVAILABLE. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const op of [...this.#waiting, ...this.#inFlight]) {
      this.#finish(op);
      op.reject(unavailable('the store is closed'));
    }
    await Promise.allSettled([this.commands.quit(), this.subscriber.quit()]);
    this.commands.disconnect();
    this.subscriber.disconnect();
  }

  async #onReady(): Promise<void> {
    try {
      // A new epoch first: appends still travelling on the old connection are refused.
      const epoch = await this.commands.incr(
        `${this.#options.prefix}epoch:${this.#options.instanceId}`,
      );
      this.#epoch = String(epoch);
    } catch {
      return; // the connection dropped again; the next ready tries again
    }
    this.#ready = true;
    this.#readySince = this.#options.scheduler.now();
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const op of waiting) this.#send(op);
    this.#readyEvent();
  }

  #onClose(): void {
    this.#ready = false;
    // Whatever was in flight may or may not have been applied: try it again on the next
    // connection (its answer on the old one, if it ever comes, is ignored).
    for (const op of this.#inFlight) {
      op.attempt++;
      this.#waiting.add(op);
    }
    this.#inFlight.clear();
  }

  #send(op: Op): void {
    const attempt = ++op.attempt;
    op.sent = true;
    this.#inFlight.add(op);
    op.run(this.commands, this.#epoch).then(
      (value) => {
        if (op.done || op.attempt !== attempt) return;
        if (isStale(value)) {
          this.#retry(op);
          return;
        }
        this.#finish(op);
        op.resolve(value);
      },
      (error: unknown) => {
        if (op.done || op.attempt !== attempt) return;
        if (isReplyError(error) && !TRANSIENT.test((error as Error).message)) {
          this.#finish(op);
          op.reject(error as Error);
          return;
        }
        this.#retry(op);
      },
    );
  }

  // A transient failure on a live connection (or a stale epoch): again, soon.
  #retry(op: Op): void {
    this.#inFlight.delete(op);
    op.attempt++;
    if (!this.#ready) {
      this.#waiting.add(op);
      return;
    }
    this.#options.scheduler.setTimeout(
      () => {
        if (op.done) return;
        if (this.#ready) this.#send(op);
        else this.#waiting.add(op);
      },
      50,
      true,
    );
  }

  #expired(op: Op): void {
    if (op.done) return;
    if (op.sent && op.uncertain === Uncertain.WAIT) return; // until Redis answers
    this.#finish(op);
    op.reject(unavailable(`Redis did not answer within ${this.#options.timeoutMs} ms`));
  }

  #finish(op: Op): void {
    op.done = true;
    this.#waiting.delete(op);
    this.#inFlight.delete(op);
    this.#options.scheduler.clearTimeout(op.timer);
  }
}

/** The store could not be reached in time. */
export function unavailable(message: string, cause?: unknown): TetherError {
  return new TetherError(
    ErrorCode.STORE_UNAVAILABLE,
    `session store unavailable: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

// An append that reached Redis on a connection that has since been replaced.
function isStale(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  const first: unknown = value[0];
  return first === 'stale' || (Buffer.isBuffer(first) && first.toString() === 'stale');
}
