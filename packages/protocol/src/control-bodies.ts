import { FrameType } from './frame-types.js';

/** Server -> client, first frame after the preface. */
export interface ChallengeBody {
  /** Fresh random nonce (base64 of 32 bytes) the client proves its secret against. */
  nonce: string;
  /** Authentication methods the server requires; empty when none. */
  auth: string[];
  /** Largest frame the server accepts (the `length` field). */
  maxFrame: number;
}

/** Client -> server: opens or resumes a session. */
export interface HelloBody {
  /** Wire protocol versions the client speaks, best first. */
  versions: number[];
  /** Stable id of the client instance; message ids are `${clientId}:${seq}`. */
  clientId: string;
  /** Token of the session to resume; absent for a new session. */
  resumeToken?: string;
  /** Highest server sequence the client delivered in order (0 when none). */
  delivered: number;
  /** Highest client sequence the server acknowledged; a new session starts after it. */
  acked: number;
  /** Largest frame the client accepts. */
  maxFrame: number;
  /** Optional features the client supports. */
  features?: string[];
  /** Authentication: method and proof, or credentials for the server's hook. */
  auth?: { method: string; proof?: string; credentials?: unknown };
}

/** Server -> client: the session is open. */
export interface WelcomeBody {
  /** Chosen wire version. */
  version: number;
  /** Public session id (safe to log); not the resume token. */
  sessionId: string;
  /** Secret token to present in HELLO to resume this session. */
  resumeToken: string;
  /** True when the client's resume token matched a live session. */
  resumed: boolean;
  /** Highest client sequence the server delivered in order; the client resends after it. */
  delivered: number;
  /** Highest server sequence the client acknowledged before (0 for a new session). */
  acked: number;
  /** Largest frame the server accepts. */
  maxFrame: number;
  /** Server's idle-ping interval hint for the client, in ms. */
  pingIntervalMs: number;
  /** The server evicts a client silent for this long, in ms. */
  evictAfterMs: number;
  /** The server keeps a disconnected session this long, in ms. */
  sessionTtlMs: number;
}

/** Fatal error; the sender closes the connection after it. */
export interface ErrorBody {
  code: string;
  message: string;
  retryAfterMs?: number;
}

/** Server is going away; the client reconnects after `retryAfterMs`. */
export interface GoawayBody {
  reason: string;
  retryAfterMs: number;
}

/** Sender proposes a file. Its SHA-256 comes with FILE_END, hashed while the chunks are sent. */
export interface FileOfferBody {
  /** 32 hex characters (128 bits), derived from the file's fingerprint so a restart resumes. */
  id: string;
  name: string;
  size: number;
}

/** Receiver accepts; the sender resumes from `offset`. */
export interface FileAcceptBody {
  id: string;
  offset: number;
}

/** Sender has sent every chunk. */
export interface FileEndBody {
  id: string;
  /** SHA-256 of the whole file, 64 hex characters: the receiver verifies its copy against it. */
  sha256: string;
}

/** Receiver verified and stored the file. */
export interface FileCompleteBody {
  id: string;
  size: number;
  sha256: string;
}

/** Receiver refused or failed the transfer. */
export interface FileFailedBody {
  id: string;
  code: string;
  message: string;
  /** True when offering the same file again may succeed (the partial is kept). */
  retryable: boolean;
}

/** Either side abandons the transfer; the receiver deletes the partial. */
export interface FileCancelBody {
  id: string;
  reason: string;
}

/** Receiver's committed offset: bytes durably stored; also the flow-control credit base. */
export interface FileStatusBody {
  id: string;
  offset: number;
}

type FieldKind = 'uint' | 'string' | 'bool' | 'hex32' | 'hex64' | 'uint[]' | 'string[]' | 'object';
type Schema = Record<string, FieldKind | `${FieldKind}?`>;

const schemas: Record<number, Schema> = {
  [FrameType.CHALLENGE]: { nonce: 'string', auth: 'string[]', maxFrame: 'uint' },
  [FrameType.HELLO]: {
    versions: 'uint[]',
    clientId: 'string',
    resumeToken: 'string?',
    delivered: 'uint',
    acked: 'uint',
    maxFrame: 'uint',
    features: 'string[]?',
    auth: 'object?',
  },
  [FrameType.WELCOME]: {
    version: 'uint',
    sessionId: 'string',
    resumeToken: 'string',
    resumed: 'bool',
    delivered: 'uint',
    acked: 'uint',
    maxFrame: 'uint',
    pingIntervalMs: 'uint',
    evictAfterMs: 'uint',
    sessionTtlMs: 'uint',
  },
  [FrameType.ERROR]: { code: 'string', message: 'string', retryAfterMs: 'uint?' },
  [FrameType.GOAWAY]: { reason: 'string', retryAfterMs: 'uint' },
  [FrameType.FILE_OFFER]: { id: 'hex32', name: 'string', size: 'uint' },
  [FrameType.FILE_ACCEPT]: { id: 'hex32', offset: 'uint' },
  [FrameType.FILE_END]: { id: 'hex32', sha256: 'hex64' },
  [FrameType.FILE_COMPLETE]: { id: 'hex32', size: 'uint', sha256: 'hex64' },
  [FrameType.FILE_FAILED]: { id: 'hex32', code: 'string', message: 'string', retryable: 'bool' },
  [FrameType.FILE_CANCEL]: { id: 'hex32', reason: 'string' },
  [FrameType.FILE_STATUS]: { id: 'hex32', offset: 'uint' },
};

const HEX32 = /^[0-9a-f]{32}$/;
// A lone UTF-16 surrogate: JSON's `\ud800` escape makes one, though no UTF-8 byte sequence can.
// Two strings differing only there would look alike everywhere they are printed, hashed or
// written as UTF-8 (each becomes U+FFFD), so no string field may hold one.
const LONE_SURROGATE = /\p{Cs}/u;

function isText(value: unknown): value is string {
  return typeof value === 'string' && !LONE_SURROGATE.test(value);
}
const HEX64 = /^[0-9a-f]{64}$/;

function fits(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'uint':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'string':
      return isText(value);
    case 'bool':
      return typeof value === 'boolean';
    case 'hex32':
      return typeof value === 'string' && HEX32.test(value);
    case 'hex64':
      return typeof value === 'string' && HEX64.test(value);
    case 'uint[]':
      return Array.isArray(value) && value.every((v) => fits('uint', v));
    case 'string[]':
      return Array.isArray(value) && value.every(isText);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}

/** Whether `type` carries a JSON body. */
export function isControlType(type: number): boolean {
  return schemas[type] !== undefined;
}

/**
 * Checks a parsed JSON body against the frame type's fields. Returns a description of the first
 * problem, or `undefined` when the body is valid. Unknown fields are allowed (forward
 * compatibility); a missing required field or a field of the wrong kind is not.
 */
export function validateControlBody(type: number, body: unknown): string | undefined {
  const schema = schemas[type];
  if (schema === undefined) return `frame type ${type} has no JSON body`;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return 'body is not a JSON object';
  }
  const record = body as Record<string, unknown>;
  for (const [field, spec] of Object.entries(schema)) {
    const optional = spec.endsWith('?');
    const kind = (optional ? spec.slice(0, -1) : spec) as FieldKind;
    const value = record[field];
    if (value === undefined) {
      if (optional) continue;
      return `missing field "${field}"`;
    }
    if (!fits(kind, value)) return `field "${field}" must be ${kind}`;
  }
  return undefined;
}
