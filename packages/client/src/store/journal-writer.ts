import * as fs from 'node:fs';
import type { Scheduler } from '@tether/core';
import { RecordArena } from './record-codec.js';
import type { SessionCursor } from './session-cursor.js';

/** What the writer asks of the store it writes for. */
export interface JournalHost {
  /** Encodes the whole current state into `arena` as a fresh journal (compaction). */
  snapshot(arena: RecordArena): void;
  /** Bytes a snapshot of the current state takes, about. */
  liveBytes(): number;
  /** A write, sync or rename failed: the store is unusable from now on. */
  failed(error: Error): void;
}

/** Settings of a writer. */
export interface JournalWriterOptions {
  /** The journal file. Compaction writes `${path}.tmp` and renames it over. */
  path: string;
  /** The directory holding it (fsynced after a rename). */
  dir: string;
  /** fsync each batch (policy 'batch') or leave writing back to the OS ('never'). */
  sync: boolean;
  scheduler: Scheduler;
  /** Compact once the journal is this large and COMPACT_RATIO times the live state. */
  compactMinBytes: number;
}

/** Counters of a writer. */
export interface JournalWriterStats {
  /** Bytes of the journal file now. */
  fileBytes: number;
  /** Batches written (one write each, and one fsync each under policy 'batch'). */
  batches: number;
  /** fsync calls (journal and session file). */
  syncs: number;
  compactions: number;
}

/** Compact when the journal is more than this many times the size of its live state. */
export const COMPACT_RATIO = 4;

// A promise made only when someone waits for it: most batches have no waiter.
class Batch {
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #reject: ((error: Error) => void) | undefined;
  /** Once settled: null for success, or the error. */
  #outcome: Error | null | undefined;

  get promise(): Promise<void> {
    if (this.#promise === undefined) {
      const outcome = this.#outcome;
      this.#promise =
        outcome === undefined
          ? new Promise<void>((resolve, reject) => {
              this.#resolve = resolve;
              this.#reject = reject;
            })
          : outcome === null
            ? Promise.resolve()
            : Promise.reject(outcome);
    }
    return this.#promise;
  }

  settle(error?: Error): void {
    this.#outcome = error ?? null;
    if (error === undefined) this.#resolve?.();
    else this.#reject?.(error);
  }
}

/**
 * Appends records to the journal with group commit: records appended while a batch is being
 * written (and fsynced) go out together in the next one, so a burst of sends costs one `writev`
 * and, under policy 'batch', one fsync, whatever its size. When the journal has grown past
 * COMPACT_RATIO times its live state it is rewritten from a snapshot (temp file, fsync, rename,
 * fsync of the directory) between two batches.
 */
export class JournalWriter {
  /** Encode records here, then call `touch`. */
  readonly arena: RecordArena = new RecordArena();
  readonly #options: JournalWriterOptions;
  readonly #host: JournalHost;
  readonly #cursor: SessionCursor;
  #fd: number;
  /** The batch the records in the arena will go out in. */
  #next: Batch | undefined;
  /** The batch being written. */
  #writing: Batch | undefined;
  #scheduled = false;
  #failed: Error | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** close() was called (set before its first write, so no compaction starts after). */
  #ending = false;
  #stats: JournalWriterStats;

  /** `fd` is the journal, open for writing at its end (`fileBytes`). */
  constructor(
    fd: number,
    fileBytes: number,
    cursor: SessionCursor,
    options: JournalWriterOptions,
    host: JournalHost,
  ) {
    this.#fd = fd;
    this.#cursor = cursor;
    this.#options = options;
    this.#host = host;
    this.#stats = { fileBytes, batches: 0, syncs: 0, compactions: 0 };
  }

  get stats(): JournalWriterStats {
    return { ...this.#stats };
  }

  /** Records were added to the arena: a batch will write them soon. */
  touch(): void {
    if (this.#scheduled || this.#writing !== undefined || this.#closed) return;
    this.#scheduled = true;
    this.#options.scheduler.defer(this.#flush);
  }

  /**
   * Resolves once every record appended so far is written (and fsynced under policy 'batch',
   * with the session file); undefined when that is already so. Rejects once the store failed.
   */
  commit(): Promise<void> | undefined {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    // Closing: what was recorded goes out with the last writes.
    if (this.#closing !== undefined) return this.#closing;
    if (this.arena.bytes > 0 || this.#cursorToSync()) {
      this.touch();
      this.#next ??= new Batch();
      return this.#next.promise;
    }
    return this.#writing?.promise;
  }

  /** Writes what is left, closes the journal. Never rejects (a failure was reported already). */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#ending = true;
      this.#closing = this.#close();
    }
    return this.#closing;
  }

  async #close(): Promise<void> {
    // From here on the state may be taken apart (the client fails what it holds at close):
    // what is left to write goes out as records, never as a snapshot of that state.
    while (this.#failed === undefined) {
      if (this.#writing !== undefined) {
        await this.#writing.promise.catch(() => {});
        continue;
      }
      if (!this.#pending()) break;
      this.#flush();
    }
    this.#closed = true;
    fs.closeSync(this.#fd);
  }

  #pending(): boolean {
    return this.arena.bytes > 0 || this.#cursorToSync();
  }

  #cursorToSync(): boolean {
    return this.#options.sync && this.#cursor.dirty;
  }

