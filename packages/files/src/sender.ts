import { statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import {
  crc32,
  ErrorCode,
  encodeFileCancel,
  encodeFileChunk,
  encodeFileEnd,
  encodeFileOffer,
  FILE_CHUNK_PREFIX,
  type FileSendAction,
  FileSendPhase,
  FileSendState,
  FileStatusVerdict,
  isErrorCode,
  TetherError,
} from '@tether/protocol';
import { checkFileName } from './file-name.js';
import { transferId } from './fingerprint.js';
import { hashFile, readExactly } from './hash.js';
import { errnoCode } from './io.js';
import type { Port } from './port.js';
import { Transfer, type TransferInit, type TransferResult } from './transfer.js';

/** Settings of the sending half, resolved by the engine. */
export interface SenderOptions {
  owner: string;
  chunkSize: number;
  windowBytes: number;
  concurrency: number;
  now: () => number;
}

/** Options of `sendFile`. */
export interface SendFileOptions {
  /** Name to offer; default the file's base name. */
  name?: string;
  /** Aborting rejects `done` with ABORTED and cancels the transfer. */
  signal?: AbortSignal;
}

// Bytes of a FILE_CHUNK's `length` field that are not data: type, flags, id, offset, CRC.
const CHUNK_OVERHEAD = FILE_CHUNK_PREFIX - 4;
// Progress rate: committed bytes over this trailing span.
const RATE_SPAN_MS = 5000;

/** One outgoing file and everything the sender knows about it. */
interface Outgoing {
  readonly transfer: Transfer;
  readonly resolve: (result: TransferResult) => void;
  readonly reject: (error: TetherError) => void;
  readonly id: string;
  readonly path: string;
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly startedAt: number;
  handle: fs.FileHandle | undefined;
  /** Known once the file is hashed: the transfer can then be offered. */
  sha256: string | undefined;
  /** State of the offer on the current connection; undefined while not offered. */
  state: FileSendState | undefined;
  /** Generation of the connection `state` belongs to. */
  generation: number;
  /** A chunk read is in flight (at most one per transfer: chunks leave in offset order). */
  reading: boolean;
  /** The offer whose FILE_ACCEPT is being checked (the file must not have changed). */
  accepting: FileSendState | undefined;
  finished: boolean;
  bytesSent: number;
  committed: number;
  resumedFrom: number | undefined;
  samples: { at: number; bytes: number }[];
  unlisten: () => void;
}

/**
 * The sending half of a transfer engine: a queue of files, `concurrency` of them prepared (opened
 * and hashed) and offered at once, chunks read and sent round-robin, one chunk per transfer per
 * turn, while the link is writable and each transfer's window has room.
 */
export class Sender {
  readonly #port: Port;
  readonly #options: SenderOptions;
  readonly #byId = new Map<string, Outgoing>();
  readonly #queue: Outgoing[] = [];
  readonly #active: Outgoing[] = [];
  readonly #closing = new Set<Promise<void>>();
  #turn = 0;
  #pumping = false;
  #closed = false;

  constructor(port: Port, options: SenderOptions) {
    this.#port = port;
    this.#options = options;
  }

  /** Outgoing transfers not finished (queued or running). */
  get count(): number {
    return this.#byId.size;
  }

  sendFile(path: string, options: SendFileOptions = {}): Transfer {
    const absolute = nodePath.resolve(path);
    const name = options.name ?? nodePath.basename(absolute);
    const refuse = (code: ErrorCode, message: string, cause?: unknown): Transfer =>
      refusedTransfer(
        { id: '', name, size: 0, path: absolute },
        new TetherError(code, message, { cause }),
      );
    if (this.#closed) return refuse(ErrorCode.CLOSED, 'the transfer engine is closed');
    if (options.signal?.aborted) {
      return refuse(ErrorCode.ABORTED, 'the signal was aborted', options.signal.reason);
    }
    const problem = checkFileName(name);
    if (problem !== undefined) return refuse(ErrorCode.FILE_NAME_INVALID, problem);
    let stats: { size: number; mtimeMs: number; isFile(): boolean };
    try {
      // Synchronous so the transfer has its id and size at once; one stat is cheap.
      stats = statSync(absolute);
    } catch (error) {
      return refuse(codeOf(error), `cannot stat ${absolute}`, error);
    }
    if (!stats.isFile()) return refuse(ErrorCode.FILE_NOT_FOUND, `${absolute} is not a file`);
    const id = transferId({
      path: absolute,
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      peer: this.#options.owner,
    });
    const init: TransferInit = { id, name, size: stats.size, path: absolute };
    if (this.#byId.has(id)) {
      return refusedTransfer(
        init,
        new TetherError(ErrorCode.INVALID_OPTION, `${absolute} is already being sent (${id})`),
      );
    }

    let resolve!: (result: TransferResult) => void;
    let reject!: (error: TetherError) => void;
    let outgoing: Outgoing | undefined;
    const transfer = new Transfer(
      init,
      () => {
        if (outgoing !== undefined) {
          this.#fail(
            outgoing,
            new TetherError(ErrorCode.FILE_CANCELLED, 'the transfer was cancelled'),
            true,
          );
        }
      },
      (res, rej) => {
        resolve = res;
        reject = rej;
      },
    );
    outgoing = {
      transfer,
      resolve,
      reject,
      id,
      path: absolute,
      name,
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      startedAt: this.#options.now(),
      handle: undefined,
      sha256: undefined,
      state: undefined,
      generation: -1,
      reading: false,
      accepting: undefined,
      finished: false,
      bytesSent: 0,
      committed: 0,
      resumedFrom: undefined,
      samples: [],
      unlisten: () => {},
    };
    const signal = options.signal;
    if (signal !== undefined) {
      const o = outgoing;
      const onAbort = (): void =>
        this.#fail(
          o,
          new TetherError(ErrorCode.ABORTED, 'the signal was aborted', { cause: signal.reason }),
          true,
        );
      signal.addEventListener('abort', onAbort, { once: true });
      outgoing.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    this.#byId.set(id, outgoing);
    this.#queue.push(outgoing);
    this.#startNext();
    return transfer;
  }

  /** A connection is up: offer every prepared transfer; FILE_ACCEPT says where each resumes. */
  attach(): void {
    for (const o of this.#active) this.#offer(o);
  }

  /** The connection dropped: every offer is void; transfers wait for the next connection. */
  detach(): void {
    for (const o of this.#active) o.state = undefined;
  }

  onAccept(id: string, offset: number): void {
    const o = this.#byId.get(id);
    const state = o?.state;
    if (o === undefined || state === undefined) return;
    if (state.phase !== FileSendPhase.OFFERING || o.accepting === state) return;
    o.accepting = state;
    void this.#checkUnchanged(o).then(
      () => {
        if (o.accepting === state) o.accepting = undefined;
        if (o.finished || o.state !== state) return;
        const error = state.accept(offset);
        if (error !== undefined) {
          this.#fail(o, error, true);
          return;
        }
        o.resumedFrom ??= offset;
        o.committed = offset;
        o.samples = [{ at: this.#options.now(), bytes: offset }];
        this.#progress(o);
        this.pump();
      },
      (error: unknown) => {
        if (o.accepting === state) o.accepting = undefined;
        this.#fail(o, toTetherError(error), true);
      },
    );
  }

  onStatus(id: string, offset: number): void {
    const o = this.#byId.get(id);
    if (o?.state === undefined) return;
    const verdict = o.state.status(offset);
    if (verdict === FileStatusVerdict.IGNORE) return;
    o.committed = offset;
    if (verdict === FileStatusVerdict.ADVANCE) {
      o.samples.push({ at: this.#options.now(), bytes: offset });
      this.#progress(o);
    }
    this.pump();
  }

  onComplete(id: string, size: number, sha256: string): void {
    const o = this.#byId.get(id);
    if (o?.state === undefined) return;
    const error = o.state.complete(size, sha256);
    if (error !== undefined) {
      this.#fail(o, error, false);
      return;
    }
    o.committed = size;
    this.#progress(o);
    this.#finish(o);
    o.resolve({
      id: o.id,
      name: o.name,
      size: o.size,
      sha256,
      durationMs: this.#options.now() - o.startedAt,
      resumedFrom: o.resumedFrom ?? 0,
      bytesSent: o.bytesSent,
    });
  }

  onFailed(id: string, code: string, message: string): void {
    const o = this.#byId.get(id);
    if (o?.state === undefined) return;
    const known = isErrorCode(code) ? code : ErrorCode.REMOTE_ERROR;
    this.#fail(o, new TetherError(known, `the receiver refused the file: ${message}`), false);
  }

  /** FILE_CANCEL from the receiver. Returns whether it named one of our transfers. */
  onCancel(id: string, reason: string): boolean {
    const o = this.#byId.get(id);
    if (o?.state === undefined) return false;
    this.#fail(
      o,
      new TetherError(ErrorCode.FILE_CANCELLED, `the receiver cancelled: ${reason}`),
      false,
    );
    return true;
  }

  /**
   * Sends what the link and the windows allow: one chunk per transfer per turn, round-robin, so
   * concurrent transfers share the link; stops while the link is not writable. Called again on
   * drain (`pump`), on FILE_STATUS and after each chunk read.
   */
  pump(): void {
    if (this.#pumping || !this.#port.attached) return;
    this.#pumping = true;
    try {
      const n = this.#active.length;
      const start = this.#turn++ % Math.max(n, 1);
      for (let i = 0; i < n; i++) {
        if (!this.#port.writable()) break;
        const o = this.#active[(start + i) % n];
        const state = o?.state;
        if (o === undefined || state === undefined || o.reading || o.handle === undefined) continue;
        const action = state.poll();
        if (action === undefined) continue;
        if (action.kind === 'end') {
          this.#port.send(encodeFileEnd({ id: o.id }));
          continue;
        }
        o.reading = true;
        void this.#readAndSend(o, o.handle, state, action);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Fails every transfer with `error` and closes every file. */
  async close(error: TetherError): Promise<void> {
    this.#closed = true;
    for (const o of [...this.#byId.values()]) this.#fail(o, error, false);
    await Promise.all(this.#closing);
  }

  async #readAndSend(
    o: Outgoing,
    handle: fs.FileHandle,
    state: FileSendState,
    action: Extract<FileSendAction, { kind: 'chunk' }>,
  ): Promise<void> {
    let data: Buffer;
    try {
      data = await readExactly(handle, action.length, action.offset);
    } catch (error) {
      o.reading = false;
      this.#fail(o, toTetherError(error), true);
      return;
    }
    o.reading = false;
    // A rewind, a reconnect or the end of the transfer overtook the read: drop the chunk.
    if (!o.finished && o.state === state && state.epoch === action.epoch && this.#port.attached) {
      this.#port.send(encodeFileChunk(o.id, action.offset, crc32(data), data));
      o.bytesSent += data.length;
    }
    this.pump();
  }

  #startNext(): void {
    while (this.#active.length < this.#options.concurrency && this.#queue.length > 0) {
      const o = this.#queue.shift() as Outgoing;
      this.#active.push(o);
      void this.#prepare(o);
    }
  }

  /** Opens and hashes the file (streaming), then offers it if a connection is up. */
  async #prepare(o: Outgoing): Promise<void> {
    try {
      const handle = await fs.open(o.path, 'r');
      if (o.finished) {
        await handle.close();
        return;
      }
      o.handle = handle;
      await this.#checkUnchanged(o);
      const sha256 = await hashFile(handle, o.size);
      await this.#checkUnchanged(o);
      if (o.finished) return;
      o.sha256 = sha256;
      this.#offer(o);
    } catch (error) {
      this.#fail(o, toTetherError(error), false);
    }
  }

  async #checkUnchanged(o: Outgoing): Promise<void> {
    const stats = await (o.handle as fs.FileHandle).stat();
    if (stats.size !== o.size || stats.mtimeMs !== o.mtimeMs) {
      throw new TetherError(
        ErrorCode.FILE_CHANGED,
        `${o.path} changed since sendFile (size or modification time); send it again`,
      );
    }
  }

  #offer(o: Outgoing): void {
    if (!this.#port.attached || o.sha256 === undefined || o.finished) return;
    const sha256 = o.sha256;
    const chunkSize = Math.max(
      1,
      Math.min(this.#options.chunkSize, this.#port.maxFrame - CHUNK_OVERHEAD),
    );
    o.state = new FileSendState({
      size: o.size,
      sha256,
      chunkSize,
      windowBytes: this.#options.windowBytes,
    });
    o.generation = this.#port.generation;
    this.#port.send(encodeFileOffer({ id: o.id, name: o.name, size: o.size, sha256 }));
  }

  #fail(o: Outgoing, error: TetherError, notifyPeer: boolean): void {
    if (o.finished) return;
    const offered = o.state !== undefined && o.generation === this.#port.generation;
    if (notifyPeer && offered && this.#port.attached) {
      this.#port.send(encodeFileCancel({ id: o.id, reason: error.message }));
    }
    this.#finish(o);
    o.reject(error);
  }

  #finish(o: Outgoing): void {
    o.finished = true;
    o.state?.fail();
    o.unlisten();
    this.#byId.delete(o.id);
    removeFrom(this.#queue, o);
    removeFrom(this.#active, o);
    const handle = o.handle;
    o.handle = undefined;
    if (handle !== undefined) {
      const closing = handle.close().catch(() => {});
      this.#closing.add(closing);
      void closing.then(() => this.#closing.delete(closing));
    }
    if (!this.#closed) this.#startNext();
    this.pump();
  }

  #progress(o: Outgoing): void {
    const now = this.#options.now();
    while (o.samples.length > 2 && now - (o.samples[0]?.at ?? now) > RATE_SPAN_MS)
      o.samples.shift();
    const first = o.samples[0];
    const last = o.samples[o.samples.length - 1];
    let rate = 0;
    if (first !== undefined && last !== undefined && last.at > first.at) {
      rate = ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
    }
    o.transfer.emit('progress', {
      id: o.id,
      bytesSent: o.bytesSent,
      bytesCommitted: o.committed,
      total: o.size,
      rateBytesPerSec: rate,
      etaMs: rate > 0 ? ((o.size - o.committed) * 1000) / rate : undefined,
    });
  }
}

function refusedTransfer(init: TransferInit, error: TetherError): Transfer {
  return new Transfer(
    init,
    () => {},
    (_resolve, reject) => reject(error),
  );
}

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}

function codeOf(error: unknown): ErrorCode {
  const code = errnoCode(error);
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return ErrorCode.FILE_NOT_FOUND;
  return ErrorCode.FILE_READ_FAILED;
}

function toTetherError(error: unknown): TetherError {
  if (error instanceof TetherError) return error;
  if (errnoCode(error) === 'ESHORT') {
    return new TetherError(ErrorCode.FILE_CHANGED, 'the file shrank while it was being sent', {
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TetherError(codeOf(error), `cannot read the file: ${message}`, { cause: error });
}
