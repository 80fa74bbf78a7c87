import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DataFlag,
  ErrorCode,
  encodeData,
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameType,
  isErrorCode,
  PREFACE,
  ProtocolError,
} from '../src/index.js';
import {
  chunking,
  dataFrame,
  decodePieces,
  encodeStream,
  fileChunkFrame,
  frame,
  frames,
  noisePiece,
  normalize,
  payload,
  pseudoRandomBytes,
  rechunk,
  u64,
} from './arbitraries.js';

// fast-check seeds each run at random and prints the seed and the shrunk counterexample when a
// property fails; replay one with `fc.assert(..., { seed, path })`.
// Runs per property; together well over 10,000 cases per `pnpm test`.
const RUNS = {
  roundTrip: 3000,
  reencode: 1500,
  noise: 3000,
  trailingNoise: 1500,
  tooLarge: 1500,
  u64Range: 1000,
  dataFlags: 500,
};
const TIMEOUT = 60_000;
const SMALL_MAX_FRAME = 4096;
const byte = fc.nat({ max: 255 });

// A property fails by throwing; plain checks keep the per-push cost low.
function check(ok: boolean, message: () => string): void {
  if (!ok) throw new Error(message());
}

function checkResult(result: unknown, where: string): void {
  if (result === undefined) return;
  check(
    result instanceof ProtocolError && isErrorCode(result.code),
    () => `${where} returned ${String(result)}, not a ProtocolError with a known code`,
  );
}

/**
 * Whatever bytes it came from, a delivered frame is one the encoder accepts (u64 fields in range,
 * valid flags, a hex transfer id) and that decodes back to itself.
 */
function checkDelivered(f: Frame): void {
  const bytes = encodeFrame(f);
  const again = decodePieces([bytes], new FrameDecoder({ expectPreface: false }));
  check(
    again.error === undefined && again.frames.length === 1,
    () => `re-encoded frame did not decode: ${again.error?.code}`,
  );
  check(encodeFrame(again.frames[0] as Frame).equals(bytes), () => 'frame changed in a round trip');
}

/**
 * Pushes every piece, checking after each: the result is undefined or a ProtocolError with a
 * known code, an error sticks, and `bufferedBytes` never exceeds what was pushed or the limit.
 * An exception from push or end fails the property as it is.
 */
function feedHostile(decoder: FrameDecoder, pieces: readonly Uint8Array[]) {
  const decoded: Frame[] = [];
  const onFrame = (f: Frame) => {
    checkDelivered(f);
    decoded.push(f);
  };
  let error: ProtocolError | undefined;
  let pushed = 0;
  for (const piece of pieces) {
    const result = decoder.push(piece, onFrame);
    pushed += piece.length;
    checkResult(result, 'push');
    if (error !== undefined) check(result === error, () => 'a later push returned another error');
    error ??= result;
    const held = decoder.bufferedBytes;
    check(held <= pushed, () => `buffered ${held} of ${pushed} pushed bytes`);
    check(held <= decoder.maxFrame + 6, () => `buffered ${held} > maxFrame + 6`);
  }
  const end = decoder.end();
  checkResult(end, 'end');
  if (error !== undefined) check(end === error, () => 'end returned another error');
  check(decoder.bufferedBytes === 0, () => 'bytes held after end()');
  return { frames: decoded, error: error ?? end };
}

