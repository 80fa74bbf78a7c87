import type {
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
import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';
import {
  FRAME_HEADER_SIZE,
  FrameType,
  isCorrelated,
  isValidDataFlags,
  TRANSFER_ID_SIZE,
} from './frame-types.js';
import type { ControlFrame, Frame } from './frames.js';
import { MAX_FILE_CHUNK_DATA } from './limits.js';
import { writeU64 } from './u64.js';

function header(buf: Buffer, type: number, flags: number): void {
  buf.writeUInt32BE(buf.length - 4, 0);
  buf[4] = type;
  buf[5] = flags;
}

/**
 * Throws BAD_FLAGS for DATA flags the peer's decoder would refuse: unknown bits, REQUEST with
 * RESPONSE, or ERROR without RESPONSE.
 */
export function checkDataFlags(flags: number): void {
  if (!isValidDataFlags(flags)) {
    throw new ProtocolError(ErrorCode.BAD_FLAGS, `invalid DATA flags 0x${flags.toString(16)}`);
  }
}

/** Bytes of a DATA frame before its payload: the frame header, seq, and requestId if correlated. */
export function dataPrefixSize(flags: number): number {
  return FRAME_HEADER_SIZE + (isCorrelated(flags) ? 16 : 8);
}

/** The `length` field of a DATA frame carrying `payloadLength` bytes with `flags`. */
export function dataFrameLength(payloadLength: number, flags: number): number {
  return dataPrefixSize(flags) - 4 + payloadLength;
}

/**
 * Writes the part of a DATA frame before its payload into `buf` at `offset`; returns where the
 * payload goes. Flags must have passed {@link checkDataFlags}.
 */
export function writeDataPrefix(
  buf: Buffer,
  offset: number,
  seq: number,
  payloadLength: number,
  flags: number,
  requestId: number,
): number {
  const prefix = dataPrefixSize(flags);
  buf.writeUInt32BE(prefix - 4 + payloadLength, offset);
  buf[offset + 4] = FrameType.DATA;
  buf[offset + 5] = flags;
  writeU64(buf, seq, offset + 6);
  if (prefix > FRAME_HEADER_SIZE + 8) writeU64(buf, requestId, offset + 14);
  return offset + prefix;
}

/** Throws BAD_FRAME_LENGTH unless a FILE_CHUNK would carry 1 to 256 KiB of data. */
export function checkChunkData(length: number): void {
  if (!(Number.isSafeInteger(length) && length >= 1 && length <= MAX_FILE_CHUNK_DATA)) {
    throw new ProtocolError(
      ErrorCode.BAD_FRAME_LENGTH,
      `a FILE_CHUNK carries 1 to ${MAX_FILE_CHUNK_DATA} bytes of data, not ${length}`,
    );
  }
}

/**
 * Encodes a DATA frame. `requestId` is written only when flags has REQUEST or RESPONSE. Throws
 * BAD_FLAGS for flags the peer's decoder would refuse (see {@link checkDataFlags}).
 */
export function encodeData(seq: number, payload: Uint8Array, flags = 0, requestId = 0): Buffer {
  checkDataFlags(flags);
  if (requestId < 1 && isCorrelated(flags)) {
    throw new ProtocolError(ErrorCode.INTEGER_OUT_OF_RANGE, 'DATA requestId must be >= 1');
  }
  const buf = Buffer.allocUnsafe(dataPrefixSize(flags) + payload.length);
  buf.set(payload, writeDataPrefix(buf, 0, seq, payload.length, flags, requestId));
  return buf;
}

/** Encodes an ACK of every sequence up to and including `seq`. */
export function encodeAck(seq: number): Buffer {
  const buf = Buffer.allocUnsafe(ACK_FRAME_SIZE);
  writeAck(buf, 0, seq);
  return buf;
}

/** Bytes of an ACK frame. */
export const ACK_FRAME_SIZE: number = FRAME_HEADER_SIZE + 8;

/** Writes an ACK frame of `seq` into `buf` at `offset`; returns the offset after it. */
export function writeAck(buf: Buffer, offset: number, seq: number): number {
  buf.writeUInt32BE(ACK_FRAME_SIZE - 4, offset);
  buf[offset + 4] = FrameType.ACK;
  buf[offset + 5] = 0;
  writeU64(buf, seq, offset + 6);
  return offset + ACK_FRAME_SIZE;
}

/** Encodes a PING carrying an opaque stamp the peer echoes in its PONG. */
export function encodePing(stamp: number): Buffer {
  return encodeStamped(FrameType.PING, stamp);
}

/** Encodes a PONG echoing a PING's stamp. */
export function encodePong(stamp: number): Buffer {
  return encodeStamped(FrameType.PONG, stamp);
}

function encodeStamped(type: number, stamp: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8);
  header(buf, type, 0);
  writeU64(buf, stamp, 6);
  return buf;
}

