import { isControlType, validateControlBody } from './control-bodies.js';
import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';
import {
  FRAME_HEADER_SIZE,
  FRAME_LENGTH_OVERHEAD,
  FrameType,
  isCorrelated,
  isValidDataFlags,
  TRANSFER_ID_SIZE,
} from './frame-types.js';
import type { ControlFrame, Frame } from './frames.js';
import {
  ABSOLUTE_MAX_FRAME,
  DEFAULT_MAX_CONTROL,
  DEFAULT_MAX_FRAME,
  MAX_FILE_CHUNK_DATA,
} from './limits.js';
import { checkPreface, PREFACE_SIZE } from './preface.js';
import { readU64 } from './u64.js';

/** Options of {@link FrameDecoder}. */
export interface DecoderOptions {
  /** Largest accepted `length` field (type + flags + body). Default 1 MiB, at most 16 MiB. */
  maxFrame?: number;
  /** Largest accepted JSON body of a control frame. Default 16 KiB. */
  maxControl?: number;
  /** Expect the 8-byte preface before the first frame. Default true. */
  expectPreface?: boolean;
}

/**
 * Receives each decoded frame, called with the `context` given to `push` as `this` (a handler
 * shared by many decoders needs no closure per push). Buffers in the frame may share memory with
 * the pushed chunk.
 */
export type FrameHandler<T = void> = (this: T, frame: Frame) => void;

type Handler = FrameHandler<unknown>;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const EMPTY = Buffer.alloc(0);
const CHUNK_FIELDS = TRANSFER_ID_SIZE + 8 + 4;
const U64_SIZE = 8;
// Smallest `length` of a DATA frame: type, flags and the u64 sequence.
const PLAIN_DATA_MIN_LENGTH = FRAME_LENGTH_OVERHEAD + U64_SIZE;
// A piece of a split frame this large is kept as a view of the pushed chunk, not copied: a view
// costs about 100 bytes of heap, nothing next to 16 KiB. A large frame is then copied once, into
// one buffer of its size, when it completes (before, a buffer doubled as the frame arrived: 2 MiB
// copied into 2 MiB of fresh memory per 1 MiB frame, 59 % of a receiver's time at 1 MiB).
const VIEW_MIN = 16 * 1024;

/**
 * Incremental decoder: push chunks as they arrive, get whole frames. Fed one byte at a time or a
 * megabyte at a time, it yields the same frames. It never throws on bad bytes: `push` returns the
 * {@link ProtocolError}, the decoder stops, and every later call returns the same error.
 *
 * Memory: a declared length is checked against `maxFrame` (and a control body against
 * `maxControl`) as soon as the header is in, before anything is buffered; a partial frame holds
 * only the bytes actually received, never its declared size (`retainedBytes` counts what it
 * keeps alive). Small pieces of a partial frame are copied; pieces of 16 KiB or more are kept by
 * reference until their frame completes, so the caller must not change a chunk it pushed (as a
 * socket's `data` chunks, which are never reused; frames handed to `onFrame` may also share its
 * memory).
 */
export class FrameDecoder {
  #maxFrame: number;
  readonly maxControl: number;
  #error: ProtocolError | undefined;
  #prefaceSeen: Buffer | undefined;
  // A frame split across chunks: its bytes so far, small pieces copied into one buffer of our
  // own, and once the header is in, its full size. Copying (not keeping views of the pushed
  // chunks) matters when a peer trickles a frame a byte per packet: a view costs ~100 bytes of
  // heap per byte; large pieces are kept as views (VIEW_MIN).
  #partial: Buffer = EMPTY;
  /** Bytes used in `#partial`: the frame's bytes after those in `#pieces`. */
  #copiedLength = 0;
  /**
   * Earlier parts of the frame, in order: views of large pushed pieces, and sealed copies. Made
   * when needed: an idle connection's decoder holds no array.
   */
  #pieces: Buffer[] | undefined;
  /** Memory the pieces keep alive (a view keeps its whole chunk). */
  #piecesRetained = 0;
  /** Bytes of the frame (or header) so far, pieces and copy. */
  #partialLength = 0;
  #frameSize = 0;

