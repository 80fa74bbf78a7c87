import { createHash, type Hash } from 'node:crypto';
import { statSync, watch } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import {
  ErrorCode,
  encodeFileCancel,
  encodeFileEnd,
  encodeFileOffer,
  FILE_CHUNK_PREFIX,
  FileChunkBuffer,
  FileSendPhase,
  FileSendState,
  FileStatusVerdict,
  isErrorCode,
  TetherError,
} from '@tether/protocol';
import { checkFileName } from './file-name.js';
import { transferId } from './fingerprint.js';
import { hashRange, readInto } from './hash.js';
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
// File bytes read ahead of the link, per transfer: while the socket drains one chunk the next
// ones are read, so a drain finds a chunk ready and the socket never waits for the disk. One
// read at a time per transfer: the disk outruns the link, and the thread pool stays free for
// other work (a stat, the receiving side's writes).
const READ_AHEAD_BYTES = 1024 * 1024;
// And at most this many chunks (small chunks when the peer's frame limit is small).
const READ_AHEAD_CHUNKS = 8;

/** A chunk polled from the state machine: being read, then ready to send. */
interface ChunkRead {
  readonly state: FileSendState;
  readonly epoch: number;
  readonly offset: number;
  readonly length: number;
  /** The sealed FILE_CHUNK once its bytes are read. */
  frame: Buffer | undefined;
}

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
  /** Opened and found unchanged: the transfer can be offered. */
  prepared: boolean;
  /** Running SHA-256 of bytes 0 to `hashedTo`, fed in offset order as chunks are read. */
  readonly hash: Hash;
  hashedTo: number;
  /** Bytes hashed from the file itself (a resume past `hashedTo`, or the end), in progress. */
  hashing: Promise<void> | undefined;
  /** The whole file's SHA-256 is being finished: nothing is sent meanwhile. */
  sealing: boolean;
  /** SHA-256 of the whole file, once every byte is hashed and the file was found unchanged. */
  sha256: string | undefined;
  /** State of the offer on the current connection; undefined while not offered. */
  state: FileSendState | undefined;
  /** Generation of the connection `state` belongs to. */
  generation: number;
  /** Chunks polled and being read or ready, in offset order: they leave from the front. */
  reads: ChunkRead[];
  /** Data bytes in `reads`. */
  readBytes: number;
  /** A read is in flight. */
  reading: boolean;
  /** FILE_END is due after the chunks in `reads`: the epoch it was polled in, else -1. */
  endEpoch: number;
  /** End offset of the chunks put on the wire since the last accept or rewind. */
  sentTo: number;
  /** FILE_END went out since the last accept or rewind: FILE_COMPLETE is awaited. */
  endSent: boolean;
  /** The offer whose FILE_ACCEPT is being checked (the file must not have changed). */
  accepting: FileSendState | undefined;
  finished: boolean;
  bytesSent: number;
  committed: number;
  resumedFrom: number | undefined;
  samples: { at: number; bytes: number }[];
  unlisten: () => void;
  /** Stops watching the file for changes. */
  unwatch: () => void;
}

