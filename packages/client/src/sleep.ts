import type { Scheduler } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';

/** Resolves after `ms`, or rejects with ABORTED when `signal` fires first. */
export function sleep(ms: number, signal: AbortSignal, scheduler: Scheduler): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new TetherError(ErrorCode.ABORTED, 'aborted'));
      return;
    }
    const onAbort = (): void => {
      scheduler.clearTimeout(timer);
      reject(new TetherError(ErrorCode.ABORTED, 'aborted'));
    };
    const timer = scheduler.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
