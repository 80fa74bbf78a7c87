// The browser build's `Buffer` (esbuild injects it for every free `Buffer`): the part of Node's
// Buffer that Tether's client code uses, as a Uint8Array subclass, in about 1 KB. A full polyfill
// (the `buffer` package) would cost more than the rest of the client's dependencies together.
// Encodings: utf8, hex, latin1 and base64. A test runs the protocol's codec against it.

// Marks this Buffer's instances, whichever copy of this module made them: the file module is a
// bundle of its own, with its own copy, and Buffers cross between the two.
const BRAND = Symbol.for('tether.browser-buffer');

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

type Encoding = 'utf8' | 'utf-8' | 'hex' | 'latin1' | 'binary' | 'base64';

/** Node's Buffer, as much of it as the client uses (the statics are added below). */
class BufferImpl extends Uint8Array {
  readUInt32BE(offset: number = 0): number {
    check(this, offset, 4);
    return (
      (this[offset] as number) * 0x100_0000 +
      (((this[offset + 1] as number) << 16) |
        ((this[offset + 2] as number) << 8) |
        (this[offset + 3] as number))
    );
  }

  writeUInt32BE(value: number, offset: number = 0): number {
    check(this, offset, 4);
    if (!(value >= 0 && value <= 0xffff_ffff && Number.isInteger(value))) {
      throw new RangeError(`value out of range: ${value}`);
    }
    this[offset] = value >>> 24;
    this[offset + 1] = value >>> 16;
    this[offset + 2] = value >>> 8;
    this[offset + 3] = value;
    return offset + 4;
  }

  /** Writes `text` at `offset` (at most `length` bytes); returns the bytes written. */
  write(
    text: string,
    offset: number = 0,
    length: number = this.length - offset,
    encoding: Encoding = 'utf8',
  ): number {
    const bytes = encode(text, encoding).subarray(
      0,
      Math.max(0, Math.min(length, this.length - offset)),
    );
    this.set(bytes, offset);
    return bytes.length;
  }

  override toString(
    encoding: Encoding = 'utf8',
    start: number = 0,
    end: number = this.length,
  ): string {
    const part = this.subarray(start, end);
    switch (encoding) {
      case 'hex': {
        let out = '';
        for (const byte of part) out += HEX[byte];
        return out;
      }
      case 'latin1':
      case 'binary':
        return latin1(part);
      case 'base64':
        return btoa(latin1(part));
      default:
        return utf8Decoder.decode(part);
    }
  }

  copy(
    target: Uint8Array,
    targetStart: number = 0,
    sourceStart: number = 0,
    sourceEnd: number = this.length,
  ): number {
    const part = this.subarray(sourceStart, sourceEnd).subarray(0, target.length - targetStart);
    target.set(part, targetStart);
    return part.length;
  }

  equals(other: Uint8Array): boolean {
    if (other.length !== this.length) return false;
    for (let i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
    return true;
  }
}

function check(buffer: Uint8Array, offset: number, size: number): void {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + size <= buffer.length)) {
    throw new RangeError(`offset ${offset} is out of range for ${size} bytes`);
  }
}

function latin1(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 0x2000) {
    out += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  }
  return out;
}

function encode(text: string, encoding: Encoding): BufferImpl {
  switch (encoding) {
    case 'hex': {
      const out = new BufferImpl(text.length >>> 1);
      for (let i = 0; i < out.length; i++) {
        const pair = text.slice(2 * i, 2 * i + 2);
        // As Node: decoding stops at the first pair that is not hex.
        if (!/^[0-9a-f]{2}$/i.test(pair)) return out.subarray(0, i) as BufferImpl;
        out[i] = Number.parseInt(pair, 16);
      }
      return out;
    }
    case 'latin1':
    case 'binary':
      return from(Array.from({ length: text.length }, (_, i) => text.charCodeAt(i) & 0xff));
    case 'base64':
      return encode(atob(text.replace(/-/g, '+').replace(/_/g, '/')), 'latin1');
    default: {
      const bytes = utf8Encoder.encode(text);
      return new BufferImpl(bytes.buffer, bytes.byteOffset, bytes.length);
    }
  }
}

function alloc(size: number, fill = 0): BufferImpl {
  const buffer = new BufferImpl(size);
  if (fill !== 0) buffer.fill(fill);
  return buffer;
}

function allocUnsafe(size: number): BufferImpl {
  return new BufferImpl(size);
}

function from(
  value: string | ArrayBuffer | ArrayLike<number>,
  encodingOrOffset?: Encoding | number,
  length?: number,
): BufferImpl {
  if (typeof value === 'string') return encode(value, (encodingOrOffset as Encoding) ?? 'utf8');
  if (value instanceof ArrayBuffer) {
    const offset = (encodingOrOffset as number | undefined) ?? 0;
    return new BufferImpl(value, offset, length ?? value.byteLength - offset);
  }
  const copy = new BufferImpl(value.length);
  copy.set(value);
  return copy;
}

function isBuffer(value: unknown): value is BufferImpl {
  return (
    value instanceof Uint8Array && (value as unknown as Record<symbol, unknown>)[BRAND] === true
  );
}

function byteLength(value: string | ArrayBufferView, encoding: Encoding = 'utf8'): number {
  return typeof value === 'string' ? encode(value, encoding).length : value.byteLength;
}

function concat(list: readonly Uint8Array[], total?: number): BufferImpl {
  const length = total ?? list.reduce((sum, item) => sum + item.length, 0);
  const out = new BufferImpl(length);
  let offset = 0;
  for (const item of list) {
    if (offset >= length) break;
    const piece = item.subarray(0, length - offset);
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

const statics: {
  alloc: typeof alloc;
  allocUnsafe: typeof allocUnsafe;
  from: typeof from;
  isBuffer: typeof isBuffer;
  byteLength: typeof byteLength;
  concat: typeof concat;
} = { alloc, allocUnsafe, from, isBuffer, byteLength, concat };
// `from` replaces Uint8Array.from: defined, not declared, as its signature differs.
for (const [name, value] of Object.entries(statics)) {
  Object.defineProperty(BufferImpl, name, { value, writable: true, configurable: true });
}
Object.defineProperty(BufferImpl.prototype, BRAND, { value: true });

/** The injected `Buffer`. */
export const Buffer = BufferImpl as unknown as typeof statics & {
  new (size: number): BufferImpl;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): BufferImpl;
  readonly prototype: BufferImpl;
};
