import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';

/** Wire version carried in the preface's last byte. */
export const PROTOCOL_VERSION = 1;

/**
 * Each side sends these 8 bytes first: 0x89 "TETHER" version. The high first byte cannot start a
 * text protocol line, and a TLS record starts with 0x16, so stray traffic is told apart from the
 * first bytes.
 */
export const PREFACE: Buffer = Buffer.from([
  0x89,
  0x54,
  0x45,
  0x54,
  0x48,
  0x45,
  0x52,
  PROTOCOL_VERSION,
]);

/** Length of {@link PREFACE}. */
export const PREFACE_SIZE = 8;

const TLS_HANDSHAKE_RECORD = 0x16;
const TLS_ALERT_RECORD = 0x15;
const ASCII_A = 0x41;
const ASCII_Z = 0x5a;

/**
 * Checks the bytes received so far against the preface. Returns `undefined` while they are a
 * valid prefix (or the whole preface), otherwise the error that says what the peer sent instead.
 * A wrong first byte that is not an ASCII capital decides at once; text that may be an HTTP
 * method line is judged when 8 bytes are in (or at end of stream, through `final`).
 */
export function checkPreface(received: Uint8Array, final = false): ProtocolError | undefined {
  const n = Math.min(received.length, PREFACE_SIZE);
  for (let i = 0; i < n; i++) {
    if (received[i] === PREFACE[i]) continue;
    if (i === PREFACE_SIZE - 1) {
      return new ProtocolError(
        ErrorCode.UNSUPPORTED_VERSION,
        `peer speaks Tether wire version ${received[i]}, this side speaks ${PROTOCOL_VERSION}`,
      );
    }
    const first = received[0] ?? 0;
    const maybeText = first >= ASCII_A && first <= ASCII_Z;
    if (maybeText && n < PREFACE_SIZE && !final) return undefined;
    return classifyStrayBytes(received);
  }
  return undefined;
}

function classifyStrayBytes(received: Uint8Array): ProtocolError {
  // A server sees a ClientHello (handshake record); a client that reached a TLS server sees an
  // alert record in answer to its plaintext preface.
  if (received[0] === TLS_HANDSHAKE_RECORD || received[0] === TLS_ALERT_RECORD) {
    return new ProtocolError(
      ErrorCode.PREFACE_TLS,
      'received TLS on a plaintext Tether connection: enable TLS on both sides or neither',
    );
  }
  const head = Buffer.from(received.subarray(0, PREFACE_SIZE)).toString('latin1');
  // A request line ("GET / HTTP/1.1") seen by a server, or a status line ("HTTP/1.1 400") seen
  // by a client that reached an HTTP server.
  if (/^([A-Z]{3,7} |HTTP\/)/.test(head)) {
    return new ProtocolError(
      ErrorCode.PREFACE_HTTP,
      'received HTTP on a Tether connection: Tether speaks its own protocol, not HTTP',
    );
  }
  return new ProtocolError(
    ErrorCode.PREFACE_INVALID,
    'the peer did not start with the Tether preface: not a Tether endpoint',
  );
}