const TRANSFER_ID = /^[0-9a-f]{32}$/;

/** Size of a FILE_CHUNK frame's fields before its data. */
export const FILE_CHUNK_PREFIX: number = FRAME_HEADER_SIZE + TRANSFER_ID_SIZE + 8 + 4;

/** Encodes a FILE_CHUNK; `crc32` is the CRC-32 of `data`. */
export function encodeFileChunk(
  id: string,
  offset: number,
  crc32: number,
  data: Uint8Array,
): Buffer {
  if (!TRANSFER_ID.test(id)) {
    throw new ProtocolError(ErrorCode.BAD_CONTROL_BODY, 'transfer id must be 32 lowercase hex');
  }
  checkChunkData(data.length);
  const buf = Buffer.allocUnsafe(FILE_CHUNK_PREFIX + data.length);
  header(buf, FrameType.FILE_CHUNK, 0);
  buf.write(id, 6, TRANSFER_ID_SIZE, 'hex');
  writeU64(buf, offset, 22);
  buf.writeUInt32BE(crc32 >>> 0, 30);
  buf.set(data, FILE_CHUNK_PREFIX);
  return buf;
}

/** Encodes a control frame with its JSON body. */
export function encodeControl(frame: ControlFrame): Buffer {
  const json = Buffer.from(JSON.stringify(frame.body), 'utf8');
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + json.length);
  header(buf, frame.type, 0);
  json.copy(buf, FRAME_HEADER_SIZE);
  return buf;
}

/** Encodes a CHALLENGE frame. */
export const encodeChallenge = (body: ChallengeBody): Buffer =>
  encodeControl({ type: FrameType.CHALLENGE, body });
/** Encodes a HELLO frame. */
export const encodeHello = (body: HelloBody): Buffer =>
  encodeControl({ type: FrameType.HELLO, body });
/** Encodes a WELCOME frame. */
export const encodeWelcome = (body: WelcomeBody): Buffer =>
  encodeControl({ type: FrameType.WELCOME, body });
/** Encodes an ERROR frame. */
export const encodeError = (body: ErrorBody): Buffer =>
  encodeControl({ type: FrameType.ERROR, body });
/** Encodes a GOAWAY frame. */
export const encodeGoaway = (body: GoawayBody): Buffer =>
  encodeControl({ type: FrameType.GOAWAY, body });
/** Encodes a FILE_OFFER frame. */
export const encodeFileOffer = (body: FileOfferBody): Buffer =>
  encodeControl({ type: FrameType.FILE_OFFER, body });
/** Encodes a FILE_ACCEPT frame. */
export const encodeFileAccept = (body: FileAcceptBody): Buffer =>
  encodeControl({ type: FrameType.FILE_ACCEPT, body });
/** Encodes a FILE_END frame. */
export const encodeFileEnd = (body: FileEndBody): Buffer =>
  encodeControl({ type: FrameType.FILE_END, body });
/** Encodes a FILE_COMPLETE frame. */
export const encodeFileComplete = (body: FileCompleteBody): Buffer =>
  encodeControl({ type: FrameType.FILE_COMPLETE, body });
/** Encodes a FILE_FAILED frame. */
export const encodeFileFailed = (body: FileFailedBody): Buffer =>
  encodeControl({ type: FrameType.FILE_FAILED, body });
/** Encodes a FILE_CANCEL frame. */
export const encodeFileCancel = (body: FileCancelBody): Buffer =>
  encodeControl({ type: FrameType.FILE_CANCEL, body });
/** Encodes a FILE_STATUS frame. */
export const encodeFileStatus = (body: FileStatusBody): Buffer =>
  encodeControl({ type: FrameType.FILE_STATUS, body });

/** Encodes any frame; the generic path for tests and tools (hot paths call the typed encoders). */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case FrameType.DATA:
      return encodeData(frame.seq, frame.payload, frame.flags, frame.requestId);
    case FrameType.ACK:
      return encodeAck(frame.seq);
    case FrameType.PING:
      return encodePing(frame.stamp);
    case FrameType.PONG:
      return encodePong(frame.stamp);
    case FrameType.FILE_CHUNK:
      return encodeFileChunk(frame.id, frame.offset, frame.crc32, frame.data);
    default:
      return encodeControl(frame);
  }
}
