export type { BlobReceiverOptions, ByteSink, DownloadDecision } from './blob-receiver.js';
export type { BlobLike } from './blob-source.js';
export { BlobSource, blobName, blobTransferId, prepareBlob } from './blob-source.js';
export type { ReceiveOptions, TransferEngineEvents, TransferEngineOptions } from './engine.js';
export { TransferEngine } from './engine.js';
export type { FileEngine } from './file-engine.js';
export type { FileFrame } from './file-frame.js';
export { isFileFrame } from './file-frame.js';
export { checkFileName, MAX_FILE_NAME_BYTES } from './file-name.js';
export type { FileFingerprint } from './fingerprint.js';
export { transferId } from './fingerprint.js';
export { hash128 } from './fingerprint-hash.js';
export type { FileIo } from './io.js';
export { PARTIAL_DIR } from './partial-store.js';
export type { TransferLink } from './port.js';
export { TRANSFER_LOW_WATER } from './port.js';
export type { ReceiveDirectoryOptions } from './receive-directory.js';
export { ReceiveDirectory } from './receive-directory.js';
export type { FileOfferInfo, ReceivedFile } from './receiver.js';
export type { SendFileOptions } from './sender.js';
export type { Sha256, Sha256Factory } from './sha256.js';
export type {
  TransferEvents,
  TransferInit,
  TransferProgress,
  TransferResult,
} from './transfer.js';
export { Transfer } from './transfer.js';
