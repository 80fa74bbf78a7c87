import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  crc32,
  DataFlag,
  ErrorCode,
  encodeAck,
  encodeChallenge,
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
  encodeGoaway,
  encodeHello,
  encodePing,
  encodePong,
  encodeWelcome,
  type Frame,
  FrameDecoder,
  FrameType,
  MAX_U64_SAFE,
  PREFACE,
  ProtocolError,
} from '../src/index.js';
import { decodePieces, normalize } from './arbitraries.js';

const ID = '00112233445566778899aabbccddeeff';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const fileBytes = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 7) & 0xff));
const bigPayload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 13) & 0xff));

// Every frame type, each encoded by its own encoder, next to the frame the decoder must yield.
const cases: { frame: Frame; bytes: Buffer }[] = [
  {
    frame: {
      type: FrameType.CHALLENGE,
      body: { nonce: 'bm9uY2Ugbm9uY2U=', auth: ['hmac-sha256'], maxFrame: 1 << 20 },
    },
    bytes: encodeChallenge({ nonce: 'bm9uY2Ugbm9uY2U=', auth: ['hmac-sha256'], maxFrame: 1 << 20 }),
  },
  {
    frame: {
      type: FrameType.HELLO,
      body: {
        versions: [1],
        clientId: 'client-ü-😀',
        resumeToken: 'tok',
        delivered: 41,
        acked: 2 ** 40,
        maxFrame: 1 << 20,
        features: ['files'],
        auth: { method: 'hmac-sha256', proof: 'cHJvb2Y=' },
      },
    },
    bytes: encodeHello({
      versions: [1],
      clientId: 'client-ü-😀',
      resumeToken: 'tok',
      delivered: 41,
      acked: 2 ** 40,
      maxFrame: 1 << 20,
      features: ['files'],
      auth: { method: 'hmac-sha256', proof: 'cHJvb2Y=' },
    }),
  },
  {
    frame: {
      type: FrameType.WELCOME,
      body: {
        version: 1,
        sessionId: 's-1',
        resumeToken: 'secret',
        resumed: false,
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
        pingIntervalMs: 5000,
        evictAfterMs: 15000,
        sessionTtlMs: 120000,
      },
    },
    bytes: encodeWelcome({
      version: 1,
      sessionId: 's-1',
      resumeToken: 'secret',
      resumed: false,
      delivered: 0,
      acked: 0,
      maxFrame: 1 << 20,
      pingIntervalMs: 5000,
      evictAfterMs: 15000,
      sessionTtlMs: 120000,
    }),
  },
  data(1, 0, 0, Buffer.from('hello')),
  data(2, DataFlag.REQUEST, 7, Buffer.from('{"op":"sum","args":[1,2]}')),
  data(3, DataFlag.RESPONSE, 2 ** 32, Buffer.from('3')),
  data(
    4,
    DataFlag.RESPONSE | DataFlag.ERROR,
    8,
    Buffer.from('{"code":"REQUEST_FAILED","message":"no"}'),
  ),
  data(5, 0, 0, Buffer.alloc(0)),
  data(MAX_U64_SAFE, DataFlag.REQUEST, MAX_U64_SAFE, bigPayload),
  { frame: { type: FrameType.ACK, seq: 5 }, bytes: encodeAck(5) },
  {
    frame: { type: FrameType.PING, stamp: 1_700_000_000_123 },
    bytes: encodePing(1_700_000_000_123),
  },
  {
    frame: { type: FrameType.PONG, stamp: 1_700_000_000_123 },
    bytes: encodePong(1_700_000_000_123),
  },
  {
    frame: {
      type: FrameType.FILE_OFFER,
      body: { id: ID, name: 'a b.txt', size: 200 },
    },
    bytes: encodeFileOffer({ id: ID, name: 'a b.txt', size: 200 }),
  },
  {
    frame: { type: FrameType.FILE_ACCEPT, body: { id: ID, offset: 0 } },
    bytes: encodeFileAccept({ id: ID, offset: 0 }),
  },
  {
    frame: {
      type: FrameType.FILE_CHUNK,
      id: ID,
      offset: 0,
      crc32: crc32(fileBytes),
      data: fileBytes,
    },
    bytes: encodeFileChunk(ID, 0, crc32(fileBytes), fileBytes),
  },
  {
    frame: {
      type: FrameType.FILE_CHUNK,
      id: ID,
      offset: 200,
      crc32: crc32(Buffer.from([0])),
      data: Buffer.from([0]),
    },
    bytes: encodeFileChunk(ID, 200, crc32(Buffer.from([0])), Buffer.from([0])),
  },
  {
    frame: { type: FrameType.FILE_STATUS, body: { id: ID, offset: 200 } },
    bytes: encodeFileStatus({ id: ID, offset: 200 }),
  },
  {
    frame: { type: FrameType.FILE_END, body: { id: ID, sha256: SHA } },
    bytes: encodeFileEnd({ id: ID, sha256: SHA }),
  },
  {
    frame: { type: FrameType.FILE_COMPLETE, body: { id: ID, size: 200, sha256: SHA } },
    bytes: encodeFileComplete({ id: ID, size: 200, sha256: SHA }),
  },
  {
    frame: {
      type: FrameType.FILE_FAILED,
      body: { id: ID, code: 'DISK_FULL', message: 'no space', retryable: true },
    },
    bytes: encodeFileFailed({ id: ID, code: 'DISK_FULL', message: 'no space', retryable: true }),
  },
  {
    frame: { type: FrameType.FILE_CANCEL, body: { id: ID, reason: 'user' } },
    bytes: encodeFileCancel({ id: ID, reason: 'user' }),
  },
  {
    frame: {
      type: FrameType.ERROR,
      body: { code: 'SEQUENCE_GAP', message: 'gap', retryAfterMs: 100 },
    },
    bytes: encodeError({ code: 'SEQUENCE_GAP', message: 'gap', retryAfterMs: 100 }),
  },
  {
    frame: { type: FrameType.GOAWAY, body: { reason: 'draining', retryAfterMs: 2500 } },
    bytes: encodeGoaway({ reason: 'draining', retryAfterMs: 2500 }),
  },
];

