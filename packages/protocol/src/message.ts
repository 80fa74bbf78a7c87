/** An application message delivered by the peer, exactly once and in order. */
export class Message {
  /** Stable id for app-level dedupe: `${sessionId}:${seq}` for messages from a server, `${clientId}:${seq}` for messages from a client. */
  readonly id: string;
  /** Sequence number within the session. */
  readonly seq: number;
  /** The payload bytes. */
  readonly data: Buffer;

  constructor(id: string, seq: number, data: Buffer) {
    this.id = id;
    this.seq = seq;
    this.data = data;
  }

  /** The payload as UTF-8 text. */
  text(): string {
    return this.data.toString('utf8');
  }

  /** The payload parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.data.toString('utf8')) as T;
  }
}

/** What `send()` accepts: bytes, or a string sent as UTF-8. */
export type Payload = Uint8Array | string;

/** Converts a payload to a Buffer without copying bytes that already are one. */
export function toBuffer(payload: Payload): Buffer {
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (Buffer.isBuffer(payload)) return payload;
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}
