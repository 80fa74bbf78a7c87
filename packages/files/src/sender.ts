import {
  ErrorCode,
  encodeFileCancel,
  encodeFileEnd,
  encodeFileOffer,
  FILE_CHUNK_PREFIX,
  FileSendState,
  FileStatusVerdict,
  isErrorCode,
  TetherError,
} from '@tether/protocol';
import { errnoCode } from './errno.js';
import { checkFileName } from './file-name-check.js';
import { nextTurn } from './next-turn.js';
import { Outgoing, OutgoingPhase as Phase } from './outgoing.js';
import type { Port } from './port.js';
import type { PreparedSource, Source } from './source.js';
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
// The longest delay a timer takes.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The sending half of a transfer engine: a queue of files, `concurrency` of them opened and
 * offered at once, chunks read and sent round-robin, one chunk per transfer per turn, while the
 * link is writable and each transfer's window has room. Each file is hashed as its chunks go out
 * (it is read once), and FILE_END carries its SHA-256. Each transfer moves through the phases of
 * {@link Outgoing}; the frame handlers below are its transitions.
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
  #cancelRecheck: (() => void) | undefined;
  /** Runs while an offer on the current link waits for its answer (see `#reoffer`). */
  #reofferTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(port: Port, options: SenderOptions) {
    this.#port = port;
    this.#options = options;
  }

  /** Outgoing transfers not finished (queued or running). */
  get count(): number {
    return this.#byId.size;
  }

  /**
   * Queues a source: `what` names it (the offered name, and the path for a file on disk, '' for
   * a Blob); `prepare` opens it (stat, fingerprint) after the checks that need no source, and
   * returns the refusal when it cannot.
   */
  sendFile(
    what: { name: string; path: string },
    options: SendFileOptions,
    prepare: () => PreparedSource | TetherError,
  ): Transfer {
    const { name, path } = what;
    const refuse = (code: ErrorCode, message: string, cause?: unknown): Transfer =>
      refusedTransfer({ id: '', name, size: 0, path }, new TetherError(code, message, { cause }));
    if (this.#closed) return refuse(ErrorCode.CLOSED, 'the transfer engine is closed');
    if (options.signal?.aborted) {
      return refuse(ErrorCode.ABORTED, 'the signal was aborted', options.signal.reason);
    }
    const problem = checkFileName(name);
    if (problem !== undefined) return refuse(ErrorCode.FILE_NAME_INVALID, problem);
    const prepared = prepare();
    if (prepared instanceof TetherError) {
      return refusedTransfer({ id: '', name, size: 0, path }, prepared);
    }
    const { id, size, source } = prepared;
    const init: TransferInit = { id, name, size, path };
    if (this.#byId.has(id)) {
      return refusedTransfer(
        init,
        new TetherError(
          ErrorCode.INVALID_OPTION,
          `${path === '' ? name : path} is already being sent (${id})`,
        ),
      );
    }
    const o = this.#outgoing(init, source);
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void =>
        this.#fail(
          o,
          new TetherError(ErrorCode.ABORTED, 'the signal was aborted', { cause: signal.reason }),
          true,
        );
      signal.addEventListener('abort', onAbort, { once: true });
      o.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    this.#byId.set(id, o);
    this.#queue.push(o);
    this.#startNext();
    return o.transfer;
  }

  /** A connection is up: offer every prepared transfer; FILE_ACCEPT says where each resumes. */
  attach(): void {
    for (const o of this.#active) this.#offer(o);
  }

  /** The connection dropped: every offer is void; transfers wait for the next connection. */
  detach(): void {
    this.#awaiting = false;
    this.#stopReoffers();
    for (const o of this.#active) {
      if (o.is(Phase.OFFERED, Phase.ACCEPTING, Phase.SENDING, Phase.SEALING)) o.to(Phase.READY);
    }
  }

  /**
   * FILE_ACCEPT: OFFERED -> ACCEPTING -> (file unchanged, hashed to the offset) SENDING. One for
   * a transfer offered on this connection and since over (the receiver accepted a repeat of the
   * offer that crossed its refusal) gets FILE_CANCEL, so the receiver lets go of it; a second
   * one of a running transfer (the answer to a repeat that crossed the first) is ignored.
   */
  onAccept(id: string, offset: number): void {
    const o = this.#byId.get(id);
    if (o === undefined) {
      this.#port.send(encodeFileCancel({ id, reason: 'the transfer is over' }));
      return;
    }
    const state = o.state;
    if (state === undefined || !o.is(Phase.OFFERED)) return;
    o.to(Phase.ACCEPTING);
    void this.#accept(o, state, offset);
  }

  async #accept(o: Outgoing, state: FileSendState, offset: number): Promise<void> {
    try {
      await o.file.checkUnchanged();
      // Resuming past what this process hashed (the receiver kept an earlier run's bytes):
      // hash those bytes from the file, so the SHA-256 still covers it from byte 0.
      if (offset <= o.size) await o.file.hashTo(offset);
    } catch (error) {
      this.#fail(o, toTetherError(error), true);
      return;
    }
    // A reconnect (a new offer) or the end of the transfer came first.
    if (!o.is(Phase.ACCEPTING) || o.state !== state) return;
    const error = state.accept(offset);
    if (error !== undefined) {
      this.#fail(o, error, true);
      return;
    }
    o.to(Phase.SENDING);
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

  /** FILE_COMPLETE: DONE once its size and SHA-256 are the file's. */
  onComplete(id: string, size: number, sha256: string): void {
    const o = this.#byId.get(id);
    const state = o?.state;
    if (o === undefined || state === undefined) return;
    o.answered = true;
    const expected = o.file.sha256;
    if (expected !== undefined) {
      this.#complete(o, state, size, sha256, expected);
      return;
    }
    // The receiver had the file already (it answered the offer with FILE_COMPLETE): hash the
    // file now to check that what it stored is this file.
    o.file.seal().then(
      (digest) => {
        // Completed on this offer only; after a reconnect, the new offer gets FILE_COMPLETE.
        if (o.state === state) this.#complete(o, state, size, sha256, digest);
      },
      (error: unknown) => this.#fail(o, toTetherError(error), true),
    );
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
    this.#finish(o, Phase.DONE);
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
      for (const o of this.#active) o.reads.fill();
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
      this.#cancelRecheck ??= nextTurn(() => {
        this.#cancelRecheck = undefined;
        this.pump();
      });
    }
  }

  /** Fails every transfer with `error` and closes every file. */
  async close(error: TetherError): Promise<void> {
    this.#closed = true;
    this.#cancelRecheck?.();
    this.#cancelRecheck = undefined;
    this.#stopReoffers();
    for (const o of [...this.#byId.values()]) this.#fail(o, error, false);
    await Promise.all(this.#closing);
  }

  /** A new transfer, QUEUED, with its file, its read-ahead and its `Transfer`. */
  #outgoing(init: TransferInit, source: Source): Outgoing {
    let resolve!: (result: TransferResult) => void;
    let reject!: (error: TetherError) => void;
    let outgoing: Outgoing | undefined;
    const transfer = new Transfer(
      init,
      () => {
        if (outgoing === undefined) return;
        this.#fail(
          outgoing,
          new TetherError(ErrorCode.FILE_CANCELLED, 'the transfer was cancelled'),
          true,
        );
      },
      (res, rej) => {
        resolve = res;
        reject = rej;
      },
    );
    const o: Outgoing = new Outgoing({
      transfer,
      resolve,
      reject,
      file: source,
      startedAt: this.#options.now(),
      ready: () => this.pump(),
      readFailed: (error) => this.#fail(o, toTetherError(error), true),
    });
    outgoing = o;
    return o;
  }

  /** SENDING: the transfer's next chunk if it is read, or FILE_END once every chunk is out. */
  #sendNext(o: Outgoing): boolean {
    const state = o.state;
    if (state === undefined || !o.is(Phase.SENDING)) return false;
    o.reads.fill();
    const next = o.reads.peek(state);
    if (next === undefined) return false;
    if (next.kind === 'end') {
      const sha256 = o.file.sha256;
      if (sha256 === undefined) {
        this.#seal(o, state);
        return false;
      }
      o.reads.shift(next);
      this.#port.send(encodeFileEnd({ id: o.id, sha256 }));
      o.endSent = true;
      this.#markAwaiting();
      return true;
    }
    o.reads.shift(next);
    this.#port.send(next.frame);
    o.bytesSent += next.length;
    o.sentTo = next.offset + next.length;
    this.#markAwaiting();
    return true;
  }

  /**
   * SENDING -> SEALING -> SENDING: every chunk is out; finish the SHA-256 (checking the file did
   * not change: a file modified while it was sent fails with FILE_CHANGED and is cancelled, never
   * ended), then FILE_END goes out.
   */
  #seal(o: Outgoing, state: FileSendState): void {
    o.to(Phase.SEALING);
    o.file.seal().then(
      () => {
        if (!o.is(Phase.SEALING) || o.state !== state) return;
        o.to(Phase.SENDING);
        this.pump();
      },
      (error: unknown) => this.#fail(o, toTetherError(error), true),
    );
  }

  #startNext(): void {
    while (this.#active.length < this.#options.concurrency && this.#queue.length > 0) {
      const o = this.#queue.shift() as Outgoing;
      this.#active.push(o);
      void this.#prepare(o);
    }
  }

  /** QUEUED -> OPENING -> READY: opens the file, then offers it if a connection is up. */
  async #prepare(o: Outgoing): Promise<void> {
    o.to(Phase.OPENING);
    try {
      // Fails the transfer with FILE_CHANGED as soon as the file is modified, whether it is
      // being sent or waiting for a connection.
      const opened = await o.file.open(() => {
        if (o.finished) return;
        o.file.checkUnchanged().catch((error: unknown) => {
          this.#fail(o, toTetherError(error), true);
        });
      });
      if (!opened || o.finished) return;
      o.to(Phase.READY);
      this.#offer(o);
    } catch (error) {
      this.#fail(o, toTetherError(error), false);
    }
  }

  /** READY -> OFFERED, when a connection is up. */
  #offer(o: Outgoing): void {
    if (!this.#port.attached || !o.is(Phase.READY)) return;
    const chunkSize = Math.max(
      1,
      Math.min(this.#options.chunkSize, this.#port.maxFrame - CHUNK_OVERHEAD),
    );
    o.to(Phase.OFFERED);
    o.state = new FileSendState({
      size: o.size,
      chunkSize,
      windowBytes: this.#options.windowBytes,
    });
    o.generation = this.#port.generation;
    o.sentTo = 0;
    o.endSent = false;
    o.answered = false;
    o.offeredAt = this.#options.now();
    this.#port.offered(o.id);
    this.#port.send(encodeFileOffer({ id: o.id, name: o.name, size: o.size }));
    this.#watchOffers();
  }

  /**
   * An offer waits for its answer: look every half re-offer interval (as the receive directory
   * looks for idle transfers), so an unanswered offer goes out again one to one and a half
   * intervals after it last did, never twice within an interval. A lost FILE_OFFER or
   * FILE_ACCEPT is not silence on the link (the receiver's application may take its time to
   * decide), so nothing else would repair it.
   */
  #watchOffers(): void {
    if (this.#reofferTimer !== undefined) return;
    const period = Math.min(Math.max(this.#port.reofferMs / 2, 1), MAX_TIMER_MS);
    this.#reofferTimer = setInterval(() => this.#reoffer(), period);
    this.#reofferTimer.unref?.();
  }

  #stopReoffers(): void {
    clearInterval(this.#reofferTimer);
    this.#reofferTimer = undefined;
  }

  /**
   * OFFERED, unanswered for the re-offer interval: the same FILE_OFFER again, on the same link.
   * The receiver ignores it while it decides, and answers it again if its answer was lost. The
   * timer stops once no offer waits.
   */
  #reoffer(): void {
    if (!this.#port.attached) {
      this.#stopReoffers();
      return;
    }
    const now = this.#options.now();
    const interval = this.#port.reofferMs;
    let waiting = false;
    for (const o of this.#active) {
      if (!o.is(Phase.OFFERED) || o.answered) continue;
      waiting = true;
      if (now - o.offeredAt < interval) continue;
      o.offeredAt = now;
      this.#port.send(encodeFileOffer({ id: o.id, name: o.name, size: o.size }));
    }
    if (!waiting) this.#stopReoffers();
  }

  /** -> FAILED: `done` rejects; FILE_CANCEL tells the receiver when asked and it knows the offer. */
  #fail(o: Outgoing, error: TetherError, notifyPeer: boolean): void {
    if (o.finished) return;
    if (notifyPeer && o.offeredOn(this.#port.generation) && this.#port.attached) {
      this.#port.send(encodeFileCancel({ id: o.id, reason: error.message }));
    }
    this.#finish(o, Phase.FAILED);
    o.reject(error);
  }

  /** -> DONE or FAILED: forget the transfer, close its file, start the next one. */
  #finish(o: Outgoing, phase: typeof Phase.DONE | typeof Phase.FAILED): void {
    const offered = o.offeredOn(this.#port.generation);
    o.state?.fail();
    o.to(phase);
    o.unlisten();
    this.#byId.delete(o.id);
    removeFrom(this.#queue, o);
    removeFrom(this.#active, o);
    const closing = o.file.close();
    this.#closing.add(closing);
    void closing.then(() => this.#closing.delete(closing));
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
    const generation = this.#port.generation;
    const still = this.#active.some((o) => o.offeredOn(generation) && o.awaiting);
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

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}

/** The code of a failure to open or read a source. */
export function codeOf(error: unknown): ErrorCode {
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
