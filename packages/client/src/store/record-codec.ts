import { ABSOLUTE_MAX_FRAME, crc32 } from '@tether/protocol';
import { crc32Range } from './crc32-range.js';

/*
 * The journal is a sequence of records, each:
 *
 *   crc    u32 BE   CRC-32 (IEEE, as zlib) of everything after it: length, type and body
 *   length u32 BE   bytes of the body
 *   type   u8       a RecordType
 *   body   length bytes
 *
 * The CRC covers the length, so a damaged length is caught as surely as a damaged payload.
 * Integers in bodies (sequence numbers, entry ids, times) are big-endian IEEE doubles holding
 * non-negative safe integers: one read each, and the reader checks every one of them.
 */

/** Bytes of a record before its body. */
export const RECORD_HEADER_SIZE = 9;

/** What a record says. The journal's first record is HEADER, its second CLIENT. */
export const RecordType = {
  /** Body: magic `TJNL`, u16 format version. */
  HEADER: 0x01,
  /** Body: the client id, UTF-8. */
  CLIENT: 0x02,
  /** Body: acknowledged seq, next entry id, request ids reserved. Starts a snapshot's state. */
  BASE: 0x03,
  /** Body: entry id, u8 flags, request id, expiry (wall-clock ms, 0 for none), payload. */
  QUEUED: 0x10,
  /** Body: ids of the first and last entry, last seq: the oldest queued entries got the next seqs. */
  SENT: 0x11,
  /** Body: seq: the server acknowledged everything up to it. */
  ACKED: 0x12,
  /** Body: ids of queued entries taken out of the queue (TTL, overflow, withdrawn). */
  REMOVED: 0x13,
  /** Body: request ids up to this one may have been used: a restart continues after it. */
  REQUEST_IDS: 0x14,
  /** Body: none. The server was found ahead of this journal: the next open starts over. */
  DIVERGED: 0x15,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(RecordType));

/** `TJNL`: the first bytes of every HEADER body. */
export const JOURNAL_MAGIC = 0x544a4e4c;
/** Format version this code writes and reads. */
export const JOURNAL_VERSION = 1;

/** Fixed part of a QUEUED body, before the payload. */
export const QUEUED_FIXED = 25;
/** Bytes a QUEUED record adds beyond its payload. */
export const QUEUED_OVERHEAD: number = RECORD_HEADER_SIZE + QUEUED_FIXED;
/** Largest body a reader accepts: a payload of the largest frame and its fields. */
export const MAX_RECORD_BODY: number = ABSOLUTE_MAX_FRAME + 64;
/** Ids per REMOVED record (a larger removal is written as several). */
const REMOVED_PER_RECORD = 8192;

// Records are encoded into chunks of this size; a payload this large or larger is written from
// its own buffer instead of being copied.
const CHUNK = 64 * 1024;
const COPY_BELOW = 8 * 1024;

/**
 * Encodes records for one write: small records are packed into shared chunks, large payloads
 * are referenced as they are. `take` hands out everything encoded since the last `take` as a
 * list of buffers for one `writev`; bytes once taken are never written again.
 */
export class RecordArena {
  #buf: Buffer = Buffer.allocUnsafe(CHUNK);
  #view: DataView = viewOf(this.#buf);
  /** First byte of the chunk not yet taken. */
  #start = 0;
  /** First free byte of the chunk. */
  #end = 0;
  #parts: Buffer[] = [];
  #bytes = 0;

  /** Bytes encoded and not yet taken. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Everything encoded since the last call, in order. */
  take(): Buffer[] {
    this.#cut();
    const parts = this.#parts;
    this.#parts = [];
    this.#bytes = 0;
    return parts;
  }

  header(): void {
    const at = this.#open(RecordType.HEADER, 6);
    this.#view.setUint32(at, JOURNAL_MAGIC);
    this.#view.setUint16(at + 4, JOURNAL_VERSION);
    this.#seal(at, 6);
  }

  client(clientId: string): void {
    const bytes = Buffer.from(clientId, 'utf8');
    const at = this.#open(RecordType.CLIENT, bytes.length);
    this.#buf.set(bytes, at);
    this.#seal(at, bytes.length);
  }

  base(acked: number, nextId: number, requestIds: number): void {
    const at = this.#open(RecordType.BASE, 24);
    const view = this.#view;
    view.setFloat64(at, acked);
    view.setFloat64(at + 8, nextId);
    view.setFloat64(at + 16, requestIds);
    this.#seal(at, 24);
  }

