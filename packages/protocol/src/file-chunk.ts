import { crc32 } from './crc32.js';
import { checkChunkData, FILE_CHUNK_PREFIX } from './encode.js';
import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';
import { FrameType, TRANSFER_ID_SIZE } from './frame-types.js';
import { writeU64 } from './u64.js';

const TRANSFER_ID = /^[0-9a-f]{32}$/;

/**
 * A FILE_CHUNK frame built in place, for senders that read file bytes straight into the buffer
 * they send: allocate `FILE_CHUNK_PREFIX + length` bytes, fill `data` (the bytes from
 * `FILE_CHUNK_PREFIX` on), then `seal` writes the prefix. The result is byte for byte what
 * `encodeFileChunk` gives for the same data, without a second copy of it.
 */
export class FileChunkBuffer {
  /** The whole frame: 34 prefix bytes, then the data. */
  readonly frame: Buffer;
  /** Where the file bytes go: a view of `frame` after the prefix. */
  readonly data: Buffer;

  constructor(length: number) {
    checkChunkData(length);
    this.frame = Buffer.allocUnsafe(FILE_CHUNK_PREFIX + length);
    this.data = this.frame.subarray(FILE_CHUNK_PREFIX);
  }

  /**
   * Writes the prefix (length, type, flags, id, offset and the CRC-32 of `data`) and returns
   * the frame, ready to send.
   */
  seal(id: string, offset: number): Buffer {
    if (!TRANSFER_ID.test(id)) {
      throw new ProtocolError(ErrorCode.BAD_CONTROL_BODY, 'transfer id must be 32 lowercase hex');
    }
    const frame = this.frame;
    frame.writeUInt32BE(frame.length - 4, 0);
    frame[4] = FrameType.FILE_CHUNK;
    frame[5] = 0;
    frame.write(id, 6, TRANSFER_ID_SIZE, 'hex');
    writeU64(frame, offset, 22);
    frame.writeUInt32BE(crc32(this.data) >>> 0, 30);
    return frame;
  }
}