  constructor(options: DecoderOptions = {}) {
    this.#maxFrame = checkMaxFrame(options.maxFrame ?? DEFAULT_MAX_FRAME);
    this.maxControl = options.maxControl ?? DEFAULT_MAX_CONTROL;
    if (!(Number.isInteger(this.maxControl) && this.maxControl >= 64)) {
      throw new TypeError(`maxControl must be an integer >= 64, got ${options.maxControl}`);
    }
    if (options.expectPreface ?? true) this.#prefaceSeen = Buffer.alloc(0);
  }

  /** Largest accepted `length` field. */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  /**
   * Changes the frame limit for frames not yet started, e.g. a server keeps it at the size of a
   * HELLO until the handshake is done, so an unauthenticated peer cannot hold a large frame.
   */
  set maxFrame(value: number) {
    this.#maxFrame = checkMaxFrame(value);
  }

  /** Memory held for an incomplete frame: its buffer's capacity, at least `bufferedBytes`. */
  get retainedBytes(): number {
    return (
      Math.max(this.#partial.length, this.#copiedLength) +
      this.#piecesRetained +
      (this.#prefaceSeen?.length ?? 0)
    );
  }

  /** The error that stopped the decoder, if any. */
  get error(): ProtocolError | undefined {
    return this.#error;
  }

  /** Bytes held for a frame (or preface) not yet complete. */
  get bufferedBytes(): number {
    return this.#partialLength + (this.#prefaceSeen?.length ?? 0);
  }

  /**
   * Decodes what `chunk` completes and hands each frame to `onFrame`, in order. Returns the
   * protocol error that stopped decoding, or `undefined`. Frames before the bad bytes are still
   * delivered.
   */
  push<T = void>(
    chunk: Uint8Array,
    onFrame: FrameHandler<T>,
    context?: T,
  ): ProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    try {
      return this.#push(chunk, onFrame as Handler, context);
    } catch (cause) {
      // The handler threw mid-chunk: where the stream stands is lost, so the decoder stops
      // rather than misread what follows. The handler's error is the cause.
      return this.#fail(
        new ProtocolError(ErrorCode.HANDLER_FAILED, 'the frame handler threw', { cause }),
      );
    }
  }