  queued(id: number, flags: number, requestId: number, expiresAt: number, payload: Buffer): void {
    const size = payload.length;
    const copy = size < COPY_BELOW;
    const at = this.#open(RecordType.QUEUED, QUEUED_FIXED + size, copy ? undefined : QUEUED_FIXED);
    const view = this.#view;
    view.setFloat64(at, id);
    view.setUint8(at + 8, flags);
    view.setFloat64(at + 9, requestId);
    view.setFloat64(at + 17, expiresAt);
    if (copy) {
      this.#buf.set(payload, at + QUEUED_FIXED);
      this.#seal(at, QUEUED_FIXED + size);
      return;
    }
    const head = crc32Range(this.#buf, at - RECORD_HEADER_SIZE + 4, at + QUEUED_FIXED);
    view.setUint32(at - RECORD_HEADER_SIZE, crc32(payload, head));
    this.#cut();
    this.#parts.push(payload);
    this.#bytes += size;
  }

  sent(firstId: number, lastId: number, lastSeq: number): void {
    const at = this.#open(RecordType.SENT, 24);
    this.#view.setFloat64(at, firstId);
    this.#view.setFloat64(at + 8, lastId);
    this.#view.setFloat64(at + 16, lastSeq);
    this.#seal(at, 24);
  }

  acked(seq: number): void {
    this.#number(RecordType.ACKED, seq);
  }

  removed(ids: readonly number[]): void {
    for (let from = 0; from < ids.length; from += REMOVED_PER_RECORD) {
      const count = Math.min(REMOVED_PER_RECORD, ids.length - from);
      const at = this.#open(RecordType.REMOVED, count * 8);
      for (let i = 0; i < count; i++) this.#view.setFloat64(at + i * 8, ids[from + i] as number);
      this.#seal(at, count * 8);
    }
  }

  requestIds(upTo: number): void {
    this.#number(RecordType.REQUEST_IDS, upTo);
  }

  diverged(): void {
    this.#seal(this.#open(RecordType.DIVERGED, 0), 0);
  }

  #number(type: RecordType, value: number): void {
    const at = this.#open(type, 8);
    this.#view.setFloat64(at, value);
    this.#seal(at, 8);
  }

  // Reserves a record with a body of `bodyLength`, of which the first `inline` bytes go into the
  // chunk (all of them unless a payload follows as its own buffer), and writes its length and
  // type. Returns where the body starts.
  #open(type: RecordType, bodyLength: number, inline = bodyLength): number {
    const size = RECORD_HEADER_SIZE + inline;
    if (this.#end + size > this.#buf.length) {
      this.#cut();
      this.#buf = Buffer.allocUnsafe(Math.max(CHUNK, size));
      this.#view = viewOf(this.#buf);
      this.#start = 0;
      this.#end = 0;
    }
    const at = this.#end;
    this.#end += size;
    this.#bytes += size;
    this.#view.setUint32(at + 4, bodyLength);
    this.#view.setUint8(at + 8, type);
    return at + RECORD_HEADER_SIZE;
  }

  // Writes the CRC of a record whose body (at `body`, `bodyLength` bytes) is all in the chunk.
  #seal(body: number, bodyLength: number): void {
    const at = body - RECORD_HEADER_SIZE;
    this.#view.setUint32(at, crc32Range(this.#buf, at + 4, body + bodyLength));
  }

  #cut(): void {
    if (this.#end === this.#start) return;
    this.#parts.push(this.#buf.subarray(this.#start, this.#end));
    this.#start = this.#end;
  }
}

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** One record read back. `body` is a view into the bytes read. */
export interface JournalRecord {
  type: RecordType;
  body: Buffer;
  /** Offset of the record in the journal. */
  offset: number;
  /** Offset just after it. */
  end: number;
}

/** Why a record could not be read. */
export const RecordFault = {
  /** The record runs past the end of the bytes (a write cut short, or a damaged length). */
  TRUNCATED: 'truncated',
  /** The CRC does not match, the length is impossible or the type unknown. */
  CORRUPT: 'corrupt',
} as const;
export type RecordFault = (typeof RecordFault)[keyof typeof RecordFault];

/** Reads the record at `offset`: the record, `undefined` at the very end, or why it is bad. */
export function readRecord(bytes: Buffer, offset: number): JournalRecord | RecordFault | undefined {
  const left = bytes.length - offset;
  if (left === 0) return undefined;
  if (left < RECORD_HEADER_SIZE) return RecordFault.TRUNCATED;
  const length = bytes.readUInt32BE(offset + 4);
  const type = bytes[offset + 8] as number;
  if (length > MAX_RECORD_BODY || !KNOWN_TYPES.has(type)) return RecordFault.CORRUPT;
  const end = offset + RECORD_HEADER_SIZE + length;
  if (end > bytes.length) return RecordFault.TRUNCATED;
  if (crc32Range(bytes, offset + 4, end) !== bytes.readUInt32BE(offset)) {
    return RecordFault.CORRUPT;
  }
  return {
    type: type as RecordType,
    body: bytes.subarray(offset + RECORD_HEADER_SIZE, end),
    offset,
    end,
  };
}

/**
 * Whether a well-formed record starts anywhere in `bytes` at or after `from`: tells damage in the
 * middle of a journal (valid records follow it) from a tail cut short by a crash (nothing does).
 */
export function validRecordAfter(bytes: Buffer, from: number): boolean {
  for (let offset = from; offset + RECORD_HEADER_SIZE <= bytes.length; offset++) {
    // Cheap checks first: most offsets fail on the type byte or the length.
    if (!KNOWN_TYPES.has(bytes[offset + 8] as number)) continue;
    const length = bytes.readUInt32BE(offset + 4);
    if (length > MAX_RECORD_BODY || offset + RECORD_HEADER_SIZE + length > bytes.length) continue;
    if (typeof readRecord(bytes, offset) === 'object') return true;
  }
  return false;
}

/** Reads the safe non-negative integer at `offset` of `body`, or -1 when it is not one. */
export function readInteger(body: Buffer, offset: number): number {
  const value = body.readDoubleBE(offset);
  return Number.isSafeInteger(value) && value >= 0 ? value : -1;
}
