import type { Scheduler, TimerHandle } from '@tether/core';
import {
  ErrorCode,
  Fifo,
  type OutboundEntry,
  ReliableOutbound,
  TetherError,
} from '@tether/protocol';
import { FlushWaiters } from './flush-waiters.js';
import { OverflowPolicy } from './options.js';

/** Resolution of `send()`: the server's application received the message. */
export interface SendReceipt {
  /** `${clientId}:${seq}`: stable across reconnects and session loss, for app-level dedupe. */
  id: string;
  seq: number;
}

/**
 * One message from `send()` or `publish()` until the server acknowledges it: stream entry and
 * outcome in one (a promise's callbacks, or for `publish()` the client's failure report).
 */
export interface PendingSend extends OutboundEntry {
  resolve(receipt: SendReceipt): void;
  reject(error: Error): void;
  /** Monotonic time after which a message not yet transmitted is rejected; Infinity for none. */
  readonly expiresAt: number;
  /** The store's id of the message (the `store` option); 0 without a store. */
  journalId: number;
  /** Place in the outbox's submission order, given by the outbox; 0 for restored messages. */
  order: number;
  /** The id `publish()` returned; 0 for the others, whose outcome settles a promise. */
  publishId: number;
}

/**
 * A message from `send()` (or restored from the store): a class, not an object literal. V8
 * tracks each literal's allocation site and pretenures it (allocates its objects in the old
 * generation from then on) when nearly all of them survived a scavenge of a full new space:
 * messages wait for their acknowledgement, so during a burst they all survive, and a client
 * whose site was pretenured then paid a mark-compact every few scavenges, at about twice its
 * CPU per message, for its whole life. Objects made by `new` have no allocation site.
 */
export class SendEntry implements PendingSend {
  readonly payload: Buffer;
  readonly flags: number;
  readonly requestId: number;
  seq = 0;
  resolve: (receipt: SendReceipt) => void;
  reject: (error: Error) => void;
  readonly expiresAt: number;
  journalId: number;
  order = 0;
  publishId = 0;

  constructor(
    payload: Buffer,
    flags: number,
    requestId: number,
    expiresAt: number,
    resolve: (receipt: SendReceipt) => void,
    reject: (error: Error) => void,
    journalId = 0,
  ) {
    this.payload = payload;
    this.flags = flags;
    this.requestId = requestId;
    this.expiresAt = expiresAt;
    this.resolve = resolve;
    this.reject = reject;
    this.journalId = journalId;
  }
}

// A receipt is made by `new` for the same reason as SendEntry: an ACK releases thousands of
// messages at once, so a scavenge during that loop finds every receipt made so far alive.
class Receipt implements SendReceipt {
  readonly id: string;
  readonly seq: number;
  constructor(id: string, seq: number) {
    this.id = id;
    this.seq = seq;
  }
}

/** Outbox limits. */
export interface OutboxLimits {
  maxMessages: number;
  maxBytes: number;
  overflow: OverflowPolicy;
}

interface Waiter {
  entry: PendingSend;
  onAbort: (() => void) | undefined;
  signal: AbortSignal | undefined;
}

/**
 * The client's bounded offline queue: every message from `send()` until the server acknowledges
 * it, by count and by bytes, with an explicit overflow policy and optional per-message TTL.
 * Sequence state lives in the wrapped {@link ReliableOutbound}, which the session's links use.
 */
export class Outbox {
  readonly stream: ReliableOutbound<PendingSend>;
  readonly #clientId: string;
  readonly #limits: OutboxLimits;
  readonly #scheduler: Scheduler;
  readonly #onEnqueued: () => void;
  readonly #onDrop: (entry: PendingSend) => void;
  #waiters = new Fifo<Waiter>();
  #ttlTimer: TimerHandle | undefined;
  #ttlTimerAt = Number.POSITIVE_INFINITY;
  #withTtl = 0;
  #emptyWaiters: (() => void)[] = [];
  readonly #flushes: FlushWaiters;
  /** Order given to the last message submitted. */
  #submitted = 0;

  constructor(
    clientId: string,
    limits: OutboxLimits,
    scheduler: Scheduler,
    onEnqueued: () => void,
    onDrop: (entry: PendingSend) => void,
    stream: ReliableOutbound<PendingSend> = new ReliableOutbound<PendingSend>(),
  ) {
    this.#clientId = clientId;
    this.#limits = limits;
    this.#scheduler = scheduler;
    this.#onEnqueued = onEnqueued;
    this.#onDrop = onDrop;
    this.stream = stream;
    this.#flushes = new FlushWaiters(scheduler);
    // A stream restored from a store may hold queued messages with a TTL.
    for (const entry of stream.queued()) {
      if (entry.expiresAt === Number.POSITIVE_INFINITY) continue;
      this.#withTtl++;
      this.#armTtl(entry.expiresAt);
    }
  }

  /** Messages not yet acknowledged. */
  get depth(): number {
    return this.stream.count;
  }