  #push(chunk: Uint8Array, onFrame: Handler, context: unknown): ProtocolError | undefined {
    let buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.#prefaceSeen !== undefined) {
      const rest = this.#consumePreface(buf);
      if (rest === undefined) return this.#error;
      buf = rest;
    }
    if (this.#partialLength > 0) {
      const rest = this.#completePartial(buf, onFrame, context);
      if (rest === undefined) return this.#error;
      buf = rest;
    }
    return this.#decodeWhole(buf, onFrame, context);
  }

  /** Call at end of stream: reports a preface or frame cut short. */
  end(): ProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    if (this.#prefaceSeen !== undefined && this.#prefaceSeen.length > 0) {
      const stray = checkPreface(this.#prefaceSeen, true);
      return this.#fail(
        stray ?? new ProtocolError(ErrorCode.TRUNCATED_STREAM, 'stream ended inside the preface'),
      );
    }
    if (this.#partialLength > 0) {
      return this.#fail(
        new ProtocolError(
          ErrorCode.TRUNCATED_STREAM,
          `stream ended inside a frame (${this.#partialLength} of ${this.#frameSize || 'at least 6'} bytes)`,
        ),
      );
    }
    return undefined;
  }

  /**
   * Stops decoding for good and lets go of any partial frame at once (the connection closed:
   * its half-received frame should not live as long as the connection object does).
   */
  discard(): void {
    if (this.#error === undefined) {
      this.#fail(new ProtocolError(ErrorCode.TRUNCATED_STREAM, 'the decoder was discarded'));
    }
  }

  #fail(error: ProtocolError): ProtocolError {
    this.#error = error;
    this.#resetPartial();
    this.#prefaceSeen = undefined;
    return error;
  }

  // Returns the bytes after the preface, or undefined when the chunk ended (or failed) inside it.
  #consumePreface(buf: Buffer): Buffer | undefined {
    const seen = this.#prefaceSeen as Buffer;
    const take = Math.min(PREFACE_SIZE - seen.length, buf.length);
    const joined = Buffer.concat([seen, buf.subarray(0, take)]);
    const error = checkPreface(joined);
    if (error !== undefined) {
      this.#fail(error);
      return undefined;
    }
    if (joined.length < PREFACE_SIZE) {
      this.#prefaceSeen = joined;
      return undefined;
    }
    this.#prefaceSeen = undefined;
    return buf.subarray(take);
  }

  // Adds `buf` to the partial frame. When the frame completes, decodes it and returns the bytes
  // after it; otherwise returns undefined (waiting for more, or failed).
  #completePartial(buf: Buffer, onFrame: Handler, context: unknown): Buffer | undefined {
    let used = 0;
    if (this.#frameSize === 0) {
      // Header not yet complete: take just enough bytes to read and check it.
      used = Math.min(FRAME_HEADER_SIZE - this.#partialLength, buf.length);
      this.#keep(buf, 0, used);
      const error = this.#checkHeader(this.#partial, 0, this.#partialLength);
      if (error !== undefined) {
        this.#fail(error);
        return undefined;
      }
      if (this.#partialLength < FRAME_HEADER_SIZE) return undefined;
      this.#frameSize = 4 + this.#partial.readUInt32BE(0);
    }
    const missing = this.#frameSize - this.#partialLength;
    const take = Math.min(missing, buf.length - used);
    this.#keep(buf, used, used + take);
    if (take < missing) return undefined;
    // Complete. The frame's Buffers are views of this buffer, so the next frame gets a new one.
    const size = this.#frameSize;
    let frame = this.#partial;
    const pieces = this.#pieces;
    if (pieces !== undefined && pieces.length > 0) {
      if (this.#copiedLength > 0) pieces.push(frame.subarray(0, this.#copiedLength));
      frame = Buffer.concat(pieces, size);
    }
    this.#resetPartial();
    const error = this.#emit(frame, 0, size, onFrame, context);
    if (error !== undefined) {
      this.#fail(error);
      return undefined;
    }
    return buf.subarray(used + take);
  }

  // Copies buf[start..end) to the end of the partial frame. The first buffer is exactly what
  // arrived; later ones double, never past the frame's size (the header's 6 bytes until the
  // length is known): memory stays within twice what was received, a peer that sends one read
  // and stalls costs just that read, and each byte is copied O(1) times on average.
  // A piece of VIEW_MIN bytes or more of a frame whose size is known is kept as a view instead
  // (the copy so far is sealed before it, in order).
  #keep(buf: Buffer, start: number, end: number): void {
    const length = end - start;
    if (this.#frameSize > 0 && length >= VIEW_MIN) {
      this.#pieces ??= [];
      if (this.#copiedLength > 0) {
        this.#pieces.push(this.#partial.subarray(0, this.#copiedLength));
        this.#piecesRetained += this.#partial.length;
        this.#partial = EMPTY;
        this.#copiedLength = 0;
      }
      this.#pieces.push(buf.subarray(start, end));
      this.#piecesRetained += Math.max(length, buf.buffer.byteLength);
      this.#partialLength += length;
      return;
    }
    const needed = this.#copiedLength + length;
    if (needed > this.#partial.length) {
      const inPieces = this.#partialLength - this.#copiedLength;
      const limit = this.#frameSize > 0 ? this.#frameSize - inPieces : FRAME_HEADER_SIZE;
      const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(needed, 2 * this.#partial.length)));
      this.#partial.copy(grown, 0, 0, this.#copiedLength);
      this.#partial = grown;
    }
    buf.copy(this.#partial, this.#copiedLength, start, end);
    this.#copiedLength = needed;
    this.#partialLength += length;
  }

  #resetPartial(): void {
    this.#partial = EMPTY;
    this.#copiedLength = 0;
    this.#pieces = undefined;
    this.#piecesRetained = 0;
    this.#partialLength = 0;
    this.#frameSize = 0;
  }

  #decodeWhole(buf: Buffer, onFrame: Handler, context: unknown): ProtocolError | undefined {
    const end = buf.length;
    const maxFrame = this.#maxFrame;
    let pos = 0;
    while (end - pos >= FRAME_HEADER_SIZE) {
      const length = buf.readUInt32BE(pos);
      // Fast path for the hot case, a whole plain DATA frame (flags 0): its header needs only
      // the length checks. Every other frame goes through #checkHeader and #emit.
      if (
        buf[pos + 4] === FrameType.DATA &&
        buf[pos + 5] === 0 &&
        length >= PLAIN_DATA_MIN_LENGTH &&
        length <= maxFrame &&
        length + 4 <= end - pos
      ) {
        const seq = readU64(buf, pos + FRAME_HEADER_SIZE);
        if (seq < 0) return this.#fail(outOfRange('DATA'));
        const payload = buf.subarray(pos + FRAME_HEADER_SIZE + U64_SIZE, pos + 4 + length);
        onFrame.call(context, { type: FrameType.DATA, flags: 0, seq, requestId: 0, payload });
        pos += 4 + length;
        continue;
      }
      const error = this.#checkHeader(buf, pos, end);
      if (error !== undefined) return this.#fail(error);
      const size = 4 + length;
      if (end - pos < size) break;
      const frameError = this.#emit(buf, pos, pos + size, onFrame, context);
      if (frameError !== undefined) return this.#fail(frameError);
      pos += size;
    }
    if (pos < end) {
      // Keep the tail. Checking what header bytes there are now refuses a bad length early.
      const error = this.#checkHeader(buf, pos, end);
      if (error !== undefined) return this.#fail(error);
      this.#frameSize = end - pos >= FRAME_HEADER_SIZE ? 4 + buf.readUInt32BE(pos) : 0;
      this.#keep(buf, pos, end);
    }
    return undefined;
  }

  // Validates as much of the header at buf[pos..end) as is present: length after 4 bytes, type
  // after 5, flags after 6. Nothing is buffered for a frame this refuses.
  #checkHeader(buf: Buffer, pos: number, end: number): ProtocolError | undefined {
    const have = end - pos;
    if (have < 4) return undefined;
    const length = buf.readUInt32BE(pos);
    if (length > this.#maxFrame) {
      return new ProtocolError(
        ErrorCode.FRAME_TOO_LARGE,
        `frame length ${length} exceeds the limit of ${this.#maxFrame}`,
      );
    }
    if (length < FRAME_LENGTH_OVERHEAD) {
      return new ProtocolError(ErrorCode.BAD_FRAME_LENGTH, `frame length ${length} is below 2`);
    }
    if (have < 5) return undefined;
    const type = buf[pos + 4] as number;
    const bodyLength = length - FRAME_LENGTH_OVERHEAD;
    const sizeError = this.#checkBodySize(type, bodyLength);
    if (sizeError !== undefined) return sizeError;
    if (have < 6) return undefined;
    const flags = buf[pos + 5] as number;
    const valid = type === FrameType.DATA ? isValidDataFlags(flags) : flags === 0;
    if (!valid) {
      return new ProtocolError(
        ErrorCode.BAD_FLAGS,
        `flags 0x${flags.toString(16)} are not valid for frame type 0x${type.toString(16)}`,
      );
    }
    if (type === FrameType.DATA && isCorrelated(flags) && bodyLength < 2 * U64_SIZE) {
      return new ProtocolError(
        ErrorCode.BAD_FRAME_LENGTH,
        'correlated DATA frame shorter than 16 bytes',
      );
    }
    return undefined;
  }

  #checkBodySize(type: number, bodyLength: number): ProtocolError | undefined {
    switch (type) {
      case FrameType.DATA:
        if (bodyLength >= U64_SIZE) return undefined;
        break;
      case FrameType.ACK:
      case FrameType.PING:
      case FrameType.PONG:
        if (bodyLength === U64_SIZE) return undefined;
        break;
      case FrameType.FILE_CHUNK:
        // 1 to 256 KiB of data after the id, offset and CRC.
        if (bodyLength > CHUNK_FIELDS && bodyLength <= CHUNK_FIELDS + MAX_FILE_CHUNK_DATA) {
          return undefined;
        }
        break;
      default:
        if (!isControlType(type)) {
          return new ProtocolError(
            ErrorCode.UNKNOWN_FRAME_TYPE,
            `unknown frame type 0x${type.toString(16)}`,
          );
        }
        if (bodyLength > this.maxControl) {
          return new ProtocolError(
            ErrorCode.CONTROL_TOO_LARGE,
            `control body of ${bodyLength} bytes exceeds the limit of ${this.maxControl}`,
          );
        }
        return undefined;
    }
    return new ProtocolError(
      ErrorCode.BAD_FRAME_LENGTH,
      `body of ${bodyLength} bytes is the wrong size for frame type 0x${type.toString(16)}`,
    );
  }

  // Decodes the complete, header-checked frame at buf[start..end) and hands it over.
  #emit(
    buf: Buffer,
    start: number,
    end: number,
    onFrame: Handler,
    context: unknown,
  ): ProtocolError | undefined {
    const type = buf[start + 4] as number;
    const flags = buf[start + 5] as number;
    const body = start + FRAME_HEADER_SIZE;
    switch (type) {
      case FrameType.DATA: {
        const seq = readU64(buf, body);
        let requestId = 0;
        let payloadStart = body + U64_SIZE;
        if (isCorrelated(flags)) {
          requestId = readU64(buf, payloadStart);
          payloadStart += U64_SIZE;
        }
        if (seq < 0 || requestId < 0) return outOfRange('DATA');
        // Request ids are 1 to 2^53 - 1 (section 11): 0 would name no request.
        if (requestId === 0 && isCorrelated(flags)) {
          return new ProtocolError(ErrorCode.INTEGER_OUT_OF_RANGE, 'DATA requestId must be >= 1');
        }
        onFrame.call(context, {
          type,
          flags,
          seq,
          requestId,
          payload: buf.subarray(payloadStart, end),
        });
        return undefined;
      }
      case FrameType.ACK:
      case FrameType.PING:
      case FrameType.PONG: {
        const value = readU64(buf, body);
        if (value < 0) return outOfRange('u64');
        onFrame.call(
          context,
          type === FrameType.ACK ? { type, seq: value } : { type, stamp: value },
        );
        return undefined;
      }
      case FrameType.FILE_CHUNK: {
        const offset = readU64(buf, body + TRANSFER_ID_SIZE);
        if (offset < 0) return outOfRange('FILE_CHUNK offset');
        onFrame.call(context, {
          type,
          id: buf.toString('hex', body, body + TRANSFER_ID_SIZE),
          offset,
          crc32: buf.readUInt32BE(body + TRANSFER_ID_SIZE + U64_SIZE),
          data: buf.subarray(body + CHUNK_FIELDS, end),
        });
        return undefined;
      }
      default:
        return this.#emitControl(type, buf.subarray(body, end), onFrame, context);
    }
  }

  #emitControl(
    type: number,
    body: Buffer,
    onFrame: Handler,
    context: unknown,
  ): ProtocolError | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(body));
    } catch (cause) {
      return new ProtocolError(
        ErrorCode.BAD_CONTROL_BODY,
        `control frame 0x${type.toString(16)} body is not valid UTF-8 JSON`,
        { cause },
      );
    }
    const problem = validateControlBody(type, parsed);
    if (problem !== undefined) {
      return new ProtocolError(
        ErrorCode.BAD_CONTROL_BODY,
        `control frame 0x${type.toString(16)}: ${problem}`,
      );
    }
    onFrame.call(context, { type, body: parsed } as ControlFrame);
    return undefined;
  }
}

function outOfRange(field: string): ProtocolError {
  return new ProtocolError(ErrorCode.INTEGER_OUT_OF_RANGE, `${field} value exceeds 2^53 - 1`);
}

function checkMaxFrame(value: number): number {
  if (!(Number.isInteger(value) && value >= 64 && value <= ABSOLUTE_MAX_FRAME)) {
    throw new TypeError(
      `maxFrame must be an integer from 64 to ${ABSOLUTE_MAX_FRAME}, got ${value}`,
    );
  }
  return value;
}
