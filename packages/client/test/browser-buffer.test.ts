import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Buffer as BrowserBuffer } from '../src/browser-buffer.js';

// The browser build's Buffer against Node's: the methods one by one, then the protocol's own test
// vectors encoded and decoded by a fresh copy of @tether/protocol that sees only the browser one.

const NodeBuffer = globalThis.Buffer;

interface Vector {
  name: string;
  hex: string;
  frame: Record<string, unknown>;
  decodeOnly?: boolean;
}
const vectors = JSON.parse(
  readFileSync(new URL('../../protocol/test-vectors.json', import.meta.url), 'utf8'),
) as {
  preface: string;
  frames: Vector[];
  invalid: { name: string; hex: string; code: string; preface: boolean }[];
};

function hexOf(bytes: Uint8Array): string {
  return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

/** A decoded frame as plain JSON: byte fields become hex strings under `<name>Hex`. */
function toJson(frame: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(frame)) {
    if (value instanceof Uint8Array) out[`${key}Hex`] = hexOf(value);
    else out[key] = value;
  }
  return out;
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.resetModules();
});

describe('browser buffer', () => {
  it('browser buffer - from, alloc, concat, byteLength and isBuffer as Node has them', async () => {
    const texts = ['', 'hello', 'ünïcødé ✓ 𝄞', 'a'.repeat(1000)];
    for (const text of texts) {
      expect(hexOf(BrowserBuffer.from(text))).toBe(NodeBuffer.from(text).toString('hex'));
      expect(hexOf(BrowserBuffer.from(text, 'utf8'))).toBe(NodeBuffer.from(text).toString('hex'));
      expect(BrowserBuffer.byteLength(text, 'utf8')).toBe(NodeBuffer.byteLength(text, 'utf8'));
      expect(BrowserBuffer.from(text).toString()).toBe(text);
    }
    for (const hex of ['', '00ff10ab', 'deadbeef'.repeat(9), '0g12']) {
      expect(hexOf(BrowserBuffer.from(hex, 'hex'))).toBe(
        NodeBuffer.from(hex, 'hex').toString('hex'),
      );
    }
    const b64 = NodeBuffer.from([0, 1, 250, 251, 252, 253, 254, 255]).toString('base64');
    expect(hexOf(BrowserBuffer.from(b64, 'base64'))).toBe('0001fafbfcfdfeff');
    const arrayBuffer = new Uint8Array([9, 8, 7, 6, 5]).buffer;
    const view = BrowserBuffer.from(arrayBuffer, 1, 3);
    expect(hexOf(view)).toBe('080706');
    expect(view.buffer).toBe(arrayBuffer);
    expect(BrowserBuffer.isBuffer(view)).toBe(true);
    expect(BrowserBuffer.isBuffer(new Uint8Array(3))).toBe(false);
    // A subarray of a Buffer is a Buffer (as in Node).
    expect(BrowserBuffer.isBuffer(view.subarray(1))).toBe(true);
    // A Buffer of another copy of the module (the file module is a bundle of its own) is one too.
    vi.resetModules();
    const { Buffer: OtherCopy } = await import('../src/browser-buffer.js');
    expect(OtherCopy).not.toBe(BrowserBuffer);
    expect(BrowserBuffer.isBuffer(OtherCopy.from([1]))).toBe(true);
    expect(BrowserBuffer.isBuffer(NodeBuffer.from([1]))).toBe(false);
    const parts = [BrowserBuffer.from([1, 2]), new Uint8Array([3]), BrowserBuffer.alloc(2, 7)];
    expect(hexOf(BrowserBuffer.concat(parts))).toBe('0102030707');
    expect(hexOf(BrowserBuffer.concat(parts, 2))).toBe('0102');
    expect(BrowserBuffer.alloc(3)).toEqual(new BrowserBuffer(3));
  });

  it('browser buffer - reads, writes and toString encodings as Node does', () => {
    const bytes = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
    const ours = BrowserBuffer.from(bytes);
    const node = NodeBuffer.from(bytes);
    for (let offset = 0; offset <= 60; offset += 7) {
      expect(ours.readUInt32BE(offset)).toBe(node.readUInt32BE(offset));
    }
    for (const encoding of ['hex', 'latin1', 'base64', 'utf8'] as const) {
      expect(ours.toString(encoding)).toBe(node.toString(encoding));
      expect(ours.toString(encoding, 5, 20)).toBe(node.toString(encoding, 5, 20));
    }
    const target = BrowserBuffer.alloc(12);
    expect(target.writeUInt32BE(0xdeadbeef, 4)).toBe(8);
    expect(target.write('0102ff', 0, 3, 'hex')).toBe(3);
    expect(target.write('ab', 9, 8, 'utf8')).toBe(2);
    expect(hexOf(target)).toBe('0102ff00deadbeef00616200');
    const copy = BrowserBuffer.alloc(4);
    expect(ours.copy(copy, 1, 2, 10)).toBe(3);
    expect(hexOf(copy)).toBe(`00${node.toString('hex', 2, 5)}`);
    expect(ours.equals(node)).toBe(true);
    expect(ours.equals(node.subarray(1))).toBe(false);
    expect(() => ours.readUInt32BE(61)).toThrow(RangeError);
    expect(() => target.writeUInt32BE(2 ** 32, 0)).toThrow(RangeError);
  });

  it('browser buffer - the protocol codec runs on it: every test vector encodes and decodes the same', async () => {
    vi.stubGlobal('Buffer', BrowserBuffer);
    vi.resetModules();
    const protocol = await import('@tether/protocol');
    expect(protocol.PREFACE).toBeInstanceOf(BrowserBuffer);
    expect(hexOf(protocol.PREFACE)).toBe(vectors.preface);
    let checked = 0;
    for (const vector of vectors.frames) {
      const decoder = new protocol.FrameDecoder({ expectPreface: false });
      const frames: object[] = [];
      const bytes = NodeBuffer.from(vector.hex, 'hex');
      // Byte by byte, as the decoder must take it from a WebSocket message cut anywhere.
      for (const byte of bytes) {
        expect(decoder.push(new Uint8Array([byte]), (frame) => frames.push(frame))).toBeUndefined();
      }
      expect(frames.map(toJson), vector.name).toEqual([vector.frame]);
      if (!vector.decodeOnly) {
        const encoded = protocol.encodeFrame(
          frames[0] as Parameters<typeof protocol.encodeFrame>[0],
        );
        expect(encoded).toBeInstanceOf(BrowserBuffer);
        expect(hexOf(encoded), vector.name).toBe(vector.hex);
      }
      checked++;
    }
    expect(checked).toBe(vectors.frames.length);
    for (const vector of vectors.invalid) {
      const decoder = new protocol.FrameDecoder({ expectPreface: vector.preface });
      const error = decoder.push(NodeBuffer.from(vector.hex, 'hex'), () => {}) ?? decoder.end();
      expect(error?.code, vector.name).toBe(vector.code);
    }
  });
});
