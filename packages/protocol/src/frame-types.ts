/**
 * Frame layout (all integers big-endian):
 *
 *   u32 length | u8 type | u8 flags | body
 *
 * `length` counts the type byte, the flags byte and the body, so it is always >= 2. Control
 * frames carry a UTF-8 JSON object as body; hot-path frames (DATA, ACK, PING, PONG, FILE_CHUNK)
 * are binary. PROTOCOL.md is the normative description.
 */
export const FrameType = {
  /** Server -> client, first frame: nonce for authentication, server limits. JSON. */
  CHALLENGE: 0x01,
  /** Client -> server: identity, resume token, last delivered sequence, auth proof. JSON. */
  HELLO: 0x02,
  /** Server -> client: session established or resumed, effective limits and deadlines. JSON. */
  WELCOME: 0x03,
  /** Either side: fatal error with a stable code; the sender closes afterwards. JSON. */
  ERROR: 0x04,
  /** Server -> client: draining or overloaded; reconnect after `retryAfterMs`. JSON. */
  GOAWAY: 0x05,
  /** Liveness probe carrying an opaque u64 stamp. Binary. */
  PING: 0x10,
  /** Answer to PING echoing its stamp. Binary. */
  PONG: 0x11,
  /** Reliable application message: u64 seq [u64 request id] payload. Binary. */
  DATA: 0x20,
  /** Cumulative acknowledgement: u64 highest sequence delivered in order. Binary. */
  ACK: 0x21,
  /** Sender proposes a file: transfer id, name, size, SHA-256. JSON. */
  FILE_OFFER: 0x30,
  /** Receiver accepts and says where to resume: its committed offset. JSON. */
  FILE_ACCEPT: 0x31,
  /** File bytes: 16-byte transfer id, u64 offset, u32 CRC32, data. Binary. */
  FILE_CHUNK: 0x32,
  /** Sender has sent every byte. JSON. */
  FILE_END: 0x33,
  /** Receiver verified the SHA-256 and stored the file. JSON. */
  FILE_COMPLETE: 0x34,
  /** Receiver refused or failed the transfer, with a code. JSON. */
  FILE_FAILED: 0x35,
  /** Either side abandons a transfer. JSON. */
  FILE_CANCEL: 0x36,
  /** Receiver reports its committed offset; also grants flow-control window. JSON. */
  FILE_STATUS: 0x37,
} as const;

/** Numeric frame type, one of {@link FrameType}. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Flag bits of DATA frames. Every other frame type requires flags = 0. */
export const DataFlag = {
  /** The message is a request; the body carries a u64 request id after the sequence. */
  REQUEST: 0x01,
  /** The message answers the request whose id follows the sequence. */
  RESPONSE: 0x02,
  /** With RESPONSE: the request failed; the payload is a JSON `{ code, message }`. */
  ERROR: 0x04,
} as const;

/** Bits that may appear in a DATA frame's flags byte. */
export const DATA_FLAGS_MASK: number = DataFlag.REQUEST | DataFlag.RESPONSE | DataFlag.ERROR;

/**
 * Whether `flags` is a valid DATA flags byte (PROTOCOL.md section 4): exactly 0x00, 0x01, 0x02
 * or 0x06 (no unknown bit, not REQUEST with RESPONSE, ERROR only with RESPONSE). The one rule
 * the encoder and the decoder apply.
 */
export function isValidDataFlags(flags: number): boolean {
  if ((flags & ~DATA_FLAGS_MASK) !== 0) return false;
  if (flags & DataFlag.REQUEST && flags & DataFlag.RESPONSE) return false;
  return !(flags & DataFlag.ERROR) || (flags & DataFlag.RESPONSE) !== 0;
}

/** Whether a DATA frame with `flags` carries a request id (REQUEST or RESPONSE). */
export function isCorrelated(flags: number): boolean {
  return (flags & (DataFlag.REQUEST | DataFlag.RESPONSE)) !== 0;
}

/** Bytes before the body: u32 length, u8 type, u8 flags. */
export const FRAME_HEADER_SIZE = 6;
/** Bytes counted by `length` that are not body: type and flags. */
export const FRAME_LENGTH_OVERHEAD = 2;
/** Size of a FILE_CHUNK transfer id on the wire. */
export const TRANSFER_ID_SIZE = 16;