/**
 * The sending half of a transfer engine: a queue of files, `concurrency` of them opened and
 * offered at once, chunks read and sent round-robin, one chunk per transfer per turn, while the
 * link is writable and each transfer's window has room. Each file is hashed as its chunks go out
 * (it is read once), and FILE_END carries its SHA-256.
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
  /** Some transfer's data on the current link waits for the receiver's progress. */
  #awaiting = false;
  #recheck: NodeJS.Immediate | undefined;
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
      prepared: false,
      hash: createHash('sha256'),
      hashedTo: 0,
      hashing: undefined,
      sealing: false,
      sha256: undefined,
      state: undefined,
      generation: -1,
      reads: [],
      readBytes: 0,
      reading: false,
      endEpoch: -1,
      sentTo: 0,
      endSent: false,
      accepting: undefined,
      finished: false,
      bytesSent: 0,
      committed: 0,
      resumedFrom: undefined,
      samples: [],
      unlisten: () => {},
      unwatch: () => {},
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
    this.#awaiting = false;
    for (const o of this.#active) {
      o.state = undefined;
      clearReads(o);
    }
  }

  onAccept(id: string, offset: number): void {
    const o = this.#byId.get(id);
    const state = o?.state;
    if (o === undefined || state === undefined) return;
    if (state.phase !== FileSendPhase.OFFERING || o.accepting === state) return;
    o.accepting = state;
    void this.#accept(o, state, offset);
  }

  async #accept(o: Outgoing, state: FileSendState, offset: number): Promise<void> {
    try {
      await this.#checkUnchanged(o);
      // Resuming past what this process hashed (the receiver kept an earlier run's bytes):
      // hash those bytes from the file, so the SHA-256 still covers it from byte 0.
      if (offset <= o.size) await this.#hashTo(o, offset);
    } catch (error) {
      if (o.accepting === state) o.accepting = undefined;
      this.#fail(o, toTetherError(error), true);
      return;
    }
    if (o.accepting === state) o.accepting = undefined;
    if (o.finished || o.state !== state) return;
    const error = state.accept(offset);
    if (error !== undefined) {
      this.#fail(o, error, true);
      return;
    }
    o.resumedFrom ??= offset;
    o.committed = offset;
    o.sentTo = offset;
    o.endSent = false;
    o.samples = [{ at: this.#options.now(), bytes: offset }];
    this.#progressed();
    this.#progress(o);
    this.pump();
  }

  onStatus(id: string, offset: number): void {
    const o = this.#byId.get(id);
    if (o?.state === undefined) return;
    const verdict = o.state.status(offset);
    if (verdict === FileStatusVerdict.IGNORE) return;
    o.committed = offset;
    if (verdict === FileStatusVerdict.ADVANCE) {
      o.samples.push({ at: this.#options.now(), bytes: offset });
      this.#progressed();
      this.#progress(o);
    } else {
      // A rewind: what was sent past the offset is lost; it goes out again.
      o.sentTo = offset;
      o.endSent = false;
    }
    this.pump();
  }

  onComplete(id: string, size: number, sha256: string): void {
    const o = this.#byId.get(id);
    const state = o?.state;
    if (o === undefined || state === undefined) return;
    if (o.sha256 !== undefined) {
      this.#complete(o, state, size, sha256, o.sha256);
      return;
    }
    // The receiver had the file already (it answered the offer with FILE_COMPLETE): hash the
    // file now to check that what it stored is this file.
    void this.#seal(o).then((expected) => {
      if (expected !== undefined) this.#complete(o, state, size, sha256, expected);
    });
  }

  #complete(
    o: Outgoing,
    state: FileSendState,
    size: number,
    sha256: string,
    expected: string,
  ): void {
    if (o.finished) return;
    const error = state.complete(size, sha256, expected);
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
   * concurrent transfers share the link; stops while the link is not writable. Then reads ahead
   * for every transfer, whether the link is writable or not. Called again on drain (`pump`), on
   * FILE_STATUS and when the chunk a transfer waits for is read.
   */
  pump(): void {
    if (this.#pumping || !this.#port.attached) return;
    this.#pumping = true;
    let sentAny = false;
    try {
      const n = this.#active.length;
      const start = this.#turn++ % Math.max(n, 1);
      let sent = true;
      while (sent && this.#port.writable()) {
        sent = false;
        for (let i = 0; i < n; i++) {
          if (!this.#port.writable()) break;
          const o = this.#active[(start + i) % n];
          if (o !== undefined && this.#sendNext(o)) sent = true;
        }
        sentAny ||= sent;
      }
      for (const o of this.#active) this.#readAhead(o);
    } finally {
      this.#pumping = false;
    }
    // The link turns unwritable as soon as a chunk is queued, before the socket sees it. If the
    // socket then takes the whole chunk at once (loopback usually does), it never emits 'drain',
    // so look again once the queued frames were flushed (the connection flushes in a microtask or
    // an immediate queued before this one) instead of waiting for the next FILE_STATUS. A look
    // that sends nothing does not schedule another: the link is then really full and its drain
    // calls `pump`.
    if (sentAny && !this.#port.writable()) {
      this.#recheck ??= setImmediate(() => {
        this.#recheck = undefined;
        this.pump();
      });
    }
  }

  /** Fails every transfer with `error` and closes every file. */
  async close(error: TetherError): Promise<void> {
    this.#closed = true;
    clearImmediate(this.#recheck);
    this.#recheck = undefined;
    for (const o of [...this.#byId.values()]) this.#fail(o, error, false);
    await Promise.all(this.#closing);
  }

  /** Sends the transfer's next chunk if it is read, or FILE_END once every chunk is sent. */
  #sendNext(o: Outgoing): boolean {
    const state = o.state;
    if (state === undefined || o.finished || o.sealing) return false;
    this.#readAhead(o);
    const next = o.reads[0];
    if (next === undefined) {
      if (o.endEpoch !== state.epoch) return false;
      if (o.sha256 === undefined) {
        // Every chunk is out: finish the SHA-256 (checking the file did not change), then end.
        void this.#seal(o).then((sha256) => {
          if (sha256 !== undefined) this.pump();
        });
        return false;
      }
      o.endEpoch = -1;
      this.#port.send(encodeFileEnd({ id: o.id, sha256: o.sha256 }));
      o.endSent = true;
      this.#markAwaiting();
      return true;
    }
    if (next.frame === undefined) return false;
    o.reads.shift();
    o.readBytes -= next.length;
    this.#port.send(next.frame);
    o.bytesSent += next.length;
    o.sentTo = next.offset + next.length;
    this.#markAwaiting();
    return true;
  }

  /**
   * Polls the next chunk and starts its read, unless a read is in flight or READ_AHEAD_BYTES
   * are read already; each finished read starts the next.
   */
  #readAhead(o: Outgoing): void {
    const state = o.state;
    const handle = o.handle;
    if (state === undefined || handle === undefined || o.finished || o.reading) return;
    this.#dropStale(o, state);
    if (o.readBytes >= READ_AHEAD_BYTES || o.reads.length >= READ_AHEAD_CHUNKS) return;
    const action = state.poll();
    if (action === undefined) return;
    if (action.kind === 'end') {
      o.endEpoch = state.epoch;
      return;
    }
    const read: ChunkRead = {
      state,
      epoch: action.epoch,
      offset: action.offset,
      length: action.length,
      frame: undefined,
    };
    o.reads.push(read);
    o.readBytes += read.length;
    o.reading = true;
    void this.#read(o, handle, read);
  }

  /** Reads one chunk straight into its frame, then the next; the front chunk's arrival pumps. */
  async #read(o: Outgoing, handle: fs.FileHandle, read: ChunkRead): Promise<void> {
    const chunk = new FileChunkBuffer(read.length);
    try {
      await readInto(handle, chunk.data, read.offset);
    } catch (error) {
      o.reading = false;
      if (o.reads.includes(read)) this.#fail(o, toTetherError(error), true);
      else this.#readAhead(o);
      return;
    }
    o.reading = false;
    // A rewind, a reconnect or the end of the transfer dropped it meanwhile.
    if (o.reads.includes(read)) {
      read.frame = chunk.seal(o.id, read.offset);
      this.#hashReads(o);
    }
    this.#readAhead(o);
    if (o.reads[0]?.frame !== undefined || o.endEpoch !== -1) this.pump();
  }

  /**
   * Feeds the chunks read so far into the file's hash, in offset order, while the link drains
   * rather than between a drain and the next write. A chunk at an offset already hashed (re-sent
   * after a rewind or a reconnect) is skipped: the hash covers each byte of the file once.
   */
  #hashReads(o: Outgoing): void {
    if (o.hashing !== undefined || o.sha256 !== undefined) return;
    for (const read of o.reads) {
      const end = read.offset + read.length;
      if (read.frame === undefined || read.offset > o.hashedTo) return;
      if (end <= o.hashedTo) continue;
      // Chunks of a resumed transfer may straddle the hashed offset: hash the part past it.
      o.hash.update(read.frame.subarray(FILE_CHUNK_PREFIX + o.hashedTo - read.offset));
      o.hashedTo = end;
    }
  }

  /** Forgets chunks polled before a rewind or on an earlier connection (epoch or offer changed). */
  #dropStale(o: Outgoing, state: FileSendState): void {
    const first = o.reads[0];
    if (first === undefined || (first.state === state && first.epoch === state.epoch)) return;
    o.reads = o.reads.filter((r) => r.state === state && r.epoch === state.epoch);
    o.readBytes = o.reads.reduce((sum, r) => sum + r.length, 0);
  }

  #startNext(): void {
    while (this.#active.length < this.#options.concurrency && this.#queue.length > 0) {
      const o = this.#queue.shift() as Outgoing;
      this.#active.push(o);
      void this.#prepare(o);
    }
  }

  /** Opens the file, then offers it if a connection is up. */
  async #prepare(o: Outgoing): Promise<void> {
    try {
      const handle = await fs.open(o.path, 'r');
      if (o.finished) {
        await handle.close();
        return;
      }
      o.handle = handle;
      this.#watch(o);
      await this.#checkUnchanged(o);
      if (o.finished) return;
      o.prepared = true;
      this.#offer(o);
    } catch (error) {
      this.#fail(o, toTetherError(error), false);
    }
  }

  /** Feeds the file's bytes from `hashedTo` up to `offset` into the hash (one caller at a time). */
  async #hashTo(o: Outgoing, offset: number): Promise<void> {
    while (o.hashing !== undefined) await o.hashing;
    const handle = o.handle;
    if (offset <= o.hashedTo || o.sha256 !== undefined || handle === undefined) return;
    const hashing = hashRange(handle, o.hash, o.hashedTo, offset).then(() => {
      o.hashedTo = offset;
    });
    o.hashing = hashing;
    try {
      await hashing;
    } finally {
      o.hashing = undefined;
    }
  }

  /**
   * Finishes the whole file's SHA-256 once: hashes what no chunk carried (normally nothing),
   * checks that the file's size and mtime did not change since `sendFile` (a file modified while
   * it was sent fails with FILE_CHANGED and is cancelled, never ended), and sets `sha256`.
   * Resolves to it, or to undefined when the transfer failed or another call is finishing it.
   */
  async #seal(o: Outgoing): Promise<string | undefined> {
    if (o.sha256 !== undefined) return o.sha256;
    if (o.sealing || o.finished) return undefined;
    o.sealing = true;
    try {
      await this.#hashTo(o, o.size);
      await this.#checkUnchanged(o);
    } catch (error) {
      this.#fail(o, toTetherError(error), true);
      return undefined;
    } finally {
      o.sealing = false;
    }
    if (o.finished) return undefined;
    o.sha256 = o.hash.digest('hex');
    return o.sha256;
  }

  /**
   * Fails the transfer with FILE_CHANGED as soon as the file is modified, whether it is being
   * sent or waiting for a connection. Where the file system cannot be watched, the checks at
   * FILE_ACCEPT and before FILE_END remain.
   */
  #watch(o: Outgoing): void {
    try {
      const watcher = watch(o.path, { persistent: false });
      watcher.on('change', () => {
        if (o.finished) return;
        this.#checkUnchanged(o).catch((error: unknown) => {
          this.#fail(o, toTetherError(error), true);
        });
      });
      watcher.on('error', () => watcher.close());
      o.unwatch = () => watcher.close();
    } catch {
      // No watch here (no inotify instance left, a file system without events): stat checks only.
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
    if (!this.#port.attached || !o.prepared || o.finished) return;
    const chunkSize = Math.max(
      1,
      Math.min(this.#options.chunkSize, this.#port.maxFrame - CHUNK_OVERHEAD),
    );
    o.state = new FileSendState({
      size: o.size,
      chunkSize,
      windowBytes: this.#options.windowBytes,
    });
    o.generation = this.#port.generation;
    o.sentTo = 0;
    o.endSent = false;
    clearReads(o);
    this.#port.offered(o.id);
    this.#port.send(encodeFileOffer({ id: o.id, name: o.name, size: o.size }));
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
    const offered = o.state !== undefined && o.generation === this.#port.generation;
    o.finished = true;
    clearReads(o);
    o.state?.fail();
    o.unlisten();
    o.unwatch();
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
    if (offered && this.#port.attached) this.#progressed();
    if (!this.#closed) this.#startNext();
    this.pump();
  }

  /** Data went on the wire that waits for the receiver: tell the link, if nothing waited. */
  #markAwaiting(): void {
    if (this.#awaiting) return;
    this.#awaiting = true;
    this.#port.awaiting();
  }

  /** A transfer moved: tell the link whether any data still waits for the receiver. */
  #progressed(): void {
    let still = false;
    for (const o of this.#active) {
      const state = o.state;
      if (state === undefined || o.finished || o.generation !== this.#port.generation) continue;
      if (o.endSent || o.sentTo > state.committed) still = true;
    }
    this.#awaiting = still;
    this.#port.progressed(still);
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

/** Drops every chunk read or being read, and a pending FILE_END (the offer they belong to ended). */
function clearReads(o: Outgoing): void {
  o.reads = [];
  o.readBytes = 0;
  o.endEpoch = -1;
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
