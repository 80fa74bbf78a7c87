import {
  ChunkVerdict,
  ErrorCode,
  encodeFileAccept,
  encodeFileComplete,
  encodeFileFailed,
  encodeFileStatus,
  type FileChunkFrame,
  type FileOfferBody,
  FileReceiveState,
  TetherError,
} from '@tether/protocol';
import { checkFileName } from './file-name-check.js';
import { nextTurn } from './next-turn.js';
import type { Port } from './port.js';
import type { FileOfferInfo, ReceivedFile } from './receiver.js';
import type { Sha256, Sha256Factory } from './sha256.js';

/** Where a download's bytes go when not into a Blob: a WHATWG WritableStream. */
export interface ByteSink {
  getWriter(): {
    write(chunk: Uint8Array): Promise<void>;
    close(): Promise<void>;
    abort(reason?: unknown): Promise<void>;
  };
}

/**
 * Decides an offer: false refuses it (TRANSFER_REFUSED), true takes it into a Blob held in
 * memory (`ReceivedFile.blob`), a WritableStream takes it into that stream as it arrives.
 */
export type DownloadDecision = (
  offer: FileOfferInfo,
) => boolean | ByteSink | Promise<boolean | ByteSink>;

/** Settings of the in-memory receiving half. */
export interface BlobReceiverOptions {
  owner: string;
  maxFileSize: number;
  maxTransfers: number;
  decide: DownloadDecision;
  sha256: Sha256Factory;
  onFile: (file: ReceivedFile) => void;
  onError: (error: TetherError) => void;
}

type Writer = ReturnType<ByteSink['getWriter']>;

/** One download: its state machine, its running hash, and where its bytes go. */
interface Download {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  state: FileReceiveState;
  readonly hash: Sha256;
  /** Blob mode: the chunks so far, in order. */
  readonly parts: Uint8Array[] | undefined;
  /** Stream mode: the stream's writer. */
  readonly writer: Writer | undefined;
  /** Stream mode: the writes in flight, in order. */
  writing: Promise<void>;
  /** SHA-256 from FILE_END, once it arrived. */
  sha256: string | undefined;
  finishing: boolean;
  /** The port generation of the connection it was accepted (or resumed) on. */
  generation: number;
  /** Being resumed on `generation`: its FILE_ACCEPT goes out once the writes in flight settle. */
  resuming: boolean;
  /** A chunk or FILE_END came on `generation`: a repeated offer is no longer answered as the first. */
  received: boolean;
}

/** An offer the application is deciding; the answer goes to the connection that offered last. */
interface Deciding {
  generation: number;
}

/**
 * Receives files without a file system (PROTOCOL.md section 13, as the receiver): into a Blob,
 * or a stream, verified by a SHA-256 computed as the bytes arrive (chunks are taken in order
 * only). A download survives a reconnect in memory: the sender's next offer resumes it from the
 * committed offset. It does not survive the page: a reload starts it over.
 */
export class BlobReceiver {
  readonly #port: Port;
  readonly #options: BlobReceiverOptions;
  readonly #byId = new Map<string, Download>();
  readonly #deciding = new Map<string, Deciding>();
  readonly #dirty = new Set<Download>();
  #cancelFlush: (() => void) | undefined;

  constructor(port: Port, options: BlobReceiverOptions) {
    this.#port = port;
    this.#options = options;
  }

  /** Downloads in progress. */
  get count(): number {
    return this.#byId.size + this.#deciding.size;
  }

