import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import { ErrorCode, TetherError } from '@tether/protocol';
import { hashRange, readInto } from './hash.js';
import type { Source } from './source.js';

/**
 * The file an outgoing transfer reads, as `sendFile` found it (size, mtime). It is opened once,
 * watched for changes, read through one handle, and hashed once, in offset order: by the chunks
 * as they are read (`feed`), and from the file for what no chunk carried (`hashTo`, `seal`).
 */
export class SourceFile implements Source {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  #handle: FileHandle | undefined;
  #closed = false;
  readonly #hash = createHash('sha256');
  /** Bytes 0 to `#hashedTo` are in the hash. */
  #hashedTo = 0;
  /** Bytes being hashed from the file (one caller at a time). */
  #hashing: Promise<void> | undefined;
  #sealing: Promise<string> | undefined;
  #sha256: string | undefined;
  #unwatch: () => void = () => {};

  constructor(path: string, size: number, mtimeMs: number) {
    this.path = path;
    this.size = size;
    this.mtimeMs = mtimeMs;
  }

  /** SHA-256 of the whole file, once sealed. */
  get sha256(): string | undefined {
    return this.#sha256;
  }

  /**
   * Opens the file, watches it (`changed` is called on every change event) and checks it is
   * unchanged. Returns false when the file was closed meanwhile (the transfer ended).
   */
  async open(changed: () => void): Promise<boolean> {
    const handle = await fs.open(this.path, 'r');
    if (this.#closed) {
      await handle.close();
      return false;
    }
    this.#handle = handle;
    this.#watch(changed);
    await this.checkUnchanged();
    return true;
  }

  /** Throws FILE_CHANGED when the file's size or mtime differ from `sendFile`'s. */
  async checkUnchanged(): Promise<void> {
    const stats = await this.#open().stat();
    if (stats.size !== this.size || stats.mtimeMs !== this.mtimeMs) {
      throw new TetherError(
        ErrorCode.FILE_CHANGED,
        `${this.path} changed since sendFile (size or modification time); send it again`,
      );
    }
  }

  /** Reads `target.length` bytes at `offset` (ESHORT when the file is shorter). */
  read(target: Uint8Array, offset: number): Promise<void> {
    return readInto(this.#open(), target, offset);
  }

  /**
   * Feeds the data of a chunk read at `offset` into the hash, past what is hashed already (a
   * chunk re-sent after a rewind adds nothing). Returns false when it cannot: a gap before
   * `offset`, the file being hashed, or the hash sealed.
   */
  feed(offset: number, data: Uint8Array): boolean {
    if (this.#hashing !== undefined || this.#sha256 !== undefined) return false;
    if (offset > this.#hashedTo) return false;
    const end = offset + data.length;
    if (end > this.#hashedTo) {
      this.#hash.update(data.subarray(this.#hashedTo - offset));
      this.#hashedTo = end;
    }
    return true;
  }

  /** Hashes the file's bytes from what is hashed up to `offset` (a resume past them). */
  async hashTo(offset: number): Promise<void> {
    while (this.#hashing !== undefined) await this.#hashing;
    if (offset <= this.#hashedTo || this.#sha256 !== undefined) return;
    const hashing = hashRange(this.#open(), this.#hash, this.#hashedTo, offset).then(() => {
      this.#hashedTo = offset;
    });
    this.#hashing = hashing;
    try {
      await hashing;
    } finally {
      this.#hashing = undefined;
    }
  }

  /**
   * Finishes the whole file's SHA-256 once: hashes what no chunk carried (normally nothing) and
   * checks that the file did not change since `sendFile` (FILE_CHANGED). Concurrent callers
   * share the one result.
   */
  seal(): Promise<string> {
    if (this.#sha256 !== undefined) return Promise.resolve(this.#sha256);
    this.#sealing ??= (async () => {
      try {
        await this.hashTo(this.size);
        await this.checkUnchanged();
        this.#sha256 = this.#hash.digest('hex');
        return this.#sha256;
      } finally {
        this.#sealing = undefined;
      }
    })();
    return this.#sealing;
  }

  /** Stops watching and closes the file (after a read in flight). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unwatch();
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => {});
  }

  #open(): FileHandle {
    if (this.#handle === undefined) throw new Error(`${this.path} is not open`);
    return this.#handle;
  }

  /**
   * Where the file system can be watched, `changed` hears of every modification at once;
   * elsewhere the checks at FILE_ACCEPT and before FILE_END remain.
   */
  #watch(changed: () => void): void {
    try {
      const watcher = watch(this.path, { persistent: false });
      watcher.on('change', changed);
      watcher.on('error', () => watcher.close());
      this.#unwatch = () => watcher.close();
    } catch {
      // No watch here (no inotify instance left, a file system without events): stat checks only.
    }
  }
}