describe('decoder - properties', () => {
  it(
    'random frames decode to themselves however the stream is cut',
    () => {
      fc.assert(
        fc.property(frames, chunking, fc.boolean(), (list, plan, preface) => {
          const bytes = encodeStream(list, preface);
          const pieces = rechunk(bytes, plan);
          const result = decodePieces(pieces, new FrameDecoder({ expectPreface: preface }));
          expect(result.error).toBeUndefined();
          expect(result.frames.map(normalize)).toEqual(list.map(normalize));
          let pushed = 0;
          pieces.forEach((piece, i) => {
            pushed += piece.length;
            check((result.buffered[i] as number) <= pushed, () => 'buffered more than pushed');
          });
        }),
        { numRuns: RUNS.roundTrip },
      );
    },
    TIMEOUT,
  );

  it(
    'encoding the decoded frames gives back the same bytes',
    () => {
      fc.assert(
        fc.property(frames, chunking, (list, plan) => {
          const bytes = encodeStream(list);
          const result = decodePieces(rechunk(bytes, plan));
          expect(result.error).toBeUndefined();
          const again = encodeStream(result.frames);
          check(again.equals(bytes), () => `re-encoded ${again.toString('hex')}`);
        }),
        { numRuns: RUNS.reencode },
      );
    },
    TIMEOUT,
  );

  it(
    'random bytes, with or without a preface, only ever give a ProtocolError',
    () => {
      const start = fc.oneof(
        fc.constant({ expectPreface: false, head: Buffer.alloc(0) }),
        fc.constant({ expectPreface: true, head: PREFACE }),
        fc.constant({ expectPreface: true, head: Buffer.alloc(0) }),
        fc.tuple(fc.nat({ max: 7 }), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
          const head = Buffer.from(PREFACE);
          head[at] = (head[at] as number) ^ xor;
          return { expectPreface: true, head };
        }),
      );
      fc.assert(
        fc.property(
          start,
          fc.array(noisePiece(SMALL_MAX_FRAME), { minLength: 1, maxLength: 8 }),
          chunking,
          fc.constantFrom(64, 1024, 16 * 1024),
          ({ expectPreface, head }, noise, plan, maxControl) => {
            const decoder = new FrameDecoder({
              expectPreface,
              maxFrame: SMALL_MAX_FRAME,
              maxControl,
            });
            feedHostile(decoder, rechunk(Buffer.concat([head, ...noise]), plan));
          },
        ),
        { numRuns: RUNS.noise },
      );
    },
    TIMEOUT,
  );

  it(
    'random bytes after valid frames leave those frames intact',
    () => {
      fc.assert(
        fc.property(
          frames,
          fc.array(noisePiece(SMALL_MAX_FRAME), { minLength: 1, maxLength: 4 }),
          chunking,
          (list, noise, plan) => {
            // Valid frames that fit the small limit.
            const valid = list.filter((f) => encodeFrame(f).length - 4 <= SMALL_MAX_FRAME);
            const bytes = Buffer.concat([encodeStream(valid), ...noise]);
            const decoder = new FrameDecoder({ maxFrame: SMALL_MAX_FRAME });
            const result = feedHostile(decoder, rechunk(bytes, plan));
            const first = result.frames.slice(0, valid.length).map(normalize);
            expect(first).toEqual(valid.map(normalize));
          },
        ),
        { numRuns: RUNS.trailingNoise },
      );
    },
    TIMEOUT,
  );

  it(
    'a declared length above maxFrame is refused before any body byte is buffered',
    () => {
      const maxFrame = fc.oneof(
        fc.constantFrom(64, SMALL_MAX_FRAME, 1 << 20, 16 << 20),
        fc.integer({ min: 64, max: 8192 }),
        fc.integer({ min: 64, max: 16 << 20 }),
      );
      fc.assert(
        fc.property(
          maxFrame,
          fc.array(frame, { maxLength: 4 }),
          // How far above the limit: just above, or anywhere up to 2^32 - 1.
          fc.oneof(fc.nat({ max: 16 }), fc.nat()),
          fc.oneof(fc.constantFrom(FrameType.DATA, FrameType.FILE_CHUNK, FrameType.HELLO), byte),
          fc.oneof(fc.constant(0), byte),
          // The body: a few random bytes, or (for a small limit) the whole declared body and more.
          fc.tuple(fc.boolean(), fc.nat({ max: 256 }), fc.integer()),
          chunking,
          (limit, list, above, type, flags, [whole, bodyLength, seed], plan) => {
            const valid = list.filter((f) => encodeFrame(f).length - 4 <= limit);
            const prefix = encodeStream(valid);
            const length = limit + 1 + (above % (0xffff_ffff - limit));
            const head = Buffer.from([0, 0, 0, 0, type, flags]);
            head.writeUInt32BE(length, 0);
            const size = whole && length < 10_000 ? length - 2 + bodyLength : bodyLength;
            const body = pseudoRandomBytes(size, seed);
            const pieces = rechunk(Buffer.concat([prefix, head, body]), plan);

            const decoder = new FrameDecoder({ maxFrame: limit });
            const decoded: Frame[] = [];
            const lengthIn = prefix.length + 4;
            let pushed = 0;
            for (const piece of pieces) {
              const result = decoder.push(piece, (f) => decoded.push(f));
              pushed += piece.length;
              if (pushed < lengthIn) {
                check(result === undefined, () => `error ${result?.code} before the length`);
                check(decoder.bufferedBytes < limit + 4, () => 'held a whole frame');
                continue;
              }
              // The push that completes the length field is refused, and nothing is kept.
              check(result?.code === ErrorCode.FRAME_TOO_LARGE, () => `got ${result?.code}`);
              check(decoder.bufferedBytes === 0, () => `held ${decoder.bufferedBytes} bytes`);
              break;
            }
            expect(decoded.map(normalize)).toEqual(valid.map(normalize));
            expect(decoder.error?.code).toBe(ErrorCode.FRAME_TOO_LARGE);
          },
        ),
        { numRuns: RUNS.tooLarge },
      );
    },
    TIMEOUT,
  );

  it(
    'a u64 field above 2^53 - 1 is refused, and 2^53 - 1 itself is accepted',
    () => {
      // Offsets of the u64 fields, from the start of each frame.
      const u64Fields = fc.oneof(
        dataFrame.map((f) => ({ f: f as Frame, at: 6 })),
        dataFrame
          .filter((f) => (f.flags & (DataFlag.REQUEST | DataFlag.RESPONSE)) !== 0)
          .map((f) => ({ f: f as Frame, at: 14 })),
        fc
          .tuple(fc.constantFrom(FrameType.ACK, FrameType.PING, FrameType.PONG), u64)
          .map(([type, value]) => ({
            f: (type === FrameType.ACK ? { type, seq: value } : { type, stamp: value }) as Frame,
            at: 6,
          })),
        fileChunkFrame.map((f) => ({ f: f as Frame, at: 22 })),
      );
      fc.assert(
        fc.property(
          u64Fields,
          // High word 2^21 .. 2^32 - 1 makes the value 2^53 or more.
          fc.integer({ min: 0x20_0000, max: 0xffff_ffff }),
          fc.nat({ max: 0xffff_ffff }),
          chunking,
          ({ f, at }, high, low, plan) => {
            const bytes = encodeFrame(f);
            bytes.writeUInt32BE(high, at);
            bytes.writeUInt32BE(low, at + 4);
            const tooBig = decodePieces(rechunk(Buffer.concat([PREFACE, bytes]), plan));
            expect(tooBig.error?.code).toBe(ErrorCode.INTEGER_OUT_OF_RANGE);
            expect(tooBig.frames).toEqual([]);

            bytes.writeUInt32BE(0x1f_ffff, at);
            bytes.writeUInt32BE(0xffff_ffff, at + 4);
            const largest = decodePieces(rechunk(Buffer.concat([PREFACE, bytes]), plan));
            expect(largest.error).toBeUndefined();
            expect(encodeStream(largest.frames).equals(Buffer.concat([PREFACE, bytes]))).toBe(true);
          },
        ),
        { numRuns: RUNS.u64Range },
      );
    },
    TIMEOUT,
  );

  it(
    'encodeData accepts exactly the DATA flags the decoder accepts',
    () => {
      fc.assert(
        fc.property(byte, u64, u64, payload, (flags, seq, requestId, body) => {
          let bytes: Buffer;
          try {
            bytes = encodeData(seq, body, flags, requestId);
          } catch (error) {
            // Refused locally: the decoder must refuse the same frame with the same code.
            expect(error).toBeInstanceOf(ProtocolError);
            const { code } = error as ProtocolError;
            if (code === ErrorCode.INTEGER_OUT_OF_RANGE) {
              // A correlated frame with request id 0.
              expect(requestId).toBe(0);
              const frame = Buffer.alloc(22);
              frame.writeUInt32BE(18, 0);
              frame[4] = FrameType.DATA;
              frame[5] = flags;
              frame.writeUInt32BE(seq % 2 ** 32, 10);
              const decoder = new FrameDecoder({ expectPreface: false });
              expect(decoder.push(frame, () => {})?.code).toBe(code);
              return;
            }
            expect(code).toBe(ErrorCode.BAD_FLAGS);
            const head = Buffer.from([0, 0, 0, 18, FrameType.DATA, flags]);
            const decoder = new FrameDecoder({ expectPreface: false });
            expect(decoder.push(head, () => {})?.code).toBe(ErrorCode.BAD_FLAGS);
            return;
          }
          const result = decodePieces([bytes], new FrameDecoder({ expectPreface: false }));
          expect(result.error).toBeUndefined();
          expect(result.frames.map(normalize)).toEqual([
            normalize({
              type: FrameType.DATA,
              flags,
              seq,
              requestId: flags & (DataFlag.REQUEST | DataFlag.RESPONSE) ? requestId : 0,
              payload: body,
            }),
          ]);
        }),
        { numRuns: RUNS.dataFlags },
      );
    },
    TIMEOUT,
  );
});