  /**
   * FILE_OFFER. The sender offers again while its offer goes unanswered (a lost FILE_OFFER or
   * FILE_ACCEPT), so a repeat costs one small answer at most: while the application decides, it
   * is ignored (the answer goes out when the decision settles, on the connection that offered
   * last); once accepted, until a chunk or FILE_END arrives, it gets FILE_ACCEPT again at the
   * committed offset, nothing reset.
   */
  onOffer(offer: FileOfferBody): void {
    const { id, name, size } = offer;
    const generation = this.#port.generation;
    const deciding = this.#deciding.get(id);
    if (deciding !== undefined) {
      deciding.generation = generation;
      return;
    }
    const known = this.#byId.get(id);
    if (known !== undefined && known.size === size) {
      if (known.generation === generation && !known.received) {
        if (!known.resuming) {
          this.#port.send(encodeFileAccept({ id, offset: known.state.committed }));
        }
        return;
      }
      void this.#resume(known);
      return;
    }
    if (known !== undefined) this.#drop(known, 'offered again with another size');
    const problem = checkFileName(name);
    if (problem !== undefined) {
      this.#failed(id, ErrorCode.FILE_NAME_INVALID, problem, false);
      return;
    }
    if (size > this.#options.maxFileSize) {
      this.#failed(
        id,
        ErrorCode.FILE_TOO_LARGE,
        `larger than ${this.#options.maxFileSize} bytes`,
        false,
      );
      return;
    }
    if (this.count >= this.#options.maxTransfers) {
      this.#failed(id, ErrorCode.TOO_MANY_TRANSFERS, 'too many downloads at once', true);
      return;
    }
    void this.#decide(offer);
  }

  onChunk(frame: FileChunkFrame): void {
    const download = this.#byId.get(frame.id);
    if (download === undefined) return;
    download.received = true;
    if (download.finishing) return;
    const verdict = download.state.chunk(frame.offset, frame.data, frame.crc32);
    if (verdict === ChunkVerdict.WRITE) {
      // The frame's bytes belong to the decoder's buffer: keep a copy.
      const data = new Uint8Array(frame.data);
      download.hash.update(data);
      const writer = download.writer;
      if (writer === undefined) {
        download.parts?.push(data);
        download.state.written(data.length);
      } else {
        const state = download.state;
        download.writing = download.writing
          .then(() => writer.write(data))
          .then(() => {
            state.written(data.length);
            this.#mark(download);
          });
        download.writing.catch((error: unknown) =>
          this.#writeFailed(download, error instanceof Error ? error.message : String(error)),
        );
        return;
      }
    }
    if (verdict !== ChunkVerdict.IGNORE) this.#mark(download);
  }

  onEnd(id: string, sha256: string): void {
    const download = this.#byId.get(id);
    if (download === undefined) return;
    download.received = true;
    if (!download.state.end()) return;
    download.sha256 = sha256;
    this.#mark(download);
  }

  onCancel(id: string): void {
    const download = this.#byId.get(id);
    if (download !== undefined) this.#drop(download, 'cancelled by the sender');
  }

  /** The connection dropped: downloads wait (in memory) for the sender's next offer. */
  detach(): void {
    this.#dirty.clear();
  }

  /** Abandons every download (their streams are aborted). */
  async close(): Promise<void> {
    this.#cancelFlush?.();
    this.#cancelFlush = undefined;
    for (const download of [...this.#byId.values()]) this.#drop(download, 'closed');
  }

  async #decide(offer: FileOfferBody): Promise<void> {
    const { id, name, size } = offer;
    const pending: Deciding = { generation: this.#port.generation };
    this.#deciding.set(id, pending);
    let decision: boolean | ByteSink;
    try {
      decision = await this.#options.decide({ name, size, owner: this.#options.owner });
    } catch (error) {
      decision = false;
      this.#options.onError(
        new TetherError(ErrorCode.HANDLER_FAILED, 'the download handler threw', { cause: error }),
      );
    } finally {
      this.#deciding.delete(id);
    }
    // Offered last on a connection that is gone: the sender offers it again on the next one.
    const generation = pending.generation;
    if (this.#port.generation !== generation) return;
    if (decision === false) {
      this.#failed(id, ErrorCode.TRANSFER_REFUSED, 'the application refused the file', false);
      return;
    }
    const writer = decision === true ? undefined : decision.getWriter();
    const download: Download = {
      id,
      name,
      size,
      state: new FileReceiveState({ size }),
      hash: this.#options.sha256(),
      parts: writer === undefined ? [] : undefined,
      writer,
      writing: Promise.resolve(),
      sha256: undefined,
      finishing: false,
      generation,
      resuming: false,
      received: false,
    };
    this.#byId.set(id, download);
    this.#port.send(encodeFileAccept({ id, offset: 0 }));
    if (size === 0) this.#mark(download);
  }

  // The sender offered a download again (a new connection): resume from what is committed.
  async #resume(download: Download): Promise<void> {
    const generation = this.#port.generation;
    download.generation = generation;
    download.resuming = true;
    download.received = false;
    await download.writing.catch(() => {});
    if (this.#byId.get(download.id) !== download || download.generation !== generation) return;
    download.resuming = false;
    if (this.#port.generation !== generation) return;
    download.state = new FileReceiveState({
      size: download.size,
      committed: download.state.committed,
    });
    download.sha256 = undefined;
    this.#port.send(encodeFileAccept({ id: download.id, offset: download.state.committed }));
  }

  // Statuses (and the end) are handled once per turn, however many chunks came.
  #mark(download: Download): void {
    this.#dirty.add(download);
    this.#cancelFlush ??= nextTurn(() => {
      this.#cancelFlush = undefined;
      this.#flush();
    });
  }

  #flush(): void {
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const download of dirty) {
      if (this.#byId.get(download.id) !== download || !this.#port.attached) continue;
      for (const offset of download.state.takeStatus()) {
        this.#port.send(encodeFileStatus({ id: download.id, offset }));
      }
      if (download.state.readyToVerify) void this.#finish(download);
    }
  }

  async #finish(download: Download): Promise<void> {
    const { id, name, size, state } = download;
    state.verify();
    download.finishing = true;
    const sha256 = download.hash.hex();
    if (sha256 !== download.sha256) {
      this.#drop(download, 'SHA-256 mismatch');
      this.#failed(id, ErrorCode.FILE_CHECKSUM_MISMATCH, 'SHA-256 mismatch', true);
      return;
    }
    try {
      await download.writer?.close();
    } catch (error) {
      this.#writeFailed(download, error instanceof Error ? error.message : String(error));
      return;
    }
    state.done();
    this.#byId.delete(id);
    this.#port.send(encodeFileComplete({ id, size, sha256 }));
    const file: ReceivedFile = { id, name, path: '', size, sha256, owner: this.#options.owner };
    if (download.parts !== undefined) file.blob = new Blob(download.parts);
    this.#options.onFile(file);
  }

  #writeFailed(download: Download, message: string): void {
    if (this.#byId.get(download.id) !== download) return;
    this.#drop(download, message);
    this.#failed(
      download.id,
      ErrorCode.FILE_WRITE_FAILED,
      `the stream refused a write: ${message}`,
      false,
    );
  }

  #drop(download: Download, reason: string): void {
    download.state.fail();
    this.#byId.delete(download.id);
    this.#dirty.delete(download);
    download.writer?.abort(reason).catch(() => {});
  }

  #failed(id: string, code: ErrorCode, message: string, retryable: boolean): void {
    this.#port.send(encodeFileFailed({ id, code, message, retryable }));
  }
}
