import { ErrorCode } from './error-codes.js';
import { ProtocolError, TetherError } from './errors.js';

/** Where an outgoing transfer stands on the current connection. */
export const FileSendPhase = {
  /** FILE_OFFER sent (or about to be); waiting for FILE_ACCEPT. */
  OFFERING: 'offering',
  /** Accepted: sending chunks from the receiver's committed offset. */
  SENDING: 'sending',
  /** Every byte and FILE_END sent; waiting for FILE_COMPLETE (or a rewind). */
  ENDED: 'ended',
  /** FILE_COMPLETE matched the offer. */
  DONE: 'done',
  /** Failed or cancelled; nothing more is sent. */
  FAILED: 'failed',
} as const;
export type FileSendPhase = (typeof FileSendPhase)[keyof typeof FileSendPhase];

/** What the sender should put on the wire next. */
export type FileSendAction =
  /** Read `length` bytes at `offset` and send them as a FILE_CHUNK. `epoch` as in {@link FileSendState.epoch}. */
  | { kind: 'chunk'; offset: number; length: number; epoch: number }
  /** Send FILE_END. */
  | { kind: 'end' };

/** What a FILE_STATUS meant to the sender. */
export const FileStatusVerdict = {
  /** The committed offset moved forward: the window opened. */
  ADVANCE: 'advance',
  /** The offset did not move forward: the receiver discarded a chunk; resend from there. */
  REWIND: 'rewind',
  /** Not applicable now (not sending, or an offset beyond what was sent). */
  IGNORE: 'ignore',
} as const;
export type FileStatusVerdict = (typeof FileStatusVerdict)[keyof typeof FileStatusVerdict];

/** Options of {@link FileSendState}. */
export interface FileSendOptions {
  /** File size in bytes. */
  size: number;
  /** Largest data size per FILE_CHUNK; default 256 KiB. */
  chunkSize?: number;
  /** Bytes in flight beyond the receiver's latest reported offset; default 8 MiB. */
  windowBytes?: number;
}

/** Default data bytes per FILE_CHUNK (PROTOCOL.md section 7). */
export const DEFAULT_FILE_CHUNK: number = 256 * 1024;
/** Default flow-control window per transfer (PROTOCOL.md section 7). */
export const DEFAULT_FILE_WINDOW: number = 8 * 1024 * 1024;

/**
 * The sending half of one file transfer, without I/O (PROTOCOL.md section 13). It knows offsets,
 * never bytes: `poll` says which range to read and send next, FILE_ACCEPT and FILE_STATUS move the
 * receiver's committed offset (the base of the flow-control window), and a status that does not
 * move forward rewinds the sender to it.
 *
 * Reading a chunk is asynchronous for the caller, so a rewind may overtake a read: `epoch` changes
 * on every accept and rewind, and a chunk polled in an older epoch must be dropped, not sent. With
 * at most one read in flight per transfer and the epoch check, chunks go out in offset order,
 * which the receiver relies on (it ignores any offset but its committed one).
 */
export class FileSendState {
  readonly size: number;
  readonly chunkSize: number;
  readonly windowBytes: number;
  #phase: FileSendPhase = FileSendPhase.OFFERING;
  /** The receiver's latest reported committed offset. */
  #committed = 0;
  /** Next offset to send. */
  #next = 0;
  #epoch = 0;
  #endSent = false;