function data(seq: number, flags: number, requestId: number, payload: Buffer) {
  return {
    frame: { type: FrameType.DATA, flags, seq, requestId, payload } satisfies Frame,
    bytes: encodeData(seq, payload, flags, requestId),
  };
}

const stream = Buffer.concat([PREFACE, ...cases.map((c) => c.bytes)]);
const expected = cases.map((c) => normalize(c.frame));
const expectedJson = JSON.stringify(expected);
// Offsets where the preface or a frame ends: the only places the decoder holds nothing.
const boundaries = [0];
for (const c of [{ bytes: PREFACE }, ...cases]) {
  boundaries.push((boundaries.at(-1) as number) + c.bytes.length);
}

// Checks one way of cutting the stream; compares cheaply, and with a diff only on a mismatch.
function expectDecodes(pieces: Uint8Array[]): void {
  const { frames, error, buffered } = decodePieces(pieces);
  expect(error).toBeUndefined();
  const got = frames.map(normalize);
  if (JSON.stringify(got) !== expectedJson) expect(got).toEqual(expected);
  // What stays buffered is exactly what was pushed past the last complete frame.
  let pushed = 0;
  pieces.forEach((piece, i) => {
    pushed += piece.length;
    const lastBoundary = boundaries.filter((b) => b <= pushed).at(-1) as number;
    if (buffered[i] !== pushed - lastBoundary) {
      expect({ piece: i, buffered: buffered[i] }).toEqual({
        piece: i,
        buffered: pushed - lastBoundary,
      });
    }
  });
}

