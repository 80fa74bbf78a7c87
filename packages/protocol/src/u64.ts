import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';

const TWO_32 = 0x1_0000_0000;
// High word of the largest safe integer (2^53 - 1): 2^21 - 1.
const MAX_SAFE_HIGH = 0x1f_ffff;

/**
 * Writes a u64 (given as a safe non-negative integer) big-endian at `offset`. u64 fields are 64
 * bits on the wire; this implementation uses values up to 2^53 - 1, which no session reaches.
 */
export function writeU64(buf: Buffer, value: number, offset: number): void {
  if (!(value >= 0 && value <= Number.MAX_SAFE_INTEGER && Number.isInteger(value))) {
    throw new ProtocolError(ErrorCode.INTEGER_OUT_OF_RANGE, `u64 field out of range: ${value}`);
  }
  buf.writeUInt32BE(Math.floor(value / TWO_32), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a big-endian u64; returns -1 when it exceeds 2^53 - 1 (the caller reports the error). */
export function readU64(buf: Uint8Array, offset: number): number {
  const high =
    (((buf[offset] as number) << 24) |
      ((buf[offset + 1] as number) << 16) |
      ((buf[offset + 2] as number) << 8) |
      (buf[offset + 3] as number)) >>>
    0;
  if (high > MAX_SAFE_HIGH) return -1;
  const low =
    (((buf[offset + 4] as number) << 24) |
      ((buf[offset + 5] as number) << 16) |
      ((buf[offset + 6] as number) << 8) |
      (buf[offset + 7] as number)) >>>
    0;
  return high * TWO_32 + low;
}
