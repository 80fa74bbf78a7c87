/**
 * One server→client message as the Redis store keeps it until the client acknowledges it. Its
 * sequence number is its place in the session's list, so it is not stored.
 *
 * ```
 * u8  version (1)
 * u8  DATA flags (request, response, error)
 * f64 request id (big-endian; an integer below 2^53)
 * u8  length of the origin instance id, then its ASCII bytes (who to tell when it is acknowledged)
 * ... payload
 * ```
 */
export interface StoredMessage {
  flags: number;
  requestId: number;
  /** The instance whose application sent it ('' when it is gone). */
  origin: string;
  payload: Buffer;
}

const VERSION = 1;
const HEADER = 11;

/** Encodes a message for the store. */
export function encodeRecord(message: StoredMessage): Buffer {
  const origin = Buffer.from(message.origin, 'latin1');
  const out = Buffer.allocUnsafe(HEADER + origin.length + message.payload.length);
  out[0] = VERSION;
  out[1] = message.flags;
  out.writeDoubleBE(message.requestId, 2);
  out[10] = origin.length;
  origin.copy(out, HEADER);
  message.payload.copy(out, HEADER + origin.length);
  return out;
}

/** Decodes a stored message; throws on bytes this version did not write. */
export function decodeRecord(record: Buffer): StoredMessage {
  if (record.length < HEADER || record[0] !== VERSION) {
    throw new Error(`not a stored message (version ${record[0]}, ${record.length} bytes)`);
  }
  const originEnd = HEADER + (record[10] as number);
  if (originEnd > record.length) throw new Error('stored message cut short');
  return {
    flags: record[1] as number,
    requestId: record.readDoubleBE(2),
    origin: record.toString('latin1', HEADER, originEnd),
    payload: record.subarray(originEnd),
  };
}
