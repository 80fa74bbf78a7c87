import { crc32 } from './crc32.js';

/** Where an incoming transfer stands. */
export const FileReceivePhase = {
  /** Accepting chunks. */
  RECEIVING: 'receiving',
  /** Every byte is written and FILE_END arrived: the caller verifies and stores the file. */
  VERIFYING: 'verifying',
  /** Stored (FILE_COMPLETE sent). */
  DONE: 'done',
  /** Failed or cancelled; every later frame is ignored. */
  FAILED: 'failed',
} as const;
export type FileReceivePhase = (typeof FileReceivePhase)[keyof typeof FileReceivePhase];

/** What to do with a FILE_CHUNK (PROTOCOL.md section 13, flow step 4). */
export const ChunkVerdict = {
  /** In order and intact: write the data at its offset, then call `written`. */
  WRITE: 'write',
  /** Not at the expected offset (a duplicate, or sent after a discarded chunk), or not receiving. */
  IGNORE: 'ignore',
  /** At the expected offset but corrupt (CRC-32) or past the end: dropped, a rewind is owed. */
  DISCARD: 'discard',
} as const;
export type ChunkVerdict = (typeof ChunkVerdict)[keyof typeof ChunkVerdict];

/** Options of {@link FileReceiveState}. */
export interface FileReceiveOptions {
  /** Size of the file, from FILE_OFFER. */
  size: number;
  /** Committed offset the receiver resumes from (the FILE_ACCEPT offset); default 0. */
  committed?: number;
  /** Ask for a durable checkpoint (fsync, sidecar) after this many bytes; default 4 MiB. */
  syncEveryBytes?: number;
}

/** Default distance between durable checkpoints of a partial file. */
export const DEFAULT_FILE_SYNC_BYTES: number = 4 * 1024 * 1024;

/**
 * The receiving half of one file transfer, without I/O (PROTOCOL.md section 13). Writes are
 * asynchronous for the caller, so two offsets are kept: `expected`, the offset the next chunk must
 * carry (it moves when a chunk is accepted for writing), and `committed`, the bytes actually
 * written (it moves when the caller reports a finished write, in order). FILE_STATUS reports
 * `committed`.
 *
 * Statuses are coalesced: the caller asks `takeStatus` once per read burst (or once per event-loop
 * turn) and sends what it returns. An offset is never reported twice except to ask for a rewind:
 * after a discard the rewind status is held until every pending write is done, so that it carries
 * exactly the offset the sender must resend from, and does not read as an advance.
 */
export class FileReceiveState {
  readonly size: number;
  readonly syncEveryBytes: number;
  #phase: FileReceivePhase = FileReceivePhase.RECEIVING;
  #expected: number;
  #committed: number;
  /** Last offset sent in FILE_ACCEPT or FILE_STATUS. */
  #reported: number;
  /** Last durable checkpoint. */
  #synced: number;
  #rewindOwed = false;
  #endRequested = false;

