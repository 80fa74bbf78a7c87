// Shared fast-check arbitraries for the codec property tests, and the small helpers both the
// property and the split tests use to feed a decoder and compare frames.
import fc from 'fast-check';
import {
  type ControlFrame,
  DataFlag,
  type DataFrame,
  encodeFrame,
  type FileChunkFrame,
  type Frame,
  FrameDecoder,
  FrameType,
  MAX_U64_SAFE,
  PREFACE,
  type ProtocolError,
} from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// Scalars

/** u64 values over the whole range this implementation accepts (0 .. 2^53 - 1), edges included. */
export const u64: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 1, 0xffff_ffff, 0x1_0000_0000, MAX_U64_SAFE - 1, MAX_U64_SAFE),
  // Only the low 32-bit word in use.
  fc.nat(),
  // Both words in use.
  fc.integer({ min: 0x1_0000_0000, max: MAX_U64_SAFE }),
);

const u32 = fc.nat({ max: 0xffff_ffff });

/** xorshift32: cheap bytes for large payloads (fast-check would build a shrink tree per byte). */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Bytes of `length` from `lengthArb`, filled from a seed; shrinks by length. */
export function bulkBytes(lengthArb: fc.Arbitrary<number>): fc.Arbitrary<Buffer> {
  return fc.tuple(lengthArb, fc.integer()).map(([length, seed]) => pseudoRandomBytes(length, seed));
}

/** Payloads: empty, small and fully random, or up to 4 KiB. */
export const payload: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 48 }).map((bytes) => Buffer.from(bytes)),
  bulkBytes(fc.integer({ min: 0, max: 4096 })),
);

/** Any Unicode text, astral planes included, so bodies carry multi-byte UTF-8. */
const text = fc.string({ unit: 'binary', maxLength: 24 });
const hexOf = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
/** Transfer id: 32 lowercase hex characters. */
export const transferId: fc.Arbitrary<string> = hexOf(16);
const sha256 = hexOf(32);

// JSON values that survive a JSON round trip unchanged (no -0, no NaN, no __proto__ keys).
const jsonKey = text.filter((k) => k !== '__proto__');
const jsonLeaf = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null));
const jsonValue = fc.oneof(
  jsonLeaf,
  fc.array(jsonLeaf, { maxLength: 3 }),
  fc.dictionary(jsonKey, jsonLeaf, { maxKeys: 3, noNullPrototype: true }),
);

// ---------------------------------------------------------------------------------------------
// Frames

const correlatedFlags = DataFlag.REQUEST | DataFlag.RESPONSE;

/** DATA frames: plain, request, response and error response; request id only when correlated. */
export const dataFrame: fc.Arbitrary<DataFrame> = fc
  .record({
    flags: fc.constantFrom(
      0,
      DataFlag.REQUEST,
      DataFlag.RESPONSE,
      DataFlag.RESPONSE | DataFlag.ERROR,
    ),
    seq: u64,
    // Request ids are 1 to 2^53 - 1 on correlated frames.
    requestId: u64.map((id) => Math.max(id, 1)),
    payload,
  })
  .map(({ flags, seq, requestId, payload }) => ({
    type: FrameType.DATA,
    flags,
    seq,
    requestId: flags & correlatedFlags ? requestId : 0,
    payload,
  }));

export const fileChunkFrame: fc.Arbitrary<FileChunkFrame> = fc.record({
  type: fc.constant(FrameType.FILE_CHUNK),
  id: transferId,
  offset: u64,
  crc32: u32,
  // A chunk carries 1 to 256 KiB.
  data: payload.filter((data) => data.length > 0),
});

const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }, optional: (keyof T)[] = []) =>
  fc.record(model, {
    requiredKeys: (Object.keys(model) as (keyof T)[]).filter((k) => !optional.includes(k)),
    noNullPrototype: true,
  });

// Unknown fields are allowed (forward compatibility), so bodies sometimes carry one.
function control<T extends ControlFrame['type']>(
  type: T,
  body: fc.Arbitrary<object>,
): fc.Arbitrary<ControlFrame> {
  return fc
    .tuple(body, fc.option(jsonValue, { nil: undefined, freq: 4 }))
    .map(
      ([b, extra]) =>
        ({ type, body: extra === undefined ? b : { ...b, futureField: extra } }) as ControlFrame,
    );
}