  /** Sends waiting for room (overflow policy 'wait'). */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Queues a message, applying the overflow policy when full. Failures reject `entry` (never
   * throws): QUEUE_FULL, or ABORTED when `signal` fires while waiting for room.
   */
  submit(entry: PendingSend, signal?: AbortSignal): void {
    const { payload } = entry;
    if (signal?.aborted) {
      entry.reject(new TetherError(ErrorCode.ABORTED, 'send aborted', { cause: signal.reason }));
      return;
    }
    if (payload.length > this.#limits.maxBytes) {
      entry.reject(this.#overCap(payload.length));
      return;
    }
    entry.order = ++this.#submitted;
    // Waiters go first, so 'wait' keeps the order of send() calls.
    if (this.#waiters.length === 0 && this.#makeRoom(payload.length)) {
      this.#enqueue(entry);
      return;
    }
    if (this.#limits.overflow !== OverflowPolicy.WAIT) {
      entry.reject(this.#full());
      return;
    }
    const waiter: Waiter = { entry, onAbort: undefined, signal };
    if (signal !== undefined) {
      waiter.onAbort = () => {
        this.#waiters.removeWhere((w) => w === waiter);
        if (entry.expiresAt !== Number.POSITIVE_INFINITY) this.#withTtl--;
        entry.reject(
          new TetherError(ErrorCode.ABORTED, 'send aborted while waiting for room', {
            cause: signal.reason,
          }),
        );
        // The sends behind it may fit now.
        this.#admitWaiters();
        this.#ended();
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    }
    this.#waiters.push(waiter);
    if (entry.expiresAt !== Number.POSITIVE_INFINITY) {
      this.#withTtl++;
      this.#armTtl(entry.expiresAt);
    }
  }

  /**
   * Queues a message at once or returns why not (`publish()`, which never waits): QUEUE_FULL
   * when there is no room after the overflow policy (under 'wait', also while sends wait).
   */
  offer(entry: PendingSend): TetherError | undefined {
    const bytes = entry.payload.length;
    if (bytes > this.#limits.maxBytes) return this.#overCap(bytes);
    if (this.#waiters.length > 0 || !this.#makeRoom(bytes)) return this.#full();
    entry.order = ++this.#submitted;
    this.#enqueue(entry);
    return undefined;
  }

  /**
   * Resolves once every message submitted so far has ended: acknowledged, or failed (TTL,
   * drop-oldest, withdrawn). Rejects with `failAll`'s error, FLUSH_TIMEOUT after `timeoutMs`,
   * or ABORTED on `signal`.
   */
  flush(timeoutMs?: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) {
      return Promise.reject(
        new TetherError(ErrorCode.ABORTED, 'flush aborted', { cause: signal.reason }),
      );
    }
    const mark = this.#submitted;
    if (this.#oldestOrder() > mark) return Promise.resolve();
    return this.#flushes.add(mark, timeoutMs, signal);
  }

  /** Takes back queued (never transmitted) messages matching `predicate`, rejecting them. */
  withdraw(predicate: (entry: PendingSend) => boolean, error: Error): void {
    const removed = this.stream.dropQueued(predicate);
    for (const entry of removed) {
      if (entry.expiresAt !== Number.POSITIVE_INFINITY) this.#withTtl--;
      entry.reject(error);
    }
    if (removed.length === 0) return;
    this.#admitWaiters();
    this.#ended();
  }

  /** Resolves once nothing is queued, in flight or waiting (at once if so already). */
  whenEmpty(): Promise<void> {
    if (this.#isEmpty()) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  /** Resolves acknowledged messages with their receipts and lets waiting sends in. */
  released(entries: PendingSend[]): void {
    for (const entry of entries) {
      if (entry.expiresAt !== Number.POSITIVE_INFINITY) this.#withTtl--;
      // A published message has no promise: no receipt to make.
      if (entry.publishId === 0) {
        entry.resolve(new Receipt(`${this.#clientId}:${entry.seq}`, entry.seq));
      }
    }
    this.#admitWaiters();
    this.#ended();
  }

  /**
   * Call before transmitting: expires due messages even when the TTL timer has not run yet (a
   * late timer must not let a message go out late). Costs one comparison when nothing is due.
   */
  expireDue(): void {
    if (this.#scheduler.now() >= this.#ttlTimerAt) {
      this.#scheduler.clearTimeout(this.#ttlTimer);
      this.#onTtlTimer();
    }
  }

  /** Rejects messages whose TTL passed before they were transmitted. */
  expire(now: number = this.#scheduler.now()): void {
    if (this.#withTtl === 0) return;
    const expired = this.stream.dropQueued((e) => e.expiresAt <= now);
    const expiredWaiters = this.#waiters.removeWhere((w) => w.entry.expiresAt <= now);
    this.#withTtl -= expired.length + expiredWaiters.length;
    for (const entry of expired) entry.reject(expiredError());
    for (const waiter of expiredWaiters) {
      this.#detach(waiter);
      waiter.entry.reject(expiredError());
    }
    if (expired.length > 0 || expiredWaiters.length > 0) this.#admitWaiters();
    this.#ended();
  }

  /**
   * Rejects everything (queued, in flight and waiting) and every pending flush with `error`;
   * stops the TTL timer.
   */
  failAll(error: Error): void {
    // First: a flush must not resolve because its messages ended by failing here.
    this.#flushes.failAll(error);
    this.#scheduler.clearTimeout(this.#ttlTimer);
    this.#ttlTimer = undefined;
    this.#ttlTimerAt = Number.POSITIVE_INFINITY;
    const waiters = this.#waiters.clear();
    for (const entry of this.stream.clear()) entry.reject(error);
    for (const waiter of waiters) {
      this.#detach(waiter);
      waiter.entry.reject(error);
    }
    this.#withTtl = 0;
    this.#notifyIfEmpty();
  }

  // After messages ended (acknowledged or failed): wake whoever waits for that.
  #ended(): void {
    this.#notifyIfEmpty();
    if (this.#flushes.length > 0) this.#flushes.reached(this.#oldestOrder());
  }

  // Order of the oldest message not yet ended: stream order is submission order, and messages
  // waiting for room come after every message in the stream.
  #oldestOrder(): number {
    return (
      this.stream.oldest()?.order ?? this.#waiters.peek()?.entry.order ?? Number.POSITIVE_INFINITY
    );
  }

  #overCap(bytes: number): TetherError {
    return new TetherError(
      ErrorCode.QUEUE_FULL,
      `message of ${bytes} bytes exceeds the outbox byte cap`,
    );
  }

  #full(): TetherError {
    return new TetherError(
      ErrorCode.QUEUE_FULL,
      `outbox full (${this.stream.count} messages, ${this.stream.bytes} bytes)`,
    );
  }

  #isEmpty(): boolean {
    return this.stream.count === 0 && this.#waiters.length === 0;
  }

  #notifyIfEmpty(): void {
    if (this.#emptyWaiters.length === 0 || !this.#isEmpty()) return;
    for (const resolve of this.#emptyWaiters.splice(0)) resolve();
  }

  #fits(bytes: number): boolean {
    return (
      this.stream.count < this.#limits.maxMessages &&
      this.stream.bytes + bytes <= this.#limits.maxBytes
    );
  }

  // Under 'drop-oldest', drops queued (never transmitted) messages until `bytes` fit. Messages in
  // flight are never dropped: the server may already have delivered them.
  #makeRoom(bytes: number): boolean {
    if (this.#fits(bytes)) return true;
    if (this.#limits.overflow !== OverflowPolicy.DROP_OLDEST) return false;
    // Drop nothing unless dropping would make room: in-flight messages alone may fill the outbox.
    const inFlightFits =
      this.stream.inFlightCount < this.#limits.maxMessages &&
      this.stream.inFlightBytes + bytes <= this.#limits.maxBytes;
    if (!inFlightFits) return false;
    while (!this.#fits(bytes)) {
      const oldest = this.stream.dropOldestQueued();
      if (oldest === undefined) return false;
      if (oldest.expiresAt !== Number.POSITIVE_INFINITY) this.#withTtl--;
      oldest.reject(
        new TetherError(ErrorCode.MESSAGE_DROPPED, 'dropped by the drop-oldest overflow policy'),
      );
      this.#onDrop(oldest);
    }
    if (this.#flushes.length > 0) this.#flushes.reached(this.#oldestOrder());
    return true;
  }

  #enqueue(entry: PendingSend): void {
    this.stream.enqueue(entry);
    if (entry.expiresAt !== Number.POSITIVE_INFINITY) {
      this.#withTtl++;
      this.#armTtl(entry.expiresAt);
    }
    this.#onEnqueued();
  }

  #admitWaiters(): void {
    for (let next = this.#waiters.peek(); next !== undefined; next = this.#waiters.peek()) {
      if (!this.#fits(next.entry.payload.length)) return;
      this.#waiters.shift();
      this.#detach(next);
      if (next.entry.expiresAt !== Number.POSITIVE_INFINITY) this.#withTtl--;
      this.#enqueue(next.entry);
    }
  }

  #detach(waiter: Waiter): void {
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }

  #armTtl(at: number): void {
    if (at >= this.#ttlTimerAt) return;
    this.#scheduler.clearTimeout(this.#ttlTimer);
    this.#ttlTimerAt = at;
    this.#ttlTimer = this.#scheduler.setTimeout(
      () => this.#onTtlTimer(),
      Math.max(0, at - this.#scheduler.now()),
    );
  }

  #onTtlTimer(): void {
    this.#ttlTimer = undefined;
    this.#ttlTimerAt = Number.POSITIVE_INFINITY;
    const now = this.#scheduler.now();
    this.expire(now);
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.stream.queued()) next = Math.min(next, entry.expiresAt);
    for (const waiter of this.#waiters) next = Math.min(next, waiter.entry.expiresAt);
    if (next !== Number.POSITIVE_INFINITY) this.#armTtl(next);
  }
}

function expiredError(): TetherError {
  return new TetherError(ErrorCode.MESSAGE_EXPIRED, 'message TTL passed before it could be sent');
}
