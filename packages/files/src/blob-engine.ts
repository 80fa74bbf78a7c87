import {
  DEFAULT_FILE_CHUNK,
  DEFAULT_FILE_WINDOW,
  ErrorCode,
  type ProtocolError,
  TetherError,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import { BlobReceiver, type DownloadDecision } from './blob-receiver.js';
import { type BlobLike, blobName, prepareBlob } from './blob-source.js';
import type { TransferEngineEvents } from './engine.js';
import type { FileEngine } from './file-engine.js';
import type { FileFrame } from './file-frame.js';
import { LinkPort, type TransferLink } from './port.js';
import { routeFileFrame } from './route-file-frame.js';
import { Sender, type SendFileOptions } from './sender.js';
import type { Sha256Factory } from './sha256.js';
import { Transfer } from './transfer.js';

/** Options of {@link BlobTransferEngine}. */
export interface BlobTransferEngineOptions {
  /** Who the peer is (scopes transfer ids, see `TransferEngineOptions.owner`). */
  owner: string;
  /** The SHA-256 to hash with (Web Crypto has no incremental one). */
  sha256: Sha256Factory;
  /** Downloads: how each offer is decided; undefined refuses every offer (TRANSFER_REFUSED). */
  receive?: { decide: DownloadDecision; maxFileSize?: number; maxTransfers?: number };
  /** Monotonic clock in ms. Default `performance.now()`. */
  now?: () => number;
}

/**
 * File transfer for a runtime without a file system (a browser page): uploads from Blobs (Files
 * picked in the page), hashed while read, resumable across reconnects and, for a File, across
 * page loads; downloads into a Blob or a WritableStream, verified by SHA-256. The same protocol
 * and sending half as {@link TransferEngine}.
 */
export class BlobTransferEngine extends EventEmitter<TransferEngineEvents> implements FileEngine {
  readonly owner: string;
  readonly #port = new LinkPort();
  readonly #sender: Sender;
  readonly #receiver: BlobReceiver | undefined;
  readonly #sha256: Sha256Factory;
  #closed = false;

  constructor(options: BlobTransferEngineOptions) {
    super();
    this.owner = options.owner;
    this.#sha256 = options.sha256;
    this.#sender = new Sender(this.#port, {
      owner: options.owner,
      chunkSize: DEFAULT_FILE_CHUNK,
      windowBytes: DEFAULT_FILE_WINDOW,
      concurrency: 4,
      now: options.now ?? (() => performance.now()),
    });
    const receive = options.receive;
    if (receive === undefined) return;
    this.#receiver = new BlobReceiver(this.#port, {
      owner: options.owner,
      maxFileSize: receive.maxFileSize ?? Number.POSITIVE_INFINITY,
      maxTransfers: receive.maxTransfers ?? 8,
      decide: receive.decide,
      sha256: options.sha256,
      onFile: (file) => this.emit('file', file),
      onError: (error) => this.emit('error', error),
    });
  }

  get activeTransfers(): number {
    return this.#sender.count + (this.#receiver?.count ?? 0);
  }

  attach(link: TransferLink): void {
    if (this.#closed) return;
    if (this.#port.attached) this.detach();
    this.#port.set(link);
    this.#sender.attach();
  }

  detach(): void {
    if (!this.#port.attached) return;
    this.#port.set(undefined);
    this.#sender.detach();
    this.#receiver?.detach();
  }

  handle(frame: FileFrame): ProtocolError | undefined {
    if (this.#closed || !this.#port.attached) return undefined;
    return routeFileFrame(frame, this.#port, this.#sender, this.#receiver);
  }

  pump(): void {
    if (!this.#closed) this.#sender.pump();
  }

  /** Sends a Blob (a File) to the peer; a path is refused (INVALID_OPTION): no file system here. */
  sendFile(file: string | BlobLike, options: SendFileOptions = {}): Transfer {
    if (typeof file === 'string') {
      const error = new TetherError(
        ErrorCode.INVALID_OPTION,
        `cannot send ${file}: paths need a file system; give a Blob or File`,
      );
      return new Transfer(
        { id: '', name: options.name ?? file, size: 0, path: file },
        () => {},
        (_resolve, reject) => reject(error),
      );
    }
    const name = options.name ?? blobName(file);
    return this.#sender.sendFile({ name, path: '' }, options, () =>
      prepareBlob(file, name, this.owner, this.#sha256),
    );
  }

  async close(error: TetherError): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.set(undefined);
    await this.#sender.close(error);
    await this.#receiver?.close();
  }
}
