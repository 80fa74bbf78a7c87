/** An opaque handle of a timer set by a {@link Scheduler}. */
export type TimerHandle = unknown;

/**
 * Every clock read and every timer of a connection, a client and a server goes through one of
 * these, so their logic runs in fake time in tests (undici routes its timers through one module
 * for the same reason). Times are milliseconds of a monotonic clock.
 */
export interface Scheduler {
  /** Monotonic time in ms. */
  now(): number;
  /** Runs `callback` once after `ms`. An `unref`'d timer does not keep a Node process alive. */
  setTimeout(callback: () => void, ms: number, unref?: boolean): TimerHandle;
  /** Cancels a timer (a handle of a timer that already ran, or undefined, is ignored). */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Runs `callback` after the I/O callbacks of the current turn (Node's `setImmediate`): work
   * queued by every read of a turn is then done once.
   */
  defer(callback: () => void): void;
}

/** The real clock and timers of the runtime. */
export const systemScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout(callback, ms, unref = false) {
    const timer = setTimeout(callback, ms);
    if (unref) timer.unref?.();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout> | undefined);
  },
  defer(callback) {
    if (typeof setImmediate === 'function') setImmediate(callback);
    else deferInBrowser(callback);
  },
};

// Browsers have no setImmediate. A MessageChannel task runs after the current task's I/O
// events, like an immediate, and hidden tabs do not throttle it as they throttle timers: the
// batched write of an ACK or PONG leaves at once even in a background tab.
let channel:
  | { port1: { onmessage: unknown }; port2: { postMessage(value: null): void } }
  | undefined;
const waiting: (() => void)[] = [];

function deferInBrowser(callback: () => void): void {
  waiting.push(callback);
  if (waiting.length > 1) return;
  if (channel === undefined) {
    const Channel = (
      globalThis as unknown as { MessageChannel?: new () => NonNullable<typeof channel> }
    ).MessageChannel;
    if (Channel === undefined) {
      // Neither: a resolved promise still never waits for a timer.
      void Promise.resolve().then(runWaiting);
      return;
    }
    channel = new Channel();
    channel.port1.onmessage = runWaiting;
  }
  channel.port2.postMessage(null);
}

function runWaiting(): void {
  for (const callback of waiting.splice(0)) {
    try {
      callback();
    } catch (error) {
      // One callback's failure must not cost the others their turn; it is still reported.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

/** A scheduler whose `now` is `now()` and whose timers are the system's (an injected clock). */
export function schedulerWithClock(now: () => number): Scheduler {
  return { ...systemScheduler, now };
}

interface VirtualTimer {
  readonly at: number;
  readonly order: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * A scheduler in fake time, for tests: nothing runs until `advance` (or `runDeferred`) says so;
 * timers fire in due order, each at its own time, and deferred callbacks run before time moves.
 */
export class VirtualScheduler implements Scheduler {
  #now: number;
  #order = 0;
  #timers: VirtualTimer[] = [];
  #deferred: (() => void)[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: VirtualTimer = {
      at: this.#now + Math.max(0, ms),
      order: this.#order++,
      callback,
      cancelled: false,
    };
    this.#timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle !== undefined && handle !== null) (handle as VirtualTimer).cancelled = true;
  }

  defer(callback: () => void): void {
    this.#deferred.push(callback);
  }

  /** Timers set and not yet run or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /**
   * Runs deferred callbacks, `turns` event-loop turns of them: each turn runs the callbacks
   * deferred before it began (as Node runs, in one check phase, the immediates queued before
   * it), those deferred meanwhile wait for the next. By default, until none is left.
   */
  runDeferred(turns: number = Number.POSITIVE_INFINITY): void {
    for (let round = 0; round < turns && this.#deferred.length > 0; round++) {
      if (round > 10_000) throw new Error('deferred callbacks keep deferring');
      for (const callback of this.#deferred.splice(0)) callback();
    }
  }

  /** Moves time forward by `ms`, running every timer due on the way, each at its due time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    this.runDeferred();
    for (;;) {
      const next = this.#next();
      if (next === undefined || next.at > end) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      this.runDeferred();
    }
    this.#now = end;
  }

  #next(): VirtualTimer | undefined {
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    let next: VirtualTimer | undefined;
    for (const timer of this.#timers) {
      if (
        next === undefined ||
        timer.at < next.at ||
        (timer.at === next.at && timer.order < next.order)
      ) {
        next = timer;
      }
    }
    return next;
  }
}