  #flush = (): void => {
    this.#scheduled = false;
    if (this.#writing !== undefined || this.#failed !== undefined || this.#closed) return;
    if (this.#compactionDue()) {
      this.#compact();
      return;
    }
    const parts = this.arena.take();
    const syncCursor = this.#cursorToSync();
    if (parts.length === 0 && !syncCursor) return;
    this.#cursor.dirty = false;
    const batch = this.#next ?? new Batch();
    this.#next = undefined;
    this.#writing = batch;
    const sync = this.#options.sync;
    const write = parts.length > 0;
    // Steps before the batch is durable: the write and its fsync, the session file's fsync.
    let steps = (write ? 1 : 0) + (write && sync ? 1 : 0) + (syncCursor ? 1 : 0);
    const step = (error: Error | null): void => {
      if (this.#failed !== undefined) return;
      if (error !== null) this.#fail(error);
      else if (--steps === 0) this.#done(batch);
    };
    if (syncCursor) this.#fsync(this.#cursor.fd, step);
    if (!write) return;
    this.#stats.batches++;
    fs.writev(this.#fd, parts, (error, written) => {
      if (error === null) this.#stats.fileBytes += written;
      if (error === null && sync) this.#fsync(this.#fd, step);
      step(error);
    });
  };

  #done(batch: Batch): void {
    this.#writing = undefined;
    batch.settle();
    // Records that came during the write form the next batch at once: that is group commit.
    if (this.#pending() && !this.#closed) this.#flush();
  }

  #fsync(fd: number, callback: (error: Error | null) => void): void {
    this.#stats.syncs++;
    fs.fdatasync(fd, callback);
  }

  #compactionDue(): boolean {
    if (this.#ending) return false;
    const bytes = this.#stats.fileBytes;
    return bytes >= this.#options.compactMinBytes && bytes > COMPACT_RATIO * this.#host.liveBytes();
  }

  // Rewrites the journal from a snapshot of the state. The records waiting in the arena are
  // already part of that state, so they are dropped; their batch settles with the snapshot.
  #compact(): void {
    this.arena.take();
    const syncCursor = this.#cursorToSync();
    this.#cursor.dirty = false;
    const batch = this.#next ?? new Batch();
    this.#next = undefined;
    this.#writing = batch;
    const snapshot = new RecordArena();
    this.#host.snapshot(snapshot);
    const { path, dir, sync } = this.#options;
    const temp = `${path}.tmp`;
    this.#stats.compactions++;
    this.#stats.batches++;
    void (async () => {
      // A raw descriptor, not a FileHandle: it stays open as the journal after the rename.
      const fd = await call<number>((done) => fs.open(temp, 'w', 0o600, done));
      try {
        const written = await call<number>((done) => fs.writev(fd, snapshot.take(), done));
        if (sync) {
          this.#stats.syncs += syncCursor ? 2 : 1;
          await call<void>((done) => fs.fdatasync(fd, done));
          if (syncCursor) await call<void>((done) => fs.fdatasync(this.#cursor.fd, done));
        }
        await call<void>((done) => fs.rename(temp, path, done));
        if (sync) await syncDirectory(dir);
        const old = this.#fd;
        this.#fd = fd;
        this.#stats.fileBytes = written;
        fs.close(old, () => {});
      } catch (error) {
        fs.close(fd, () => {});
        throw error;
      }
    })().then(
      () => this.#done(batch),
      (error: Error) => this.#fail(error),
    );
  }

  #fail(error: Error): void {
    if (this.#failed !== undefined) return;
    this.#failed = error;
    this.#writing?.settle(error);
    this.#next?.settle(error);
    this.#writing = undefined;
    this.#next = undefined;
    this.#host.failed(error);
  }
}

// Runs a callback-style fs call as a promise.
function call<T>(run: (done: (error: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) =>
    run((error, value) => (error ? reject(error) : resolve(value as T))),
  );
}

/** fsyncs a directory, so a rename in it is durable (where the platform allows it). */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Windows cannot open a directory: there a rename is as durable as it gets.
    if (!['EISDIR', 'EPERM', 'EACCES'].includes((error as NodeJS.ErrnoException).code ?? '')) {
      throw error;
    }
  } finally {
    await handle?.close();
  }
}

/** Synchronous {@link syncDirectory}, for opening a store. */
export function syncDirectorySync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (error) {
    if (!['EISDIR', 'EPERM', 'EACCES'].includes((error as NodeJS.ErrnoException).code ?? '')) {
      throw error;
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
