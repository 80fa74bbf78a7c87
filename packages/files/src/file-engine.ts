import type { ProtocolError, TetherError } from '@tether/protocol';
import type { BlobLike } from './blob-source.js';
import type { FileFrame } from './file-frame.js';
import type { TransferLink } from './port.js';
import type { SendFileOptions } from './sender.js';
import type { Transfer } from './transfer.js';

/**
 * What a session's connections ask of its file engine: the Node engine ({@link TransferEngine},
 * files on disk) and the browser's ({@link BlobTransferEngine}, Blobs in memory) both are one.
 */
export interface FileEngine {
  /** Outgoing (queued included) plus incoming transfers in progress. */
  readonly activeTransfers: number;
  /** A connection is up: (re)offer every unfinished outgoing transfer. */
  attach(link: TransferLink): void;
  /** The connection dropped: pause everything (transfers resume on `attach`). */
  detach(): void;
  /** Any FILE_* frame from the peer; a ProtocolError fails the connection. */
  handle(frame: FileFrame): ProtocolError | undefined;
  /** The link drained: continue sending chunks. */
  pump(): void;
  /** Sends a file (a path; where the engine can, a Blob) to the peer. */
  sendFile(file: string | BlobLike, options?: SendFileOptions): Transfer;
  /** Fails outgoing transfers with `error`, pauses incoming ones, releases everything. */
  close(error: TetherError): Promise<void>;
}
