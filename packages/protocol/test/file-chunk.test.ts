import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, encodeFileChunk, FileChunkBuffer, FrameType } from '../src/index.js';

interface ChunkVector {
  name: string;
  hex: string;
  frame: { type: number; id: string; offset: number; crc32: number; dataHex: string };
}

const vectors = (
  JSON.parse(readFileSync(new URL('../test-vectors.json', import.meta.url), 'utf8')) as {
    frames: ChunkVector[];
  }
).frames.filter((v) => v.frame.type === FrameType.FILE_CHUNK);

describe('FileChunkBuffer', () => {
  it('vectors - every FILE_CHUNK vector is built in place byte for byte', () => {
    expect(vectors.length).toBeGreaterThan(0);
    for (const { name, hex, frame } of vectors) {
      const data = Buffer.from(frame.dataHex, 'hex');
      const chunk = new FileChunkBuffer(data.length);
      data.copy(chunk.data);
      expect(chunk.seal(frame.id, frame.offset).toString('hex'), name).toBe(hex);
    }
  });

  it('encode - the frame equals encodeFileChunk and data is a view of it', () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff));
    const chunk = new FileChunkBuffer(data.length);
    data.copy(chunk.data);
    const id = '0123456789abcdef0123456789abcdef';
    const expected = encodeFileChunk(id, 12345, 0, data);
    const frame = chunk.seal(id, 12345);
    expect(frame.subarray(0, 30)).toEqual(expected.subarray(0, 30));
    expect(frame.subarray(34)).toEqual(data);
    expect(chunk.data.buffer).toBe(frame.buffer);
  });

  it('encode - a bad id or offset is refused with a code', () => {
    expect(() => new FileChunkBuffer(1).seal('nope', 0)).toThrow(
      expect.objectContaining({ code: ErrorCode.BAD_CONTROL_BODY }),
    );
    expect(() => new FileChunkBuffer(1).seal('0123456789abcdef0123456789abcdef', -1)).toThrow(
      expect.objectContaining({ code: ErrorCode.INTEGER_OUT_OF_RANGE }),
    );
    // A chunk carries 1 to 256 KiB.
    for (const length of [-1, 0, 256 * 1024 + 1, 1.5]) {
      expect(() => new FileChunkBuffer(length)).toThrow(
        expect.objectContaining({ code: ErrorCode.BAD_FRAME_LENGTH }),
      );
    }
    expect(new FileChunkBuffer(256 * 1024).data.length).toBe(256 * 1024);
  });
});