/** Every control frame type, with bodies that pass validation. */
export const controlFrame: fc.Arbitrary<ControlFrame> = fc.oneof(
  control(
    FrameType.CHALLENGE,
    record({ nonce: text, auth: fc.array(text, { maxLength: 3 }), maxFrame: u64 }),
  ),
  control(
    FrameType.HELLO,
    record(
      {
        versions: fc.array(u64, { maxLength: 3 }),
        clientId: text,
        resumeToken: text,
        delivered: u64,
        acked: u64,
        maxFrame: u64,
        features: fc.array(text, { maxLength: 3 }),
        auth: record({ method: text, proof: text, credentials: jsonValue }, [
          'proof',
          'credentials',
        ]),
      },
      ['resumeToken', 'features', 'auth'],
    ),
  ),
  control(
    FrameType.WELCOME,
    record({
      version: u64,
      sessionId: text,
      resumeToken: text,
      resumed: fc.boolean(),
      delivered: u64,
      acked: u64,
      maxFrame: u64,
      pingIntervalMs: u64,
      evictAfterMs: u64,
      sessionTtlMs: u64,
    }),
  ),
  control(
    FrameType.ERROR,
    record({ code: text, message: text, retryAfterMs: u64 }, ['retryAfterMs']),
  ),
  control(FrameType.GOAWAY, record({ reason: text, retryAfterMs: u64 })),
  control(FrameType.FILE_OFFER, record({ id: transferId, name: text, size: u64 })),
  control(FrameType.FILE_ACCEPT, record({ id: transferId, offset: u64 })),
  control(FrameType.FILE_END, record({ id: transferId, sha256 })),
  control(FrameType.FILE_COMPLETE, record({ id: transferId, size: u64, sha256 })),
  control(
    FrameType.FILE_FAILED,
    record({ id: transferId, code: text, message: text, retryable: fc.boolean() }),
  ),
  control(FrameType.FILE_CANCEL, record({ id: transferId, reason: text })),
  control(FrameType.FILE_STATUS, record({ id: transferId, offset: u64 })),
);

/** Any valid frame, weighted towards the hot frame types. */
export const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 4, arbitrary: dataFrame },
  { weight: 1, arbitrary: u64.map((seq): Frame => ({ type: FrameType.ACK, seq })) },
  { weight: 1, arbitrary: u64.map((stamp): Frame => ({ type: FrameType.PING, stamp })) },
  { weight: 1, arbitrary: u64.map((stamp): Frame => ({ type: FrameType.PONG, stamp })) },
  { weight: 2, arbitrary: fileChunkFrame },
  { weight: 3, arbitrary: controlFrame },
);

export const frames: fc.Arbitrary<Frame[]> = fc.array(frame, { maxLength: 12 });

// ---------------------------------------------------------------------------------------------
// Noise: bytes a broken or hostile peer might send.

const controlTypes = [
  FrameType.CHALLENGE,
  FrameType.HELLO,
  FrameType.WELCOME,
  FrameType.ERROR,
  FrameType.GOAWAY,
  FrameType.FILE_OFFER,
  FrameType.FILE_ACCEPT,
  FrameType.FILE_END,
  FrameType.FILE_COMPLETE,
  FrameType.FILE_FAILED,
  FrameType.FILE_CANCEL,
  FrameType.FILE_STATUS,
];
const anyType = fc.oneof(fc.constantFrom(...Object.values(FrameType)), fc.nat({ max: 255 }));
const anyFlags = fc.oneof(fc.nat({ max: 7 }), fc.nat({ max: 255 }));

function withHeader(length: number, type: number, flags: number, body: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(6);
  head.writeUInt32BE(length, 0);
  head[4] = type;
  head[5] = flags;
  return Buffer.concat([head, body]);
}

/**
 * One piece of a hostile stream, for a decoder whose limit is `maxFrame`: a valid frame, random
 * bytes, a random header (any length, type and flags) with a random body, a frame that nearly
 * fills the limit, a valid frame with one byte changed, or a control frame whose body is not
 * what its type expects.
 */
