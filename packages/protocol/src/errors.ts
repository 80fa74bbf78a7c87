import type { ErrorCode } from './error-codes.js';

// Each class is branded with a global symbol, so `instanceof` holds across two installed copies
// of the package (the same trick undici uses).
const tetherBrand = Symbol.for('tether.error');
const protocolBrand = Symbol.for('tether.error.protocol');

function brand(target: object, symbol: symbol): void {
  Object.defineProperty(target, symbol, { value: true });
}

function hasBrand(value: unknown, brand: symbol): boolean {
  return typeof value === 'object' && value !== null && brand in value;
}

/** Base class of every error Tether raises. Match on `code`, never on `message`. */
export class TetherError extends Error {
  override readonly name: string = 'TetherError';
  /** Stable code from the error-code table (PROTOCOL.md). */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    brand(this, tetherBrand);
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, tetherBrand);
  }
}

/** The peer broke the wire protocol: bad bytes, a bad frame, or a frame out of place. */
export class ProtocolError extends TetherError {
  override readonly name: string = 'ProtocolError';

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    brand(this, protocolBrand);
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, protocolBrand);
  }
}
