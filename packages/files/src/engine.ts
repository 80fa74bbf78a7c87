import {
  DEFAULT_FILE_CHUNK,
  DEFAULT_FILE_WINDOW,
  ErrorCode,
  encodeFileFailed,
  FrameType,
  TetherError,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import type { FileFrame } from './file-frame.js';
import { type FileIo, nodeIo } from './io.js';
import { LinkPort, type TransferLink } from './port.js';
import { type ReceivedFile, type ReceiveOptions, Receiver } from './receiver.js';
import { Sender, type SendFileOptions } from './sender.js';
import type { Transfer } from './transfer.js';

/** Options of {@link TransferEngine}. */
export interface TransferEngineOptions {
  /**
   * Who the peer is: on a server, the client's id or identity; on a client, the server's
   * host:port. Scopes partial files (no other owner can resume, read or append to them) and
   * transfer ids (the same file sent to two peers gets two ids).
   */
  owner: string;
  /** How to receive files; undefined refuses every offer with TRANSFER_REFUSED. */
  receive?: ReceiveOptions;
  /** Data bytes per FILE_CHUNK; default 256 KiB, lowered to what fits the peer's max frame. */
  chunkSize?: number;
  /** Bytes in flight beyond the receiver's reported offset, per transfer; default 8 MiB. */
  windowBytes?: number;
  /** Outgoing transfers prepared and offered at once; the others queue. Default 4. */
  concurrency?: number;
  /** Monotonic clock in ms, for durations and rates. Default `performance.now()`. */
  now?: () => number;
  /** File-system calls to replace, for tests (a full disk, a failing write). */
  io?: Partial<FileIo>;
}

/** Events of {@link TransferEngine}. */
export interface TransferEngineEvents {
  /** A file was received, verified and stored. */
  file: (file: ReceivedFile) => void;
  /** A background failure not tied to a caller (a sweep, a checkpoint while pausing). */
  error: (error: TetherError) => void;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
// The sweep timer runs at the TTL, within these bounds.
const MIN_SWEEP_INTERVAL_MS = 1000;
const ATTACH_SWEEP_INTERVAL_MS = 60_000;

function positiveInteger(name: string, value: number): number {
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new TypeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new TypeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}

/**
 * File transfer in both directions over one Tether connection (PROTOCOL.md section 13), with the
 * state machines of `@tether/protocol` and the file system. The connection is not its business:
 * the owner of the socket calls `attach` when a session is up, `detach` when it drops, `handle`
 * for every FILE_* frame and `pump` when the socket drains. Outgoing transfers survive detach
 * (they wait and resume from the receiver's committed offset); incoming partials survive it on
 * disk, and a restart of either side.
 */
export class TransferEngine extends EventEmitter<TransferEngineEvents> {
  /** Who the peer is (see {@link TransferEngineOptions.owner}). */
  readonly owner: string;
  readonly #port = new LinkPort();
  readonly #sender: Sender;
  readonly #receiver: Receiver | undefined;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<number> | undefined;
  #lastSweep = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(options: TransferEngineOptions) {
    super();
    if (typeof options.owner !== 'string' || options.owner.length === 0) {
      throw new TypeError('owner must be a non-empty string');
    }
    this.owner = options.owner;
    const now = options.now ?? (() => performance.now());
    this.#now = now;
    this.#sender = new Sender(this.#port, {
      owner: options.owner,
      chunkSize: positiveInteger('chunkSize', options.chunkSize ?? DEFAULT_FILE_CHUNK),
      windowBytes: positiveInteger('windowBytes', options.windowBytes ?? DEFAULT_FILE_WINDOW),
      concurrency: positiveInteger('concurrency', options.concurrency ?? 4),
      now,
    });
    const receive = options.receive;
    this.#ttlMs = Number.POSITIVE_INFINITY;
    if (receive !== undefined) {
      if (typeof receive.dir !== 'string' || receive.dir.length === 0) {
        throw new TypeError('receive.dir must be a non-empty string');
      }
      this.#ttlMs = nonNegative('receive.partialTtlMs', receive.partialTtlMs ?? DAY_MS);
      const resolved = {
        dir: receive.dir,
        maxFileSize: nonNegative(
          'receive.maxFileSize',
          receive.maxFileSize ?? Number.POSITIVE_INFINITY,
        ),
        minFreeBytes: nonNegative('receive.minFreeBytes', receive.minFreeBytes ?? 0),
        partialTtlMs: this.#ttlMs,
        ...(receive.decide === undefined ? {} : { decide: receive.decide }),
      };
      this.#receiver = new Receiver(this.#port, {
        owner: options.owner,
        receive: resolved,
        io: { ...nodeIo, ...options.io },
        onFile: (file) => this.emit('file', file),
        onError: (error) => this.emit('error', error),
        now,
      });
      this.#sweepInBackground();
      if (Number.isFinite(this.#ttlMs)) {
        const interval = Math.min(Math.max(this.#ttlMs, MIN_SWEEP_INTERVAL_MS), HOUR_MS);
        this.#sweepTimer = setInterval(() => this.#sweepInBackground(), interval);
        this.#sweepTimer.unref();
      }
    }
  }

  /** Outgoing (queued included) plus incoming transfers in progress. */
  get activeTransfers(): number {
    return this.#sender.count + (this.#receiver?.count ?? 0);
  }

  /** A connection is up: (re)offer every unfinished outgoing transfer. */
  attach(link: TransferLink): void {
    if (this.#closed) return;
    if (this.#port.attached) this.detach();
    this.#port.set(link);
    this.#sender.attach();
    // A server sees many attaches: sweep on one only if the last sweep is a while ago.
    if (this.#now() - this.#lastSweep >= ATTACH_SWEEP_INTERVAL_MS) this.#sweepInBackground();
  }

  /** The connection dropped: pause everything, keep every transfer (they resume on `attach`). */
  detach(): void {
    if (!this.#port.attached) return;
    this.#port.set(undefined);
    this.#sender.detach();
    this.#receiver?.detach();
  }

  /** Any FILE_* frame from the peer. Frames for unknown transfer ids are ignored. */
  handle(frame: FileFrame): void {
    if (this.#closed || !this.#port.attached) return;
    switch (frame.type) {
      case FrameType.FILE_OFFER:
        if (this.#receiver !== undefined) this.#receiver.onOffer(frame.body);
        else {
          this.#port.send(
            encodeFileFailed({
              id: frame.body.id,
              code: ErrorCode.TRANSFER_REFUSED,
              message: 'this endpoint does not accept files',
              retryable: false,
            }),
          );
        }
        return;
      case FrameType.FILE_CHUNK:
        this.#receiver?.onChunk(frame);
        return;
      case FrameType.FILE_END:
        this.#receiver?.onEnd(frame.body.id, frame.body.sha256);
        return;
      case FrameType.FILE_CANCEL:
        if (!this.#sender.onCancel(frame.body.id, frame.body.reason)) {
          this.#receiver?.onCancel(frame.body.id);
        }
        return;
      case FrameType.FILE_ACCEPT:
        this.#sender.onAccept(frame.body.id, frame.body.offset);
        return;
      case FrameType.FILE_STATUS:
        this.#sender.onStatus(frame.body.id, frame.body.offset);
        return;
      case FrameType.FILE_COMPLETE:
        this.#sender.onComplete(frame.body.id, frame.body.size, frame.body.sha256);
        return;
      case FrameType.FILE_FAILED:
        this.#sender.onFailed(frame.body.id, frame.body.code, frame.body.message);
        return;
    }
  }

  /** The socket drained: continue sending chunks. */
  pump(): void {
    if (!this.#closed) this.#sender.pump();
  }

  /**
   * Sends a file to the peer. The file is stat'ed at once (its transfer id comes from its
   * fingerprint: absolute path, size, mtime, peer), then hashed and offered when a connection is
   * up; it waits while offline. Sending the same unchanged file again, even from a new process,
   * resumes where the receiver stopped. Failures reject `done` with a code.
   */
  sendFile(path: string, options?: SendFileOptions): Transfer {
    return this.#sender.sendFile(path, options);
  }

  /**
   * Deletes partials (and completion records) of every owner in the target directory untouched
   * for `receive.partialTtlMs`. Runs on construction, on attach and on a timer; returns how many
   * transfers it swept.
   */
  sweep(): Promise<number> {
    const receiver = this.#receiver;
    if (receiver === undefined || this.#closed) return Promise.resolve(0);
    if (this.#sweeping !== undefined) return this.#sweeping;
    this.#lastSweep = this.#now();
    const sweeping = receiver.store.sweep(this.#ttlMs, receiver.activeKeys());
    this.#sweeping = sweeping;
    const clear = (): void => {
      if (this.#sweeping === sweeping) this.#sweeping = undefined;
    };
    sweeping.then(clear, clear);
    return sweeping;
  }

  /**
   * Fails every outgoing transfer with `error`, pauses every incoming one (partials stay on disk,
   * checkpointed, for a later resume), closes every file and stops the sweep timer.
   */
  async close(error: TetherError): Promise<void> {
    if (this.#closed) return;
    const sweeping = this.#sweeping;
    this.#closed = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#port.set(undefined);
    await this.#sender.close(error);
    await this.#receiver?.close();
    await sweeping?.catch(() => {});
  }

  #sweepInBackground(): void {
    if (this.#receiver === undefined || !Number.isFinite(this.#ttlMs)) return;
    this.sweep().catch((error: unknown) => {
      this.emit(
        'error',
        new TetherError(ErrorCode.FILE_WRITE_FAILED, `sweeping partial files failed: ${error}`, {
          cause: error,
        }),
      );
    });
  }
}
