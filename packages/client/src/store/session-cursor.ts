import * as fs from 'node:fs';
import { crc32 } from '@tether/protocol';

/*
 * The session file holds where the client stands in its session: the session id and resume
 * token, and the server stream's positions. It is rewritten in place, before every message
 * handed to the application, so it is small and written with one pwrite: two slots of SLOT_SIZE
 * bytes, written in turn, so a write torn by a power loss costs one step, never the state. Each
 * slot holds one record:
 *
 *   crc       u32 BE   CRC-32 of everything after it, up to the end of the record
 *   length    u32 BE   bytes after this field
 *   counter   f64 BE   writes so far: the valid slot with the higher counter is the newer
 *   delivered f64 BE   every message up to this seq was handled (its handler returned)
 *   handing   f64 BE   messages up to this seq may have reached the application
 *   u16 BE length + UTF-8 session id, u16 BE length + UTF-8 resume token
 */
const SLOT_SIZE = 4096;
const FIXED = 4 + 4 + 8 + 8 + 8;

/** The session position as recorded. */
export interface CursorState {
  /** '' when there is no session. */
  sessionId: string;
  resumeToken: string;
  delivered: number;
  handing: number;
}

/** What reading the session file found. */
export interface CursorRead {
  state: CursorState;
  /** Set when a slot held a damaged record (the other slot's state is used, if valid). */
  damage: string | undefined;
}

const EMPTY: CursorState = { sessionId: '', resumeToken: '', delivered: 0, handing: 0 };

/**
 * The session file of a store, open for writing. Writes are synchronous (a pwrite: in the page
 * cache when it returns, so a crash of the process cannot lose it); `dirty` says a write is not
 * yet fsynced, for the journal's next batch to sync.
 */
export class SessionCursor {
  readonly fd: number;
  /** Written since the last fsync. */
  dirty = false;
  #record: Buffer = Buffer.alloc(0);
  #counter: number;
  #delivered: number;
  #handing: number;

  private constructor(fd: number, counter: number, state: CursorState) {
    this.fd = fd;
    this.#counter = counter;
    this.#delivered = state.delivered;
    this.#handing = state.handing;
    this.#encodeSession(state.sessionId, state.resumeToken);
  }

  /** Opens (creating if missing) the session file at `path` and reads its state. */
  static open(path: string): { cursor: SessionCursor } & CursorRead {
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    try {
      const { counter, state, damage } = readSlots(fd);
      return { cursor: new SessionCursor(fd, counter, state), state, damage };
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /**
   * A WELCOME: records the session. A new session starts the server's stream from zero; a resumed
   * one keeps its positions (the token may have changed).
   */
  session(sessionId: string, resumeToken: string, resumed: boolean): void {
    if (!resumed) {
      this.#delivered = 0;
      this.#handing = 0;
    }
    this.#encodeSession(sessionId, resumeToken);
    this.#write();
  }

  /** Message `seq` is about to reach the application: every one before it was handled. */
  handing(seq: number): void {
    this.#delivered = seq - 1;
    if (seq > this.#handing) this.#handing = seq;
    this.#write();
  }

  /** Every message up to `seq` was handled (their handlers returned). */
  handled(seq: number): void {
    if (seq === this.#delivered && seq <= this.#handing) return;
    this.#delivered = seq;
    if (seq > this.#handing) this.#handing = seq;
    this.#write();
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  #encodeSession(sessionId: string, resumeToken: string): void {
    const id = Buffer.from(sessionId, 'utf8');
    const token = Buffer.from(resumeToken, 'utf8');
    const size = FIXED + 2 + id.length + 2 + token.length;
    // A server's id and token fit many times over; one that does not is not kept (a restart
    // then opens a new session) rather than split over slots.
    if (size > SLOT_SIZE || id.length > 0xffff || token.length > 0xffff) {
      this.#encodeSession('', '');
      return;
    }
    const record = Buffer.alloc(size);
    record.writeUInt32BE(size - 8, 4);
    record.writeUInt16BE(id.length, FIXED);
    record.set(id, FIXED + 2);
    record.writeUInt16BE(token.length, FIXED + 2 + id.length);
    record.set(token, FIXED + 4 + id.length);
    this.#record = record;
  }

  #write(): void {
    const record = this.#record;
    this.#counter++;
    record.writeDoubleBE(this.#counter, 8);
    record.writeDoubleBE(this.#delivered, 16);
    record.writeDoubleBE(this.#handing, 24);
    record.writeUInt32BE(crc32(record.subarray(4)), 0);
    fs.writeSync(this.fd, record, 0, record.length, (this.#counter % 2) * SLOT_SIZE);
    this.dirty = true;
  }
}

interface Slot {
  counter: number;
  state: CursorState;
}

// Reads both slots: the valid one with the higher counter wins.
function readSlots(fd: number): {
  counter: number;
  state: CursorState;
  damage: string | undefined;
} {
  let best: Slot | undefined;
  let damage: string | undefined;
  for (let slot = 0; slot < 2; slot++) {
    const bytes = Buffer.alloc(SLOT_SIZE);
    const read = fs.readSync(fd, bytes, 0, SLOT_SIZE, slot * SLOT_SIZE);
    const parsed = parseSlot(bytes.subarray(0, read));
    if (parsed === undefined) continue;
    if (typeof parsed === 'string') {
      damage = `session file slot ${slot}: ${parsed}`;
      continue;
    }
    if (best === undefined || parsed.counter > best.counter) best = parsed;
  }
  return { counter: best?.counter ?? 0, state: best?.state ?? { ...EMPTY }, damage };
}

// A slot's state; undefined for a slot never written; a string saying why it is damaged.
function parseSlot(bytes: Buffer): Slot | string | undefined {
  if (bytes.every((byte) => byte === 0)) return undefined;
  if (bytes.length < FIXED + 4) return 'cut short';
  const length = bytes.readUInt32BE(4);
  if (length < FIXED + 4 - 8 || 8 + length > bytes.length) return 'bad length';
  const record = bytes.subarray(0, 8 + length);
  if (crc32(record.subarray(4)) !== record.readUInt32BE(0)) return 'bad checksum';
  const counter = record.readDoubleBE(8);
  const delivered = record.readDoubleBE(16);
  const handing = record.readDoubleBE(24);
  const idLength = record.readUInt16BE(FIXED);
  const tokenAt = FIXED + 2 + idLength;
  if (tokenAt + 2 > record.length) return 'bad session id';
  const tokenLength = record.readUInt16BE(tokenAt);
  if (tokenAt + 2 + tokenLength !== record.length) return 'bad resume token';
  const valid = [counter, delivered, handing].every((n) => Number.isSafeInteger(n) && n >= 0);
  if (!valid || handing < delivered) return 'bad positions';
  return {
    counter,
    state: {
      sessionId: record.toString('utf8', FIXED + 2, tokenAt),
      resumeToken: record.toString('utf8', tokenAt + 2, tokenAt + 2 + tokenLength),
      delivered,
      handing,
    },
  };
}
