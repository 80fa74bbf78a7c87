import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameType,
  PREFACE,
  ProtocolError,
} from '../src/index.js';

// The vectors are hand-built byte by byte from PROTOCOL.md, never produced by the encoder, so a
// bug in either the encoder or the decoder makes these tests fail.

interface ValidVector {
  name: string;
  hex: string;
  /** Decoded fields; Buffers appear as hex strings in `payloadHex` / `dataHex`. */
  frame: Record<string, unknown>;
  /** The body is not in the compact form the encoder writes: check decoding only. */
  decodeOnly?: boolean;
}

interface InvalidVector {
  name: string;
  hex: string;
  /** The bytes are what a peer sends first, in place of the preface. */
  preface: boolean;
  code: string;
}

interface Vectors {
  version: number;
  preface: string;
  frames: ValidVector[];
  invalid: InvalidVector[];
}

const readSibling = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8');

const vectors = JSON.parse(readSibling('../test-vectors.json')) as Vectors;
const protocolMd = readSibling('../PROTOCOL.md');

/** A decoded frame as plain JSON: Buffers become hex strings under `<name>Hex`. */
function toJson(frame: Frame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(frame)) {
    if (Buffer.isBuffer(value)) out[`${key}Hex`] = value.toString('hex');
    else out[key] = value;
  }
  return out;
}

/** The inverse of {@link toJson}, for re-encoding a vector's fields. */
function fromJson(fields: Record<string, unknown>): Frame {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (key.endsWith('Hex') && typeof value === 'string') {
      out[key.slice(0, -3)] = Buffer.from(value, 'hex');
    } else {
      out[key] = value;
    }
  }
  return out as unknown as Frame;
}

function decodeChunks(chunks: Uint8Array[]): Frame[] {
  const decoder = new FrameDecoder({ expectPreface: false });
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    const error = decoder.push(chunk, (frame) => frames.push(frame));
    if (error !== undefined) throw error;
  }
  const error = decoder.end();
  if (error !== undefined) throw error;
  return frames;
}

function errorTableCodes(markdown: string): string[] {
  const start = markdown.search(/^## Error codes/m);
  expect(start).toBeGreaterThanOrEqual(0);
  const rest = markdown.slice(start + 1);
  const next = rest.search(/^## /m);
  const section = next < 0 ? rest : rest.slice(0, next);
  return [...section.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1] as string);
}

describe('vectors - file', () => {
  it('vectors - file is version 1 and covers every frame type', () => {
    expect(vectors.version).toBe(1);
    const covered = new Set(vectors.frames.map((v) => v.frame.type));
    for (const type of Object.values(FrameType)) expect(covered).toContain(type);
  });

  it('preface - hex equals PREFACE', () => {
    expect(vectors.preface).toBe(PREFACE.toString('hex'));
    expect(vectors.preface).toBe('8954455448455201');
  });

  it('vectors - every invalid code is a known error code', () => {
    const known = new Set<string>(Object.values(ErrorCode));
    for (const v of vectors.invalid) expect(known, v.name).toContain(v.code);
  });
});

describe('vectors - valid frames', () => {
  for (const v of vectors.frames) {
    it(`decode - ${v.name}`, () => {
      const frames = decodeChunks([Buffer.from(v.hex, 'hex')]);
      expect(frames).toHaveLength(1);
      expect(toJson(frames[0] as Frame)).toStrictEqual(v.frame);
    });

    if (v.decodeOnly !== true) {
      it(`encode - ${v.name}`, () => {
        expect(encodeFrame(fromJson(v.frame)).toString('hex')).toBe(v.hex);
      });
    }
  }

  it('decode - all vectors in one chunk and byte by byte give the same frames', () => {
    const all = Buffer.from(vectors.frames.map((v) => v.hex).join(''), 'hex');
    const expected = vectors.frames.map((v) => v.frame);
    expect(decodeChunks([all]).map(toJson)).toStrictEqual(expected);
    const bytes = [...all].map((b) => Uint8Array.of(b));
    expect(decodeChunks(bytes).map(toJson)).toStrictEqual(expected);
  });

  it('decode - the preface followed by every vector', () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const stream = Buffer.concat([
      PREFACE,
      ...vectors.frames.map((v) => Buffer.from(v.hex, 'hex')),
    ]);
    expect(decoder.push(stream, (f) => frames.push(f))).toBeUndefined();
    expect(decoder.end()).toBeUndefined();
    expect(frames).toHaveLength(vectors.frames.length);
  });
});

describe('vectors - invalid input', () => {
  for (const v of vectors.invalid) {
    it(`decode - ${v.name} fails with ${v.code}`, () => {
      const decoder = new FrameDecoder({ expectPreface: v.preface });
      const frames: Frame[] = [];
      let error = decoder.push(Buffer.from(v.hex, 'hex'), (f) => frames.push(f));
      error ??= decoder.end();
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error?.code).toBe(v.code);
      expect(frames).toHaveLength(0);
      expect(decoder.bufferedBytes).toBe(0);
    });

    it(`decode - ${v.name} fails with ${v.code} when fed byte by byte`, () => {
      const decoder = new FrameDecoder({ expectPreface: v.preface });
      let error: ProtocolError | undefined;
      for (const byte of Buffer.from(v.hex, 'hex')) {
        error = decoder.push(Uint8Array.of(byte), () => {});
        if (error !== undefined) break;
      }
      error ??= decoder.end();
      expect(error?.code).toBe(v.code);
    });
  }
});

describe('PROTOCOL.md - error table', () => {
  it('PROTOCOL.md - error table lists every ErrorCode exactly once and nothing else', () => {
    const rows = errorTableCodes(protocolMd);
    expect(new Set(rows).size).toBe(rows.length);
    expect([...rows].sort()).toStrictEqual(Object.values(ErrorCode).sort());
  });
});
