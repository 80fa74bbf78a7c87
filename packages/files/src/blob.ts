// `@tether/files/blob`: the engine for runtimes without a file system (browser pages), an entry
// of its own so that a bundle splits it from the rest (the client's browser build loads it on
// demand).
export type { BlobTransferEngineOptions } from './blob-engine.js';
export { BlobTransferEngine } from './blob-engine.js';
export type { BlobReceiverOptions, ByteSink, DownloadDecision } from './blob-receiver.js';