  constructor(options: FileReceiveOptions) {
    const { size } = options;
    const committed = options.committed ?? 0;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TypeError(`size must be a non-negative safe integer, got ${size}`);
    }
    if (!Number.isSafeInteger(committed) || committed < 0 || committed > size) {
      throw new TypeError(`committed must be an integer from 0 to size, got ${committed}`);
    }
    const syncEveryBytes = options.syncEveryBytes ?? DEFAULT_FILE_SYNC_BYTES;
    if (!Number.isSafeInteger(syncEveryBytes) || syncEveryBytes < 1) {
      throw new TypeError(`syncEveryBytes must be a positive integer, got ${syncEveryBytes}`);
    }
    this.size = size;
    this.syncEveryBytes = syncEveryBytes;
    this.#expected = committed;
    this.#committed = committed;
    this.#reported = committed;
    this.#synced = committed;
  }

  get phase(): FileReceivePhase {
    return this.#phase;
  }

  /** Offset the next chunk must carry. */
  get expected(): number {
    return this.#expected;
  }

  /** Bytes written to the partial file, in order from the start. */
  get committed(): number {
    return this.#committed;
  }

  /** Bytes accepted whose write has not finished. */
  get pending(): number {
    return this.#expected - this.#committed;
  }

  /** Offset of the last durable checkpoint. */
  get synced(): number {
    return this.#synced;
  }

  /** Whether a durable checkpoint is due (`syncEveryBytes` written since the last one). */
  get needsSync(): boolean {
    return this.#committed - this.#synced >= this.syncEveryBytes;
  }

  /** Every byte is written and FILE_END arrived: verify the file now (then call `verify`). */
  get readyToVerify(): boolean {
    return (
      this.#phase === FileReceivePhase.RECEIVING &&
      this.#endRequested &&
      this.#committed === this.size
    );
  }

  /**
   * Classifies a FILE_CHUNK. WRITE moves `expected` past the data; the caller writes it at
   * `offset` and then calls `written`. DISCARD leaves every offset alone and owes a rewind.
   */
  chunk(offset: number, data: Uint8Array, checksum: number): ChunkVerdict {
    if (this.#phase !== FileReceivePhase.RECEIVING) return ChunkVerdict.IGNORE;
    if (offset !== this.#expected || data.length === 0) return ChunkVerdict.IGNORE;
    if (offset + data.length > this.size || crc32(data) !== checksum >>> 0) {
      this.#rewindOwed = true;
      return ChunkVerdict.DISCARD;
    }
    this.#expected += data.length;
    return ChunkVerdict.WRITE;
  }

  /** A write of `length` bytes finished (writes finish in the order they were accepted). */
  written(length: number): void {
    if (this.#committed + length > this.#expected) {
      throw new RangeError(`written ${length} bytes beyond the accepted offset`);
    }
    this.#committed += length;
  }

  /** A durable checkpoint at `offset` was taken (data fsynced, sidecar saved). */
  checkpoint(offset: number): void {
    if (offset > this.#synced) this.#synced = Math.min(offset, this.#committed);
  }

  /**
   * Whether a status is owed that should not wait: a rewind (once no write is pending), the whole
   * file committed, or an advance of at least `step` bytes since the last report. A smaller
   * advance may wait to be coalesced with the next ones; `takeStatus` sends it either way.
   */
  statusDue(step: number): boolean {
    if (this.#phase !== FileReceivePhase.RECEIVING) return false;
    if (this.#rewindOwed && this.#committed === this.#expected) return true;
    if (this.#committed <= this.#reported) return false;
    return this.#committed === this.size || this.#committed - this.#reported >= step;
  }

  /**
   * The FILE_STATUS offsets to send now, in order: the committed offset when it moved, then, when
   * a rewind is owed and no write is pending, the same offset again. Empty when nothing is owed.
   */
  takeStatus(): number[] {
    if (this.#phase !== FileReceivePhase.RECEIVING) return [];
    const out: number[] = [];
    if (this.#committed > this.#reported) {
      this.#reported = this.#committed;
      out.push(this.#committed);
    }
    if (this.#rewindOwed && this.#committed === this.#expected) {
      this.#rewindOwed = false;
      out.push(this.#committed);
    }
    return out;
  }

  /**
   * FILE_END. Returns true when it counts: every byte was accepted (a FILE_END that arrives while
   * a rewind is under way is ignored; the sender sends it again). Verification starts once the
   * pending writes are done: see `readyToVerify`.
   */
  end(): boolean {
    if (this.#phase !== FileReceivePhase.RECEIVING) return false;
    if (this.#expected !== this.size) return false;
    this.#endRequested = true;
    return true;
  }

  /** The caller starts verifying (after `readyToVerify`): later chunks and ENDs are ignored. */
  verify(): void {
    if (this.readyToVerify) this.#phase = FileReceivePhase.VERIFYING;
  }

  /** The file is stored. */
  done(): void {
    this.#phase = FileReceivePhase.DONE;
  }

  /** The transfer failed or was cancelled. */
  fail(): void {
    if (this.#phase !== FileReceivePhase.DONE) this.#phase = FileReceivePhase.FAILED;
  }
}
