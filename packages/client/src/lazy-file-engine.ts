import {
  blobName,
  blobTransferId,
  type FileEngine,
  type FileFrame,
  type SendFileOptions,
  Transfer,
  type TransferLink,
} from '@tether/files';
import {
  ErrorCode,
  encodeFileFailed,
  FrameType,
  ProtocolError,
  TetherError,
} from '@tether/protocol';

/** A send made before the engine was loaded, handed over once it is. */
interface Waiting {
  file: Blob;
  options: SendFileOptions;
  transfer: Transfer;
  resolve: Parameters<ConstructorParameters<typeof Transfer>[2]>[0];
  reject: (error: TetherError) => void;
  cancelled: boolean;
  real: Transfer | undefined;
}

// Offers that may wait for the module; more are refused (retryable) until it is loaded.
const MAX_WAITING_OFFERS = 16;

/**
 * The browser build's file engine until its module is loaded (a chunk of its own, fetched at
 * the first use of files): sends wait in Transfers that are already named (the id of a Blob
 * needs no SHA-256), offers from the server wait, then both are handed to the real engine.
 * Before it is loaded nothing was offered by us, so an answer to an offer is a protocol error.
 */
export class LazyFileEngine implements FileEngine {
  readonly #owner: string;
  #engine: FileEngine | undefined;
  #link: TransferLink | undefined;
  #waiting: Waiting[] = [];
  #offers: { frame: FileFrame; link: TransferLink }[] = [];
  #closed: TetherError | undefined;

  constructor(owner: string, load: () => Promise<FileEngine>) {
    this.#owner = owner;
    load().then(
      (engine) => this.#loaded(engine),
      (error: unknown) => this.#failed(error),
    );
  }

  get activeTransfers(): number {
    return this.#engine?.activeTransfers ?? this.#waiting.length + this.#offers.length;
  }

  attach(link: TransferLink): void {
    this.#link = link;
    this.#engine?.attach(link);
  }

  detach(): void {
    this.#link = undefined;
    // Offers made on this connection are void: the server offers them again on the next one.
    this.#offers = [];
    this.#engine?.detach();
  }

  handle(frame: FileFrame): ProtocolError | undefined {
    if (this.#engine !== undefined) return this.#engine.handle(frame);
    const link = this.#link;
    if (this.#closed !== undefined || link === undefined) return undefined;
    if (frame.type === FrameType.FILE_OFFER) {
      // The server offers again each ping interval while its offer is unanswered: one waits.
      if (this.#offers.some((o) => o.link === link && sameOffer(o.frame, frame))) return undefined;
      if (this.#offers.length < MAX_WAITING_OFFERS) this.#offers.push({ frame, link });
      else refuseOffer(link, frame.body.id, 'too many offers while the file module loads');
      return undefined;
    }
    if (frame.type === FrameType.FILE_CHUNK || frame.type === FrameType.FILE_END) return undefined;
    if (frame.type === FrameType.FILE_CANCEL) return undefined;
    return new ProtocolError(
      ErrorCode.UNEXPECTED_FRAME,
      `file frame 0x${frame.type.toString(16)} for transfer ${frame.body.id}, never offered on this connection`,
    );
  }

  pump(): void {
    this.#engine?.pump();
  }

  // Every Transfer is made here, also once the module is loaded: the module is a bundle of its
  // own, and its Transfer class is not the one this package exports (instanceof must hold).
  sendFile(file: string | Blob, options: SendFileOptions = {}): Transfer {
    const name = options.name ?? (typeof file === 'string' ? file : blobName(file));
    const closed = this.#closed;
    if (typeof file === 'string' || closed !== undefined) {
      const error =
        closed ??
        new TetherError(
          ErrorCode.INVALID_OPTION,
          `cannot send ${name}: paths need a file system; give a Blob or File`,
        );
      return new Transfer(
        { id: '', name, size: 0, path: typeof file === 'string' ? file : '' },
        () => {},
        (_resolve, reject) => reject(error),
      );
    }
    let settle!: Pick<Waiting, 'resolve' | 'reject'>;
    const waiting = {} as Waiting;
    const transfer = new Transfer(
      { id: blobTransferId(file, name, this.#owner), name, size: file.size, path: '' },
      () => {
        if (waiting.real !== undefined) waiting.real.cancel();
        else if (!waiting.cancelled) {
          waiting.cancelled = true;
          waiting.reject(new TetherError(ErrorCode.FILE_CANCELLED, 'the transfer was cancelled'));
        }
      },
      (resolve, reject) => {
        settle = { resolve, reject };
      },
    );
    Object.assign(waiting, { file, options, transfer, cancelled: false, real: undefined }, settle);
    if (this.#engine !== undefined) this.#handOver(this.#engine, waiting);
    else this.#waiting.push(waiting);
    return transfer;
  }

  async close(error: TetherError): Promise<void> {
    if (this.#closed !== undefined) return;
    this.#closed = error;
    this.#offers = [];
    for (const waiting of this.#waiting.splice(0)) if (!waiting.cancelled) waiting.reject(error);
    await this.#engine?.close(error);
  }

  #loaded(engine: FileEngine): void {
    if (this.#closed !== undefined) {
      void engine.close(this.#closed);
      return;
    }
    this.#engine = engine;
    if (this.#link !== undefined) engine.attach(this.#link);
    for (const waiting of this.#waiting.splice(0)) this.#handOver(engine, waiting);
    // Offers made on a connection that is gone are void: the server offers them again.
    for (const { frame, link } of this.#offers.splice(0)) {
      if (link === this.#link) engine.handle(frame);
    }
  }

  // The real engine takes the send; its Transfer's progress and outcome go to ours.
  #handOver(engine: FileEngine, waiting: Waiting): void {
    if (waiting.cancelled) return;
    const real = engine.sendFile(waiting.file, waiting.options);
    waiting.real = real;
    real.on('progress', (progress) => waiting.transfer.emit('progress', progress));
    real.done.then(waiting.resolve, waiting.reject);
  }

  #failed(cause: unknown): void {
    const error = new TetherError(
      ErrorCode.FILE_READ_FAILED,
      `cannot load the file-transfer module: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.#closed ??= error;
    for (const waiting of this.#waiting.splice(0)) if (!waiting.cancelled) waiting.reject(error);
    for (const { frame, link } of this.#offers.splice(0)) {
      if (link === this.#link && frame.type === FrameType.FILE_OFFER) {
        refuseOffer(link, frame.body.id, error.message);
      }
    }
  }
}

function sameOffer(a: FileFrame, b: FileFrame): boolean {
  return (
    a.type === FrameType.FILE_OFFER && b.type === FrameType.FILE_OFFER && a.body.id === b.body.id
  );
}

function refuseOffer(link: TransferLink, id: string, message: string): void {
  link.write(
    encodeFileFailed({ id, code: ErrorCode.TOO_MANY_TRANSFERS, message, retryable: true }),
  );
}
