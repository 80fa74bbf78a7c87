import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import { ErrorCode, FileReceiveState, TetherError } from '@tether/protocol';
import type { FileIo } from './io.js';
import type { PartialStore, Sidecar } from './partial-store.js';
import type { ReceiveDirectory, Tenant } from './receive-directory.js';

// Every DEFAULT_FILE_SYNC_BYTES (4 MiB) written the data is fsynced in the background, so the
// fsync at FILE_END has little left to write; the offset is recorded in the sidecar (a file
// written, fsynced and renamed: a checkpoint a restart resumes from) with that fsync at most this
// often, so a fast transfer records a few a second rather than one per 4 MiB. A link drop or the
// end of the transfer makes everything durable and recorded at once whatever the interval.
const CHECKPOINT_INTERVAL_MS = 250;

/** What an {@link Incoming} tells the receiver. */
export interface IncomingHooks {
  /** A write, checkpoint or reopen failed: the receiver fails the transfer. */
  failed(incoming: Incoming, error: unknown): void;
  /** Bytes were written: a FILE_STATUS may be due. */
  written(incoming: Incoming): void;
  /** Another connection offered this transfer: stop it for good. */
  fence(incoming: Incoming): Promise<void>;
}

/** What an accepted offer starts with. */
export interface IncomingInit {
  id: string;
  name: string;
  size: number;
  /** The connection (port generation) that accepted it. */
  generation: number;
  /** The FILE_ACCEPT offset: bytes already durable in the partial. */
  committed: number;
  /** The partial, open, holding a place under the directory's `maxOpenTransfers`. */
  handle: FileHandle;
  /** Bytes reserved in the directory for the rest of the file. */
  reserved: number;
}

/**
 * One incoming file on one connection: the partial it writes, in order, through one FileHandle,
 * with its checkpoints, its running SHA-256 and what it holds in the directory (an open place,
 * reserved bytes). It is the partial's only writer (its directory {@link Tenant}) until it
 * stops. Idle for the directory's `idleMs`, it checkpoints and closes the file and gives back its
 * place and reservation; the next chunk takes them again before it is written.
 */
export class Incoming implements Tenant {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  readonly generation: number;
  readonly state: FileReceiveState;
  /** The SHA-256 FILE_END announced; the file is verified against it. */
  expectedSha256: string | undefined;
  /**
   * Running SHA-256 of the bytes written to the partial, in order, when this transfer wrote it
   * from byte 0 (else the partial is hashed at the end).
   */
  readonly hash: Hash | undefined;
  /** Failed, cancelled, paused or done: pending work stops, the files are not touched again. */
  stopped = false;
  /** A chunk or FILE_END of it arrived: a repeated offer is no longer answered as the first. */
  received = false;
  /** The receiver letting go of the partial (once: checkpoint or delete, close, no writer). */
  retiring: Promise<void> | undefined;
  /** Monotonic ms of the last chunk accepted. */
  lastProgress: number;
  /** The committed offset a rewind was last asked for (by a discard or a gap). */
  rewoundAt = -1;
  /** A chunk above the committed offset arrived: a rewind status is owed once writes settle. */
  gapRewind = false;
  readonly #store: PartialStore;
  readonly #directory: ReceiveDirectory;
  readonly #io: FileIo;
  readonly #owner: string;
  readonly #now: () => number;
  readonly #hooks: IncomingHooks;
  #handle: FileHandle | undefined;
  #reserved: number;
  /** Writes, reopens, idling and the final verification, in order. */
  #chain: Promise<void> = Promise.resolve();
  /** Chunks accepted and not yet handed to a write, in offset order. */
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  #writeScheduled = false;
  /** An idle task is queued. */
  #idling = false;
  /** The durable checkpoint in progress, if any (it runs beside the writes). */
  #checkpointing: Promise<void> | undefined;
  /** When the last checkpoint started (or the transfer was accepted). */
  #checkpointAt: number;
  /** Offset up to which the data is known fsynced (recorded in the sidecar or not). */
  #flushed: number;

  constructor(
    init: IncomingInit,
    context: {
      store: PartialStore;
      directory: ReceiveDirectory;
      io: FileIo;
      owner: string;
      now: () => number;
    },
    hooks: IncomingHooks,
  ) {
    this.id = init.id;
    this.name = init.name;
    this.size = init.size;
    this.generation = init.generation;
    this.state = new FileReceiveState({ size: init.size, committed: init.committed });
    this.hash = init.committed === 0 ? createHash('sha256') : undefined;
    this.#handle = init.handle;
    this.#reserved = init.reserved;
    this.#store = context.store;
    this.#directory = context.directory;
    this.#io = context.io;
    this.#owner = context.owner;
    this.#now = context.now;
    this.#hooks = hooks;
    this.#checkpointAt = context.now();
    this.#flushed = init.committed;
    this.lastProgress = context.directory.now();
  }

  /** `<ownerKey>/<id>`: the partial's key in the directory. */
  get key(): string {
    return `${this.#store.key}/${this.id}`;
  }

  /** Whether it holds its file open or bytes reserved. */
  get holding(): boolean {
    return this.#handle !== undefined || this.#reserved > 0;
  }

  /** Whether the partial is open now. */
  get open(): boolean {
    return this.#handle !== undefined;
  }

