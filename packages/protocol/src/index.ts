export { CREDENTIALS_AUTH_METHOD, HMAC_AUTH_METHOD } from './auth-methods.js';
export { authProof, verifyAuthProof } from './auth-proof.js';
export type { BackoffOptions } from './backoff.js';
export { backoffDelay, DEFAULT_BACKOFF, resolveBackoff, retryAfterDelay } from './backoff.js';
export type {
  ChallengeBody,
  ErrorBody,
  FileAcceptBody,
  FileCancelBody,
  FileCompleteBody,
  FileEndBody,
  FileFailedBody,
  FileOfferBody,
  FileStatusBody,
  GoawayBody,
  HelloBody,
  WelcomeBody,
} from './control-bodies.js';
export { isControlType, validateControlBody } from './control-bodies.js';
export { crc32, crc32Portable } from './crc32.js';
export type { DecoderOptions, FrameHandler } from './decoder.js';
export { FrameDecoder } from './decoder.js';
export {
  checkDataFlags,
  dataFrameLength,
  dataPrefixSize,
  encodeAck,
  encodeChallenge,
  encodeControl,
  encodeData,
  encodeError,
  encodeFileAccept,
  encodeFileCancel,
  encodeFileChunk,
  encodeFileComplete,
  encodeFileEnd,
  encodeFileFailed,
  encodeFileOffer,
  encodeFileStatus,
  encodeFrame,
  encodeGoaway,
  encodeHello,
  encodePing,
  encodePong,
  encodeWelcome,
  FILE_CHUNK_PREFIX,
} from './encode.js';
export { ErrorCode, isErrorCode } from './error-codes.js';
export { ProtocolError, TetherError } from './errors.js';
export { Fifo } from './fifo.js';
export { FileChunkBuffer } from './file-chunk.js';
export type { FileReceiveOptions } from './file-receive-state.js';
export {
  ChunkVerdict,
  DEFAULT_FILE_SYNC_BYTES,
  FileReceivePhase,
  FileReceiveState,
} from './file-receive-state.js';
export type { FileSendAction, FileSendOptions } from './file-send-state.js';
export {
  DEFAULT_FILE_CHUNK,
  DEFAULT_FILE_WINDOW,
  FileSendPhase,
  FileSendState,
  FileStatusVerdict,
} from './file-send-state.js';
export {
  DATA_FLAGS_MASK,
  DataFlag,
  FRAME_HEADER_SIZE,
  FRAME_LENGTH_OVERHEAD,
  FrameType,
  isCorrelated,
  isValidDataFlags,
  TRANSFER_ID_SIZE,
} from './frame-types.js';
export type {
  AckFrame,
  ControlFrame,
  DataFrame,
  FileChunkFrame,
  Frame,
  PingFrame,
} from './frames.js';
export type { HeartbeatDecision, HeartbeatOptions } from './heartbeat.js';
export { HeartbeatMonitor } from './heartbeat.js';
export {
  ABSOLUTE_MAX_FRAME,
  checkFrameLimit,
  DEFAULT_MAX_CONTROL,
  DEFAULT_MAX_FRAME,
  isFrameLimit,
  MAX_CLIENT_ID_BYTES,
  MAX_FILE_CHUNK_DATA,
  MAX_U64_SAFE,
  MIN_MAX_FRAME,
} from './limits.js';
export type { Payload } from './message.js';
export { Message, toBuffer } from './message.js';
export type { BatchSink, DataItem } from './output-batch.js';
export { OutputBatch } from './output-batch.js';
export { checkPreface, PREFACE, PREFACE_SIZE, PROTOCOL_VERSION } from './preface.js';
export { InboundVerdict, ReliableInbound } from './reliable-inbound.js';
export type { LinkEvents, LinkOptions, LinkOutput, LinkState } from './reliable-link.js';
export { ReliableLink } from './reliable-link.js';
export type { OutboundEntry } from './reliable-outbound.js';
export { ReliableOutbound } from './reliable-outbound.js';
export type { RttStats } from './rtt.js';
export { RttEstimator } from './rtt.js';
export type { SessionLog } from './session-log.js';
export { MEMORY_LOG } from './session-log.js';
