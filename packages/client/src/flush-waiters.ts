import type { Scheduler, TimerHandle } from '@tether/core';
import { ErrorCode, Fifo, TetherError } from '@tether/protocol';

interface FlushWaiter {
  /** Order of the newest message submitted before the flush: it waits for every one up to it. */
  readonly mark: number;
  resolve(): void;
  reject(error: Error): void;
  timer: TimerHandle | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * The pending `flush()` calls of a client, oldest first. Messages enter the outbox in increasing
 * order, so a flush is done once the oldest message still pending is newer than its mark; marks
 * never decrease, so flushes finish in the order they were made. Each may also end on its
 * timeout (FLUSH_TIMEOUT), its signal (ABORTED) or the client's end (`failAll`).
 */
export class FlushWaiters {
  readonly #scheduler: Scheduler;
  readonly #waiters = new Fifo<FlushWaiter>();

  constructor(scheduler: Scheduler) {
    this.#scheduler = scheduler;
  }

  get length(): number {
    return this.#waiters.length;
  }

  /** A flush that waits for every message up to `mark` to end. */
  add(mark: number, timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: FlushWaiter = {
        mark,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      if (timeoutMs !== undefined) {
        waiter.timer = this.#scheduler.setTimeout(
          () =>
            this.#end(
              waiter,
              new TetherError(
                ErrorCode.FLUSH_TIMEOUT,
                `messages before the flush not acknowledged within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }
      if (signal !== undefined) {
        waiter.onAbort = () =>
          this.#end(
            waiter,
            new TetherError(ErrorCode.ABORTED, 'flush aborted', { cause: signal.reason }),
          );
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  /** Resolves the flushes whose every message ended: `oldest` is the oldest pending order. */
  reached(oldest: number): void {
    for (let next = this.#waiters.peek(); next !== undefined; next = this.#waiters.peek()) {
      if (next.mark >= oldest) return;
      this.#waiters.shift();
      this.#detach(next);
      next.resolve();
    }
  }

  /** Rejects every pending flush with `error` (the client closed or failed). */
  failAll(error: Error): void {
    for (const waiter of this.#waiters.clear()) {
      this.#detach(waiter);
      waiter.reject(error);
    }
  }

  // A flush that ends on its own (timeout, signal) leaves the others waiting.
  #end(waiter: FlushWaiter, error: TetherError): void {
    if (this.#waiters.removeWhere((w) => w === waiter).length === 0) return;
    this.#detach(waiter);
    waiter.reject(error);
  }

  #detach(waiter: FlushWaiter): void {
    this.#scheduler.clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }
}
