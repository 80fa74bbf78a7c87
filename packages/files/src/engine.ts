import * as nodePath from 'node:path';
import {
  DEFAULT_FILE_CHUNK,
  DEFAULT_FILE_WINDOW,
  type ProtocolError,
  type TetherError,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import { type BlobLike, blobName, prepareBlob } from './blob-source.js';
import type { FileEngine } from './file-engine.js';
import type { FileFrame } from './file-frame.js';
import { type FileIo, nodeIo } from './io.js';
import { nodeSha256 } from './node-sha256.js';
import { pathSource } from './path-source.js';
import { LinkPort, type TransferLink } from './port.js';
import { ReceiveDirectory } from './receive-directory.js';
import { type FileOfferInfo, type ReceivedFile, Receiver } from './receiver.js';
import { routeFileFrame } from './route-file-frame.js';
import { Sender, type SendFileOptions } from './sender.js';
import type { Transfer } from './transfer.js';

/** How an engine receives files. */
export interface ReceiveOptions {
  /**
   * Target directory; created if missing. Partials live in its `.tether-partial` folder. The
   * engine makes its own {@link ReceiveDirectory} for it from the options below. Give `directory`
   * instead (or as well, naming the same folder) to share one with other engines.
   */
  dir?: string;
  /**
   * Shared state of the target directory, for engines that receive into it together (a server's
   * sessions): one writer per partial, disk reservations, open transfers, the sweep. Its own
   * options apply; `minFreeBytes`, `partialTtlMs`, `emptyPartialTtlMs`, `maxOpenTransfers` and
   * `idleMs` may not be given here then.
   */
  directory?: ReceiveDirectory;
  /** Larger offers are refused with FILE_TOO_LARGE. Default Infinity. */
  maxFileSize?: number;
  /**
   * Incoming transfers from this engine's peer at once (accepted, idle ones included); the next
   * offer is refused with TOO_MANY_TRANSFERS (retryable). Default 8.
   */
  maxTransfers?: number;
  /** See {@link ReceiveDirectoryOptions.minFreeBytes}. Default 0. */
  minFreeBytes?: number;
  /** See {@link ReceiveDirectoryOptions.partialTtlMs}. Default 24 h. */
  partialTtlMs?: number;
  /** See {@link ReceiveDirectoryOptions.emptyPartialTtlMs}. Default 5 min. */
  emptyPartialTtlMs?: number;
  /** See {@link ReceiveDirectoryOptions.maxOpenTransfers}. Default 256. */
  maxOpenTransfers?: number;
  /** See {@link ReceiveDirectoryOptions.idleMs}. Default 5000. */
  idleMs?: number;
  /** Called for each offer that passed the checks; false refuses it (TRANSFER_REFUSED). */
  decide?: (offer: FileOfferInfo) => boolean | Promise<boolean>;
}

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
  /**
   * File-system calls to replace, for tests (a full disk, a failing write). `freeBytes` applies
   * to the engine's own directory, not to a shared one (give that its own `io`).
   */
  io?: Partial<FileIo>;
}

/** Events of {@link TransferEngine}. */
export interface TransferEngineEvents {
  /** A file was received, verified and stored. */
  file: (file: ReceivedFile) => void;
  /** A background failure not tied to a caller (a sweep, a checkpoint while pausing). */
  error: (error: TetherError) => void;
}

const DIRECTORY_OPTIONS = [
  'minFreeBytes',
  'partialTtlMs',
  'emptyPartialTtlMs',
  'maxOpenTransfers',
  'idleMs',
] as const;

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

/** The directory an engine receives into: the shared one, or its own made from `receive`. */
function receiveDirectory(
  receive: ReceiveOptions,
  io: Partial<FileIo> | undefined,
  now: () => number,
): { directory: ReceiveDirectory; own: boolean } {
  const shared = receive.directory;
  if (shared === undefined) {
    if (typeof receive.dir !== 'string' || receive.dir.length === 0) {
      throw new TypeError('receive.dir must be a non-empty string (or give receive.directory)');
    }
    const directory = new ReceiveDirectory({
      dir: receive.dir,
      now,
      ...(io?.freeBytes === undefined ? {} : { io: { freeBytes: io.freeBytes } }),
      ...Object.fromEntries(
        DIRECTORY_OPTIONS.flatMap((key) =>
          receive[key] === undefined ? [] : [[key, receive[key]]],
        ),
      ),
    });
    return { directory, own: true };
  }
  if (!(shared instanceof ReceiveDirectory)) {
    throw new TypeError('receive.directory must be a ReceiveDirectory');
  }
  if (receive.dir !== undefined && nodePath.resolve(receive.dir) !== shared.dir) {
    throw new TypeError(`receive.dir (${receive.dir}) is not receive.directory's (${shared.dir})`);
  }
  for (const key of DIRECTORY_OPTIONS) {
    if (receive[key] !== undefined) {
      throw new TypeError(`receive.${key} belongs to the shared receive.directory`);
    }
  }
  return { directory: shared, own: false };
}

/**
 * File transfer in both directions over one Tether connection (PROTOCOL.md section 13), with the
 * state machines of `@tether/protocol` and the file system. The connection is not its business:
 * the owner of the socket calls `attach` when a session is up, `detach` when it drops, `handle`
 * for every FILE_* frame and `pump` when the socket drains. Outgoing transfers survive detach
 * (they wait and resume from the receiver's committed offset); incoming partials survive it on
 * disk, and a restart of either side.
 */