describe('decoder - splits', () => {
  it('the stream holds every frame type', () => {
    expect(new Set(cases.map((c) => c.frame.type))).toEqual(new Set(Object.values(FrameType)));
    expect(stream.length).toBeGreaterThan(1000);
  });

  it('decodes the stream pushed whole', () => {
    expectDecodes([stream]);
  });

  it('decodes the stream split in two at every point', () => {
    for (let i = 0; i <= stream.length; i++) {
      expectDecodes([stream.subarray(0, i), stream.subarray(i)]);
    }
  });

  it('decodes the stream pushed one byte at a time', () => {
    const pieces = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expectDecodes(pieces);
  });

  it('decodes the stream pushed as Uint8Array views, one byte at a time', () => {
    const copy = new Uint8Array(stream);
    expectDecodes(Array.from({ length: copy.length }, (_, i) => copy.subarray(i, i + 1)));
  });

  it('decodes the stream split in three at a sample of point pairs', () => {
    // Every pair among the frame boundaries and their neighbours, plus a stride over the rest.
    const points = new Set<number>();
    for (const b of boundaries) for (const d of [-1, 0, 1]) points.add(b + d);
    for (let p = 0; p <= stream.length; p += 29) points.add(p);
    const sorted = [...points].filter((p) => p >= 0 && p <= stream.length).sort((a, b) => a - b);
    let pairs = 0;
    for (const [n, i] of sorted.entries()) {
      for (const j of sorted.slice(n)) {
        expectDecodes([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
        pairs++;
      }
    }
    expect(pairs).toBeGreaterThan(5000);
  });
});

describe('decoder - errors and limits', () => {
  const unknownType = Buffer.from([0, 0, 0, 2, 0x7f, 0]);

  it('keeps returning the same error after one', () => {
    const decoder = new FrameDecoder({ expectPreface: false });
    const error = decoder.push(unknownType, () => {});
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error?.code).toBe(ErrorCode.UNKNOWN_FRAME_TYPE);
    const later: Frame[] = [];
    expect(decoder.push(encodeAck(1), (f) => later.push(f))).toBe(error);
    expect(decoder.push(Buffer.alloc(0), (f) => later.push(f))).toBe(error);
    expect(decoder.end()).toBe(error);
    expect(decoder.error).toBe(error);
    expect(later).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('keeps returning the same preface error', () => {
    const decoder = new FrameDecoder();
    const error = decoder.push(Buffer.from('GET / HTTP/1.1\r\n'), () => {});
    expect(error?.code).toBe(ErrorCode.PREFACE_HTTP);
    expect(decoder.push(PREFACE, () => {})).toBe(error);
    expect(decoder.end()).toBe(error);
  });

  it('delivers the frames before bad bytes, whole or byte by byte', () => {
    const good = Buffer.concat([PREFACE, ...cases.slice(0, 6).map((c) => c.bytes)]);
    const bad = Buffer.concat([good, unknownType, encodeAck(9)]);
    const whole = decodePieces([bad]);
    const bytewise = decodePieces(Array.from(bad, (_, i) => bad.subarray(i, i + 1)));
    for (const result of [whole, bytewise]) {
      expect(result.error?.code).toBe(ErrorCode.UNKNOWN_FRAME_TYPE);
      expect(result.frames.map(normalize)).toEqual(expected.slice(0, 6));
    }
    // Byte by byte, the error comes with the type byte, before the flags byte is in.
    expect(bytewise.buffered.length).toBe(good.length + 5);
  });

  it('never buffers more than was pushed', () => {
    const decoder = new FrameDecoder();
    let pushed = 0;
    for (let i = 0; i < stream.length; i += 5) {
      const piece = stream.subarray(i, i + 5);
      pushed += piece.length;
      expect(decoder.push(piece, () => {})).toBeUndefined();
      expect(decoder.bufferedBytes).toBeLessThanOrEqual(pushed);
      expect(decoder.bufferedBytes).toBeLessThan(400);
    }
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('holds only the received bytes of a partial frame, not its declared 1 MiB', () => {
    // Header: length 1 MiB (the default limit), DATA, no flags; then 4 body bytes.
    const head = Buffer.from([0, 0x10, 0, 0, FrameType.DATA, 0, 1, 2, 3, 4]);
    const before = process.memoryUsage().arrayBuffers;
    const decoders = Array.from({ length: 64 }, () => new FrameDecoder({ expectPreface: false }));
    for (const decoder of decoders) {
      expect(decoder.push(Buffer.from(head), () => {})).toBeUndefined();
      expect(decoder.bufferedBytes).toBe(10);
    }
    // 64 decoders that each reserved the declared size would hold 64 MiB.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
    expect(decoders[0]?.end()?.code).toBe(ErrorCode.TRUNCATED_STREAM);
  });

  it('costs about the frame size in memory when a frame trickles in one byte at a time', () => {
    // A peer can send one byte per TCP segment; each push must not cost a Buffer object per byte.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const frame = encodeData(1, Buffer.alloc(256 * 1024 - 16, 0x5a));
    const decoder = new FrameDecoder({ expectPreface: false });
    gc();
    const before = process.memoryUsage();
    for (let i = 0; i < frame.length - 1; i++) {
      decoder.push(frame.subarray(i, i + 1), () => {});
    }
    gc();
    const after = process.memoryUsage();
    const grown = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
    expect(decoder.bufferedBytes).toBe(frame.length - 1);
    // Views of each one-byte push would cost ~100 bytes each: 27 MB here. Allow for GC noise.
    expect(grown).toBeLessThan(8 * frame.length);
    const got: Frame[] = [];
    expect(decoder.push(frame.subarray(frame.length - 1), (f) => got.push(f))).toBeUndefined();
    expect(got.map(normalize)).toEqual([
      normalize({
        type: FrameType.DATA,
        flags: 0,
        seq: 1,
        requestId: 0,
        payload: frame.subarray(14),
      }),
    ]);
  });

  it('end() on a frame boundary returns undefined', () => {
    const whole = new FrameDecoder();
    expect(whole.push(stream, () => {})).toBeUndefined();
    expect(whole.end()).toBeUndefined();

    const prefaceOnly = new FrameDecoder();
    expect(prefaceOnly.push(PREFACE, () => {})).toBeUndefined();
    expect(prefaceOnly.end()).toBeUndefined();

    expect(new FrameDecoder({ expectPreface: false }).end()).toBeUndefined();
  });

  it('end() inside the preface or a frame reports a truncated stream', () => {
    for (const cut of [1, 7, 9, 13, 14, stream.length - 1]) {
      const decoder = new FrameDecoder();
      expect(decoder.push(stream.subarray(0, cut), () => {})).toBeUndefined();
      expect(decoder.end()?.code).toBe(ErrorCode.TRUNCATED_STREAM);
    }
  });
});
