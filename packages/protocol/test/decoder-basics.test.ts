import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  encodeAck,
  encodeData,
  encodeHello,
  type Frame,
  FrameDecoder,
  FrameType,
  PREFACE,
  ProtocolError,
} from '../src/index.js';

function decodeAll(decoder: FrameDecoder, ...chunks: Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    const error = decoder.push(chunk, (f) => frames.push(f));
    if (error) throw error;
  }
  return frames;
}

describe('decoder - basics', () => {
  it('decodes the preface then frames', () => {
    const hello = encodeHello({
      versions: [1],
      clientId: 'c1',
      delivered: 0,
      acked: 0,
      maxFrame: 1 << 20,
    });
    const frames = decodeAll(
      new FrameDecoder(),
      PREFACE,
      hello,
      encodeData(1, Buffer.from('hi')),
      encodeAck(1),
    );
    expect(frames.map((f) => f.type)).toEqual([FrameType.HELLO, FrameType.DATA, FrameType.ACK]);
  });

  it('refuses a 4 GiB declared length after 4 bytes', () => {
    const decoder = new FrameDecoder({ expectPreface: false });
    const error = decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff]), () => {});
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error?.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('recognises HTTP and TLS on the preface', () => {
    const http = new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n'), () => {});
    expect(http?.code).toBe(ErrorCode.PREFACE_HTTP);
    const tls = new FrameDecoder().push(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), () => {});
    expect(tls?.code).toBe(ErrorCode.PREFACE_TLS);
  });

  it('reports a truncated stream at end', () => {
    const decoder = new FrameDecoder({ expectPreface: false });
    const data = encodeData(7, Buffer.alloc(100));
    expect(decoder.push(data.subarray(0, 50), () => {})).toBeUndefined();
    expect(decoder.end()?.code).toBe(ErrorCode.TRUNCATED_STREAM);
  });
});

describe('decoder - a handler that throws', () => {
  it('stops with HANDLER_FAILED carrying the cause, and stays stopped', () => {
    const decoder = new FrameDecoder({ expectPreface: false });
    const boom = new Error('app bug');
    const seen: number[] = [];
    const stream = Buffer.concat([encodeAck(1), encodeAck(2), encodeAck(3)]);
    const error = decoder.push(stream, (frame) => {
      if (frame.type === FrameType.ACK) seen.push(frame.seq);
      if (seen.length === 2) throw boom;
    });
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error?.code).toBe(ErrorCode.HANDLER_FAILED);
    expect(error?.cause).toBe(boom);
    // The rest of that chunk was not read: the decoder must not guess where it stands.
    expect(seen).toEqual([1, 2]);
    expect(decoder.push(encodeAck(4), () => seen.push(4))).toBe(error);
    expect(seen).toEqual([1, 2]);
  });

  it('discard drops a partial frame at once and stops the decoder', () => {
    const decoder = new FrameDecoder({ expectPreface: false });
    const frame = encodeData(1, Buffer.alloc(10_000, 7));
    const seen: Frame[] = [];
    expect(decoder.push(frame.subarray(0, 6000), (f) => seen.push(f))).toBeUndefined();
    expect(decoder.retainedBytes).toBe(6000);
    decoder.discard();
    expect(decoder.retainedBytes).toBe(0);
    expect(decoder.bufferedBytes).toBe(0);
    const error = decoder.push(frame.subarray(6000), (f) => seen.push(f));
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error?.code).toBe(ErrorCode.TRUNCATED_STREAM);
    expect(seen).toEqual([]);
  });

  it('a large frame in pieces small and large decodes whole, holding about what arrived', () => {
    const payload = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 8)) & 0xff;
    const stream = Buffer.concat([encodeData(1, payload), encodeData(2, Buffer.from('next'))]);
    for (const seed of [1, 2, 3]) {
      const decoder = new FrameDecoder({ expectPreface: false, maxFrame: 2 * 1024 * 1024 });
      const seen: Frame[] = [];
      let state = seed;
      const random = (n: number): number => {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        return state % n;
      };
      let pos = 0;
      while (pos < stream.length) {
        // A mix of trickled bytes and socket-sized reads, each its own chunk (copied: a socket's
        // chunks are never reused).
        const size = random(3) === 0 ? 1 + random(100) : 16 * 1024 + random(60 * 1024);
        const chunk = Buffer.from(stream.subarray(pos, pos + size));
        pos += chunk.length;
        expect(decoder.push(chunk, (f) => seen.push(f))).toBeUndefined();
        if (seen.length === 0) {
          expect(decoder.bufferedBytes).toBe(pos);
          // Views keep their chunks (exact size here); copies at most double.
          expect(decoder.retainedBytes).toBeLessThanOrEqual(2 * pos);
        }
      }
      expect(seen.map((f) => (f as { seq: number }).seq)).toEqual([1, 2]);
      expect((seen[0] as { payload: Buffer }).payload.equals(payload)).toBe(true);
      expect((seen[1] as { payload: Buffer }).payload.toString()).toBe('next');
      expect(decoder.retainedBytes).toBe(0);
    }
  });
});