export class TransferEngine extends EventEmitter<TransferEngineEvents> implements FileEngine {
  /** Who the peer is (see {@link TransferEngineOptions.owner}). */
  readonly owner: string;
  readonly #port = new LinkPort();
  readonly #sender: Sender;
  readonly #receiver: Receiver | undefined;
  readonly #directory: ReceiveDirectory | undefined;
  readonly #reportError = (error: TetherError): void => {
    this.emit('error', error);
  };
  #closed = false;

  constructor(options: TransferEngineOptions) {
    super();
    if (typeof options.owner !== 'string' || options.owner.length === 0) {
      throw new TypeError('owner must be a non-empty string');
    }
    this.owner = options.owner;
    const now = options.now ?? (() => performance.now());
    this.#sender = new Sender(this.#port, {
      owner: options.owner,
      chunkSize: positiveInteger('chunkSize', options.chunkSize ?? DEFAULT_FILE_CHUNK),
      windowBytes: positiveInteger('windowBytes', options.windowBytes ?? DEFAULT_FILE_WINDOW),
      concurrency: positiveInteger('concurrency', options.concurrency ?? 4),
      now,
    });
    const receive = options.receive;
    if (receive === undefined) return;
    const maxFileSize = nonNegative(
      'receive.maxFileSize',
      receive.maxFileSize ?? Number.POSITIVE_INFINITY,
    );
    const maxTransfers = positiveInteger('receive.maxTransfers', receive.maxTransfers ?? 8);
    const { directory } = receiveDirectory(receive, options.io, now);
    this.#directory = directory;
    this.#receiver = new Receiver(this.#port, {
      owner: options.owner,
      directory,
      maxFileSize,
      maxTransfers,
      decide: receive.decide,
      io: { ...nodeIo, ...options.io },
      onFile: (file) => this.emit('file', file),
      onError: this.#reportError,
      now,
    });
    directory.join(this.#reportError);
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
    // A server sees many attaches: the directory sweeps on one only if its last sweep is old.
    this.#directory?.attached(this.#reportError);
  }

  /** The connection dropped: pause everything, keep every transfer (they resume on `attach`). */
  detach(): void {
    if (!this.#port.attached) return;
    this.#port.set(undefined);
    this.#sender.detach();
    this.#receiver?.detach();
  }

  /**
   * Any FILE_* frame from the peer. Returns a ProtocolError (UNEXPECTED_FRAME) for a
   * FILE_ACCEPT, FILE_STATUS, FILE_COMPLETE or FILE_FAILED naming a transfer this engine never
   * offered on the current connection: the caller fails the connection with it. Frames for a
   * transfer offered on this connection and since finished or cancelled are a normal race and
   * are ignored (a FILE_ACCEPT gets FILE_CANCEL, so the receiver lets go of what it accepted),
   * as are FILE_CHUNK, FILE_END and FILE_CANCEL for unknown transfers.
   */
  handle(frame: FileFrame): ProtocolError | undefined {
    if (this.#closed || !this.#port.attached) return undefined;
    return routeFileFrame(frame, this.#port, this.#sender, this.#receiver);
  }

  /** The socket drained: continue sending chunks. */
  pump(): void {
    if (!this.#closed) this.#sender.pump();
  }

  /**
   * Sends a file to the peer. The file is stat'ed at once (its transfer id comes from its
   * fingerprint: absolute path, size, mtime, peer), then hashed and offered when a connection is
   * up; it waits while offline. Sending the same unchanged file again, even from a new process,
   * resumes where the receiver stopped. A Blob (a File) is sent from memory, hashed as it is read
   * (see `prepareBlob` for its id). Failures reject `done` with a code.
   */
  sendFile(file: string | BlobLike, options: SendFileOptions = {}): Transfer {
    if (typeof file === 'string') {
      const absolute = nodePath.resolve(file);
      const name = options.name ?? nodePath.basename(absolute);
      return this.#sender.sendFile({ name, path: absolute }, options, () =>
        pathSource(absolute, this.owner),
      );
    }
    const name = options.name ?? blobName(file);
    return this.#sender.sendFile({ name, path: '' }, options, () =>
      prepareBlob(file, name, this.owner, nodeSha256),
    );
  }

  /**
   * Sweeps the target directory now (see {@link ReceiveDirectory.sweep}): partials and
   * completion records of every owner untouched for the partial TTL, those without a durable
   * byte after the empty-partial TTL. It also runs on construction and on attach (at most once
   * a minute per directory) and on a timer. Returns how many transfers it deleted.
   */
  sweep(): Promise<number> {
    if (this.#directory === undefined || this.#closed) return Promise.resolve(0);
    return this.#directory.sweep();
  }

  /**
   * Fails every outgoing transfer with `error`, pauses every incoming one (partials stay on disk,
   * checkpointed, for a later resume), closes every file and stops using the directory.
   */
  async close(error: TetherError): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.set(undefined);
    await this.#sender.close(error);
    await this.#receiver?.close();
    await this.#directory?.leave(this.#reportError);
  }
}
