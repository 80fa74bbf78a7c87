import type { TetherError } from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';

/** A snapshot of an outgoing transfer, emitted as `progress`. */
export interface TransferProgress {
  /** Transfer id (32 hex characters). */
  id: string;
  /** File bytes put on the wire by this transfer so far, re-sent bytes included. */
  bytesSent: number;
  /** The receiver's committed offset: bytes it has stored. */
  bytesCommitted: number;
  /** File size. */
  total: number;
  /** Committed bytes per second over the last few seconds (0 until measurable). */
  rateBytesPerSec: number;
  /** Estimated time to completion at that rate; undefined while the rate is 0. */
  etaMs: number | undefined;
}

/** What a finished outgoing transfer resolves to. */
export interface TransferResult {
  id: string;
  /** Name the file was offered under. */
  name: string;
  size: number;
  /** SHA-256 the receiver verified (lowercase hex). */
  sha256: string;
  /** From `sendFile` to FILE_COMPLETE, waiting included. */
  durationMs: number;
  /** Offset of the first FILE_ACCEPT: bytes a previous attempt had already delivered. */
  resumedFrom: number;
  /** File bytes this transfer put on the wire, re-sent bytes included. */
  bytesSent: number;
}

/** Events of a {@link Transfer}. */
export interface TransferEvents {
  progress: (progress: TransferProgress) => void;
}

/** Identity of a transfer, fixed when `sendFile` is called. */
export interface TransferInit {
  id: string;
  name: string;
  size: number;
  path: string;
}

/**
 * One outgoing file, as returned by `sendFile`. It emits `progress` as the receiver commits
 * bytes, and `done` settles once: with the result, or with a `TetherError` whose `code` says why
 * (FILE_CANCELLED after `cancel()`, ABORTED when the signal fired, CLOSED when the engine closed,
 * a receiver's FILE_FAILED code, FILE_NOT_FOUND, FILE_CHANGED ...). A rejection nobody awaits is
 * not reported as unhandled.
 */
export class Transfer extends EventEmitter<TransferEvents> {
  /** Transfer id: 32 hex characters from the file's fingerprint; '' when the file is missing. */
  readonly id: string;
  /** Name the file is offered under. */
  readonly name: string;
  /** Size in bytes, from `stat` when `sendFile` was called. */
  readonly size: number;
  /** Absolute path of the file. */
  readonly path: string;
  /** Settles once the transfer is finished. */
  readonly done: Promise<TransferResult>;
  readonly #cancel: () => void;

  /**
   * Created by `TransferEngine.sendFile`, not by applications. `settle` receives the functions
   * that settle `done`, as a promise executor does.
   */
  constructor(
    init: TransferInit,
    cancel: () => void,
    settle: (
      resolve: (result: TransferResult) => void,
      reject: (error: TetherError) => void,
    ) => void,
  ) {
    super();
    this.id = init.id;
    this.name = init.name;
    this.size = init.size;
    this.path = init.path;
    this.#cancel = cancel;
    this.done = new Promise<TransferResult>(settle);
    this.done.catch(() => {});
  }

  /**
   * Abandons the transfer: `done` rejects with FILE_CANCELLED and, when the receiver knows the
   * transfer on the current connection, FILE_CANCEL tells it to delete the partial. No-op once
   * finished.
   */
  cancel(): void {
    this.#cancel();
  }
}