  constructor(options: FileSendOptions) {
    const { size } = options;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TypeError(`size must be a non-negative safe integer, got ${size}`);
    }
    const chunkSize = options.chunkSize ?? DEFAULT_FILE_CHUNK;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
      throw new TypeError(`chunkSize must be a positive integer, got ${options.chunkSize}`);
    }
    const windowBytes = options.windowBytes ?? DEFAULT_FILE_WINDOW;
    if (!Number.isSafeInteger(windowBytes) || windowBytes < 1) {
      throw new TypeError(`windowBytes must be a positive integer, got ${options.windowBytes}`);
    }
    this.size = size;
    this.chunkSize = chunkSize;
    // A window smaller than one chunk would never let a chunk out.
    this.windowBytes = Math.max(windowBytes, chunkSize);
  }

  get phase(): FileSendPhase {
    return this.#phase;
  }

  /** The receiver's latest reported committed offset. */
  get committed(): number {
    return this.#committed;
  }

  /** Next offset `poll` hands out. */
  get next(): number {
    return this.#next;
  }

  /** Bytes sent beyond the committed offset. */
  get inFlight(): number {
    return this.#next - this.#committed;
  }

  /** Changes on every accept and rewind: chunks polled in an older epoch must not be sent. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether the transfer is finished (done or failed). */
  get finished(): boolean {
    return this.#phase === FileSendPhase.DONE || this.#phase === FileSendPhase.FAILED;
  }

  /** A FILE_OFFER goes out (first time or after a reconnect): wait for FILE_ACCEPT. */
  offer(): void {
    if (this.finished) return;
    this.#phase = FileSendPhase.OFFERING;
    this.#epoch++;
  }

  /**
   * FILE_ACCEPT: the receiver's committed offset is authoritative; resume exactly there.
   * Returns an error when the offset is past the end of the file.
   */
  accept(offset: number): ProtocolError | undefined {
    if (this.#phase !== FileSendPhase.OFFERING) {
      return new ProtocolError(ErrorCode.UNEXPECTED_FRAME, 'FILE_ACCEPT without a pending offer');
    }
    if (offset > this.size) {
      return new ProtocolError(
        ErrorCode.UNEXPECTED_FRAME,
        `FILE_ACCEPT offset ${offset} is past the end of the file (${this.size} bytes)`,
      );
    }
    this.#committed = offset;
    this.#next = offset;
    this.#endSent = false;
    this.#epoch++;
    this.#phase = FileSendPhase.SENDING;
    return undefined;
  }

  /**
   * FILE_STATUS. An offset above the previous one advances the window; one that is not above it
   * is a rewind request (the receiver discarded a chunk): sending restarts at that offset, and
   * FILE_END is sent again after the re-sent chunks. An offset beyond what was sent is ignored.
   */
  status(offset: number): FileStatusVerdict {
    if (this.#phase !== FileSendPhase.SENDING && this.#phase !== FileSendPhase.ENDED) {
      return FileStatusVerdict.IGNORE;
    }
    if (offset > this.#next) return FileStatusVerdict.IGNORE;
    if (offset > this.#committed) {
      this.#committed = offset;
      return FileStatusVerdict.ADVANCE;
    }
    this.#committed = offset;
    this.#next = offset;
    this.#endSent = false;
    this.#epoch++;
    this.#phase = FileSendPhase.SENDING;
    return FileStatusVerdict.REWIND;
  }

  /**
   * The next thing to send, or undefined to wait (window full, everything sent, or not sending).
   * A chunk is counted as sent as soon as it is polled.
   */
  poll(): FileSendAction | undefined {
    if (this.#phase !== FileSendPhase.SENDING) return undefined;
    if (this.#next >= this.size) {
      if (this.#endSent) return undefined;
      this.#endSent = true;
      this.#phase = FileSendPhase.ENDED;
      return { kind: 'end' };
    }
    const length = Math.min(this.chunkSize, this.size - this.#next);
    if (this.#next + length - this.#committed > this.windowBytes) return undefined;
    const action: FileSendAction = {
      kind: 'chunk',
      offset: this.#next,
      length,
      epoch: this.#epoch,
    };
    this.#next += length;
    return action;
  }

  /**
   * FILE_COMPLETE: done when the receiver stored what was sent: the offered size and `expected`,
   * the SHA-256 of the file as the sender hashed it. Returns an error when either differs (the
   * transfer is then failed).
   */
  complete(size: number, sha256: string, expected: string): TetherError | undefined {
    if (this.finished) return undefined;
    if (size !== this.size || sha256 !== expected) {
      this.#phase = FileSendPhase.FAILED;
      return new TetherError(
        ErrorCode.FILE_CHECKSUM_MISMATCH,
        `the receiver stored ${size} bytes with SHA-256 ${sha256}, sent ${this.size} bytes with ${expected}`,
      );
    }
    this.#committed = size;
    this.#phase = FileSendPhase.DONE;
    return undefined;
  }

  /** FILE_FAILED, FILE_CANCEL or a local failure: stop sending. */
  fail(): void {
    if (this.#phase !== FileSendPhase.DONE) this.#phase = FileSendPhase.FAILED;
  }
}