export function noisePiece(maxFrame: number): fc.Arbitrary<Buffer> {
  const length = fc.oneof(
    fc.nat({ max: 64 }),
    fc.integer({ min: maxFrame - 8, max: maxFrame + 8 }),
    u32,
  );
  return fc.oneof(
    frame.map(encodeFrame),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    bulkBytes(fc.integer({ min: 0, max: maxFrame + 64 })),
    fc
      .tuple(length, anyType, anyFlags, fc.uint8Array({ maxLength: 80 }))
      .map(([l, type, flags, body]) => withHeader(l, type, flags, body)),
    fc
      .tuple(
        fc.integer({ min: maxFrame - 8, max: maxFrame }),
        fc.constantFrom(FrameType.DATA, FrameType.FILE_CHUNK),
        bulkBytes(fc.integer({ min: 0, max: maxFrame + 8 })),
      )
      .map(([l, type, body]) => withHeader(l, type, 0, body)),
    fc.tuple(frame, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([f, at, xor]) => {
      const bytes = encodeFrame(f);
      const i = at % bytes.length;
      bytes[i] = (bytes[i] as number) ^ xor;
      return bytes;
    }),
    fc
      .tuple(
        fc.constantFrom(...controlTypes),
        fc.oneof(
          fc.json().map((json) => Buffer.from(json)),
          fc.string({ unit: 'binary' }).map((s) => Buffer.from(s)),
          fc.uint8Array({ maxLength: 40 }),
          controlFrame.map((f) => encodeFrame(f).subarray(6)),
        ),
      )
      .map(([type, body]) => withHeader(body.length + 2, type, 0, body)),
  );
}

// ---------------------------------------------------------------------------------------------
// Chunking: how a byte stream is cut into the pieces handed to `push`.

/** A plan to cut a stream: at given positions, or into pieces of a fixed size. */
export type Chunking =
  | { kind: 'cuts'; cuts: number[]; asUint8Array: boolean }
  | { kind: 'size'; size: number; asUint8Array: boolean };

export const chunking: fc.Arbitrary<Chunking> = fc.oneof(
  fc.record({
    kind: fc.constant('cuts' as const),
    // Reduced modulo the stream length + 1; repeated cuts give empty pushes.
    cuts: fc.array(fc.nat(), { maxLength: 16 }),
    asUint8Array: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('size' as const),
    size: fc.oneof(
      fc.constant(1),
      fc.integer({ min: 1, max: 16 }),
      fc.integer({ min: 1, max: 512 }),
    ),
    asUint8Array: fc.boolean(),
  }),
);

/** Cuts `bytes` following `plan`. Pieces are views of `bytes`, as a socket's chunks would be. */
export function rechunk(bytes: Buffer, plan: Chunking): Uint8Array[] {
  const positions: number[] = [];
  if (plan.kind === 'cuts') {
    positions.push(...plan.cuts.map((c) => c % (bytes.length + 1)));
  } else {
    for (let p = plan.size; p < bytes.length; p += plan.size) positions.push(p);
  }
  positions.sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const p of [...positions, bytes.length]) {
    const piece = bytes.subarray(start, p);
    pieces.push(
      plan.asUint8Array ? new Uint8Array(piece.buffer, piece.byteOffset, piece.length) : piece,
    );
    start = p;
  }
  return pieces;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** The preface followed by every frame, encoded. */
export function encodeStream(list: readonly Frame[], preface = true): Buffer {
  return Buffer.concat([...(preface ? [PREFACE] : []), ...list.map(encodeFrame)]);
}

/** A frame with its Buffers as hex, so frames compare by content with `toEqual`. */
export function normalize(f: Frame): unknown {
  switch (f.type) {
    case FrameType.DATA:
      return { ...f, payload: f.payload.toString('hex') };
    case FrameType.FILE_CHUNK:
      return { ...f, data: f.data.toString('hex') };
    default:
      return f;
  }
}

/** What decoding a list of pieces gave. */
export interface Decoded {
  frames: Frame[];
  /** The error `push` or `end` returned, if any. */
  error: ProtocolError | undefined;
  /** `bufferedBytes` after each push. */
  buffered: number[];
}

/** Pushes every piece (stopping at the first error), then calls `end`. */
export function decodePieces(
  pieces: readonly Uint8Array[],
  decoder: FrameDecoder = new FrameDecoder(),
): Decoded {
  const frames: Frame[] = [];
  const buffered: number[] = [];
  const onFrame = (f: Frame) => {
    frames.push(f);
  };
  for (const piece of pieces) {
    const error = decoder.push(piece, onFrame);
    buffered.push(decoder.bufferedBytes);
    if (error !== undefined) return { frames, error, buffered };
  }
  return { frames, error: decoder.end(), buffered };
}
