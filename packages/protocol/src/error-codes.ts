/**
 * Every stable error code Tether uses, on the wire (ERROR and FILE_FAILED frames) and in the
 * `code` of thrown errors. PROTOCOL.md lists the same table; a test keeps the two in step.
 * Codes are never renamed or reused: clients match on them.
 */
export const ErrorCode = {
  // Stream and framing: the connection is unusable after these.
  PREFACE_HTTP: 'PREFACE_HTTP',
  PREFACE_TLS: 'PREFACE_TLS',
  PREFACE_INVALID: 'PREFACE_INVALID',
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  BAD_FRAME_LENGTH: 'BAD_FRAME_LENGTH',
  UNKNOWN_FRAME_TYPE: 'UNKNOWN_FRAME_TYPE',
  BAD_FLAGS: 'BAD_FLAGS',
  CONTROL_TOO_LARGE: 'CONTROL_TOO_LARGE',
  BAD_CONTROL_BODY: 'BAD_CONTROL_BODY',
  INTEGER_OUT_OF_RANGE: 'INTEGER_OUT_OF_RANGE',
  TRUNCATED_STREAM: 'TRUNCATED_STREAM',
  UNEXPECTED_FRAME: 'UNEXPECTED_FRAME',
  // Handshake and session.
  HANDSHAKE_TIMEOUT: 'HANDSHAKE_TIMEOUT',
  BAD_HELLO: 'BAD_HELLO',
  AUTH_FAILED: 'AUTH_FAILED',
  SEQUENCE_GAP: 'SEQUENCE_GAP',
  ACK_OUT_OF_RANGE: 'ACK_OUT_OF_RANGE',
  SESSION_TAKEN_OVER: 'SESSION_TAKEN_OVER',
  EVICTED: 'EVICTED',
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  SERVER_SHUTTING_DOWN: 'SERVER_SHUTTING_DOWN',
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  HEARTBEAT_TIMEOUT: 'HEARTBEAT_TIMEOUT',
  CONNECTION_LOST: 'CONNECTION_LOST',
  CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  REMOTE_ERROR: 'REMOTE_ERROR',
  // Local API failures. CLOSED also travels in ERROR when the server ends a session.
  QUEUE_FULL: 'QUEUE_FULL',
  MESSAGE_DROPPED: 'MESSAGE_DROPPED',
  MESSAGE_EXPIRED: 'MESSAGE_EXPIRED',
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  REQUEST_FAILED: 'REQUEST_FAILED',
  ABORTED: 'ABORTED',
  CLOSED: 'CLOSED',
  RETRIES_EXHAUSTED: 'RETRIES_EXHAUSTED',
  INVALID_OPTION: 'INVALID_OPTION',
} as const;

/** One of the stable error codes in {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const known: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Whether `code` is one of Tether's stable error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && known.has(code);
}
