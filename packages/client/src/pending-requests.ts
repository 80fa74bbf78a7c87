import { type Scheduler, systemScheduler, type TimerHandle } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';

interface Pending {
  resolve(reply: Buffer): void;
  reject(error: Error): void;
  timer: TimerHandle | undefined;
  cleanup: () => void;
}

/**
 * Requests waiting for their response, keyed by request id. They survive reconnects (the request
 * and its response travel in the reliable streams); they end by response, timeout, abort or close.
 */
export class PendingRequests {
  readonly #scheduler: Scheduler;
  readonly #useId: ((id: number) => void) | undefined;
  #pending = new Map<number, Pending>();
  #nextId: number;

  /**
   * Request ids start at `firstId`; `useId` hears of each before it is used (a store reserves
   * them, so that a restart never reuses an id whose response may still come).
   */
  constructor(scheduler: Scheduler = systemScheduler, firstId = 1, useId?: (id: number) => void) {
    this.#scheduler = scheduler;
    this.#nextId = firstId;
    this.#useId = useId;
  }

  get size(): number {
    return this.#pending.size;
  }

  /**
   * Registers a request; `onGiveUp` runs when it times out or is aborted (to unqueue it). An
   * already aborted signal rejects at once.
   */
  open(
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onGiveUp: (id: number) => void,
  ): { id: number; reply: Promise<Buffer> } {
    const id = this.#nextId++;
    this.#useId?.(id);
    const reply = new Promise<Buffer>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new TetherError(ErrorCode.ABORTED, 'request aborted', { cause: signal.reason }));
        return;
      }
      const onAbort = (): void =>
        this.#end(
          id,
          new TetherError(ErrorCode.ABORTED, 'request aborted', { cause: signal?.reason }),
          onGiveUp,
        );
      const timer =
        timeoutMs === Number.POSITIVE_INFINITY
          ? undefined
          : this.#scheduler.setTimeout(
              () =>
                this.#end(
                  id,
                  new TetherError(ErrorCode.REQUEST_TIMEOUT, `no response within ${timeoutMs} ms`),
                  onGiveUp,
                ),
              timeoutMs,
            );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve,
        reject,
        timer,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
    });
    return { id, reply };
  }

  /** Settles the request `id` with the peer's response; unknown ids (late answers) are ignored. */
  settle(id: number, reply: Buffer, failed: boolean): void {
    const pending = this.#take(id);
    if (pending === undefined) return;
    if (!failed) {
      pending.resolve(reply);
      return;
    }
    let code: string = ErrorCode.REQUEST_FAILED;
    let message = 'the peer failed the request';
    try {
      const body = JSON.parse(reply.toString('utf8')) as { code?: unknown; message?: unknown };
      if (typeof body.message === 'string') message = body.message;
      if (typeof body.code === 'string') code = body.code;
    } catch {
      // Keep the generic description: the payload was not the JSON the protocol asks for.
    }
    const error = new TetherError(ErrorCode.REQUEST_FAILED, message);
    (error as TetherError & { remoteCode?: string }).remoteCode = code;
    pending.reject(error);
  }

  /** Rejects request `id` with a local error (it could not be sent). */
  fail(id: number, error: Error): void {
    this.#take(id)?.reject(error);
  }

  /** Whether request `id` still waits for its response. */
  has(id: number): boolean {
    return this.#pending.has(id);
  }

  /** Rejects every pending request with `error`. */
  failAll(error: Error): void {
    for (const id of [...this.#pending.keys()]) this.#take(id)?.reject(error);
  }

  #end(id: number, error: Error, onGiveUp: (id: number) => void): void {
    const pending = this.#take(id);
    if (pending === undefined) return;
    onGiveUp(id);
    pending.reject(error);
  }

  #take(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    this.#scheduler.clearTimeout(pending.timer);
    pending.cleanup();
    return pending;
  }
}
