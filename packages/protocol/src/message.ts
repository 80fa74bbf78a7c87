/** An application message delivered by the peer, exactly once and in order. */
export class Message {
  /** Stable id for app-level dedupe: `${sessionId}:${seq}` for messages from a server, `${clientId}:${seq}` for messages from a client. */
  readonly id: string;
  /** Sequence number within the session. */
  readonly seq: number;
  /** The payload bytes. */
  readonly data: Buffer;
  /**
   * True when this message may have reached the application before: its receiver crashed (or a
   * server instance died) while handling it, before its delivery was recorded. Same id, same seq:
   * an application that must act once dedupes on `id`. False on every first delivery.
   */
  readonly redelivered: boolean;

  constructor(id: string, seq: number, data: Buffer, redelivered = false) {
    this.id = id;
    this.seq = seq;
    this.data = data;
    this.redelivered = redelivered;
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