  /** A chunk the state machine accepted (WRITE): write it after the ones before it. */
  take(data: Buffer): void {
    this.lastProgress = this.#directory.now();
    this.#queued.push(data);
    this.#queuedBytes += data.length;
    if (!this.#writeScheduled) {
      this.#writeScheduled = true;
      this.enqueue(() => this.#writeQueued());
    }
  }

  /** Appends work to the chain; a failure is reported and does not block what follows. */
  enqueue(task: () => Promise<void>): void {
    this.#chain = this.#chain.then(task).catch((error: unknown) => {
      this.#hooks.failed(this, error);
    });
  }

  /** Waits for the writes and the checkpoint in progress. */
  async settled(): Promise<void> {
    await this.#chain;
    while (this.#checkpointing !== undefined) await this.#checkpointing;
  }

  /** Waits for a checkpoint in progress (one would write its sidecar over a completion record). */
  async checkpointDone(): Promise<void> {
    while (this.#checkpointing !== undefined) await this.#checkpointing;
  }

  /** Makes the committed bytes durable: fsync the data, then record the offset in the sidecar. */
  async checkpoint(): Promise<void> {
    const committed = await this.#flushData();
    await this.#store.write(this.sidecar(committed));
    this.state.checkpoint(committed);
  }

  /** Checkpoints what is written and not yet durable (the file must be open). */
  async checkpointIfNeeded(): Promise<void> {
    if (this.#handle !== undefined && this.state.committed > this.state.synced) {
      await this.checkpoint();
    }
  }

  /** The open partial (for hashing and the final fsync). */
  handle(): FileHandle {
    if (this.#handle === undefined) throw new Error(`the partial of ${this.id} is closed`);
    return this.#handle;
  }

  /** Closes the partial, gives back its place and its reservation. Idempotent. */
  async close(): Promise<void> {
    this.#giveBackReservation();
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    this.#directory.releaseOpenSlot();
    await handle.close().catch(() => {});
  }

  /** The directory found it idle: checkpoint and close after the writes in progress. */
  idle(): void {
    if (this.#idling) return;
    this.#idling = true;
    this.enqueue(async () => {
      try {
        // Stopped, or a chunk came in meanwhile: nothing to do.
        if (this.stopped) return;
        if (this.#directory.now() - this.lastProgress < this.#directory.idleMs) return;
        await this.checkpointDone();
        await this.checkpointIfNeeded();
        await this.close();
      } finally {
        this.#idling = false;
      }
    });
  }

  /** Another connection takes the partial over. */
  fence(): Promise<void> {
    return this.#hooks.fence(this);
  }

  /** The sidecar for this transfer at `committed`. */
  sidecar(committed: number): Sidecar {
    return {
      version: 1,
      id: this.id,
      owner: this.#owner,
      name: this.name,
      size: this.size,
      committed,
      updatedAt: Date.now(),
    };
  }

  /**
   * Writes every chunk queued since the last write with one call (a burst of chunks costs one
   * system call), at the committed offset, reopening the partial first if it went idle. A
   * checkpoint due after it starts beside the next writes.
   */
  async #writeQueued(): Promise<void> {
    if (this.stopped) return;
    if (this.#handle === undefined) await this.reopen();
    const chunks = this.#queued;
    const bytes = this.#queuedBytes;
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#writeScheduled = false;
    if (this.stopped || bytes === 0) return;
    const writing = this.#io.write(this.handle(), chunks, this.state.committed);
    // The hash takes exactly the bytes handed to the write at the committed offset, while the
    // write runs; if it fails, the transfer fails and this hash is never used.
    for (const chunk of chunks) this.hash?.update(chunk);
    await writing;
    this.state.written(bytes);
    const released = Math.min(this.#reserved, bytes);
    this.#reserved -= released;
    this.#directory.release(released);
    this.#startCheckpoint();
    this.#hooks.written(this);
  }

  /** Takes a place and the disk space for the rest of the file again, then reopens the partial. */
  async reopen(): Promise<void> {
    const directory = this.#directory;
    if (!directory.takeOpenSlot()) {
      throw new TetherError(
        ErrorCode.TOO_MANY_TRANSFERS,
        'the receiver has too many transfers open; offer the file again later',
      );
    }
    let handle: FileHandle | undefined;
    try {
      const need = this.size - this.state.committed;
      const free = await directory.reserve(need);
      if (free !== undefined) {
        throw new TetherError(
          ErrorCode.FILE_NO_SPACE,
          `${need} bytes to store, ${free} free (keeping ${directory.minFreeBytes})`,
        );
      }
      this.#reserved = need;
      handle = await fs.open(this.#store.partPath(this.id), 'r+');
    } catch (error) {
      directory.releaseOpenSlot();
      this.#giveBackReservation();
      throw error;
    }
    if (this.stopped) {
      directory.releaseOpenSlot();
      this.#giveBackReservation();
      await handle.close();
      return;
    }
    this.#handle = handle;
  }

  #giveBackReservation(): void {
    this.#directory.release(this.#reserved);
    this.#reserved = 0;
  }

  /**
   * Every 4 MiB written, fsyncs the data in the background, and records a checkpoint with it when
   * the last one is CHECKPOINT_INTERVAL_MS old: writes go on meanwhile (fdatasync covers what was
   * written before it started, which is all it records). One at a time.
   */
  #startCheckpoint(): void {
    const { state } = this;
    if (this.stopped || this.#checkpointing !== undefined) return;
    if (state.committed - this.#flushed < state.syncEveryBytes) return;
    const now = this.#now();
    const record = state.needsSync && now - this.#checkpointAt >= CHECKPOINT_INTERVAL_MS;
    if (record) this.#checkpointAt = now;
    const work = record ? this.checkpoint() : this.#flushData();
    this.#checkpointing = work.then(
      () => {
        this.#checkpointing = undefined;
        this.#startCheckpoint();
      },
      (error: unknown) => {
        this.#checkpointing = undefined;
        this.#hooks.failed(this, error);
      },
    );
  }

  /** fsyncs the data written so far; returns the offset that is now durable. */
  async #flushData(): Promise<number> {
    const committed = this.state.committed;
    await this.handle().datasync();
    this.#flushed = Math.max(this.#flushed, committed);
    return committed;
  }
}
