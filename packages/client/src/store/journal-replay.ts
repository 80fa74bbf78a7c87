import { Fifo } from '@tether/protocol';
import {
  JOURNAL_MAGIC,
  JOURNAL_VERSION,
  QUEUED_FIXED,
  type RecordFault,
  RecordType,
  readInteger,
  readRecord,
  validRecordAfter,
} from './record-codec.js';

/** A message as the journal holds it. */
export interface JournalEntry {
  /** The journal's own id of the entry: removals name entries not yet transmitted by it. */
  readonly id: number;
  readonly flags: number;
  readonly requestId: number;
  /** Wall-clock ms (Date.now) after which it may no longer be transmitted; 0 for no TTL. */
  readonly expiresAt: number;
  readonly payload: Buffer;
  /** Sequence number once transmitted; 0 while queued. */
  seq: number;
}

/** The outbound state a journal describes. */
export class JournalState {
  clientId: string | undefined;
  /** Highest seq the server acknowledged. */
  acked = 0;
  /** Highest seq assigned. */
  sent = 0;
  /** Transmitted, unacknowledged entries: seqs acked + 1 to sent, in order. */
  readonly inFlight: Fifo<JournalEntry> = new Fifo<JournalEntry>();
  /** Entries never transmitted, oldest first, by id. */
  readonly queued: Map<number, JournalEntry> = new Map();
  /** The id the next entry gets: above every id the journal used. */
  nextId = 1;
  /** Id of the last entry queued: ids grow from one record to the next. */
  #lastId = 0;
  /** Request ids up to this one may have been used. */
  requestIds = 0;
  /** A previous run found the server ahead of this journal. */
  diverged = false;
  /** Records applied. */
  records = 0;

  /** Applies one record; returns why it cannot apply (the journal contradicts itself), if so. */
  apply(type: RecordType, body: Buffer): string | undefined {
    const problem = this.#apply(type, body);
    if (problem === undefined) this.records++;
    return problem;
  }

  #apply(type: RecordType, body: Buffer): string | undefined {
    if (this.records === 0) {
      if (type !== RecordType.HEADER || body.length !== 6) return 'the first record is no header';
      if (body.readUInt32BE(0) !== JOURNAL_MAGIC) return 'the header has the wrong magic';
      return undefined;
    }
    if (this.records === 1) {
      if (type !== RecordType.CLIENT) return 'the second record is no client id';
      this.clientId = body.toString('utf8');
      return undefined;
    }
    switch (type) {
      case RecordType.BASE:
        return this.#base(body);
      case RecordType.QUEUED:
        return this.#queued(body);
      case RecordType.SENT:
        return this.#sent(body);
      case RecordType.ACKED:
        return this.#acked(body);
      case RecordType.REMOVED:
        return this.#removed(body);
      case RecordType.REQUEST_IDS: {
        const upTo = body.length === 8 ? readInteger(body, 0) : -1;
        if (upTo < 0) return 'bad request-id reservation';
        this.requestIds = Math.max(this.requestIds, upTo);
        return undefined;
      }
      case RecordType.DIVERGED:
        this.diverged = true;
        return undefined;
      default:
        return `a record of type ${type} out of place`;
    }
  }

  // A snapshot's starting point: only right after the client id, before any entry.
  #base(body: Buffer): string | undefined {
    if (this.records !== 2 || body.length !== 24) return 'a base record out of place';
    const acked = readInteger(body, 0);
    const nextId = readInteger(body, 8);
    const requestIds = readInteger(body, 16);
    if (acked < 0 || nextId < 1 || requestIds < 0) return 'bad base record';
    this.acked = acked;
    this.sent = acked;
    this.nextId = nextId;
    this.requestIds = requestIds;
    return undefined;
  }

  #queued(body: Buffer): string | undefined {
    if (body.length < QUEUED_FIXED) return 'short queued record';
    const id = readInteger(body, 0);
    const flags = body[8] as number;
    const requestId = readInteger(body, 9);
    const expiresAt = readInteger(body, 17);
    if (id <= this.#lastId) return `entry id ${id} is not new`;
    if (requestId < 0 || expiresAt < 0) return 'bad queued record';
    // A copy: the entry outlives the bytes read.
    const payload = Buffer.from(body.subarray(QUEUED_FIXED));
    this.queued.set(id, { id, flags, requestId, expiresAt, payload, seq: 0 });
    this.#lastId = id;
    this.nextId = Math.max(this.nextId, id + 1);
    return undefined;
  }

  // Seqs go to the oldest queued entries, in order: from `firstId` to `lastId` (a record missing
  // in between shows as another entry at either end). Checked whole before anything changes.
  #sent(body: Buffer): string | undefined {
    const ok = body.length === 24;
    const firstId = ok ? readInteger(body, 0) : -1;
    const lastId = ok ? readInteger(body, 8) : -1;
    const lastSeq = ok ? readInteger(body, 16) : -1;
    if (firstId < 0 || lastId < firstId || lastSeq <= this.sent) return 'bad sent record';
    const count = lastSeq - this.sent;
    if (count > this.queued.size) return `seqs up to ${lastSeq} for fewer queued entries`;
    const taken: JournalEntry[] = [];
    for (const entry of this.queued.values()) {
      taken.push(entry);
      if (taken.length === count) break;
    }
    const first = (taken[0] as JournalEntry).id;
    const last = (taken[taken.length - 1] as JournalEntry).id;
    if (first !== firstId || last !== lastId) {
      return `seqs for entries ${firstId} to ${lastId}, but the queue holds ${first} to ${last}`;
    }
    for (const entry of taken) {
      this.queued.delete(entry.id);
      entry.seq = ++this.sent;
      this.inFlight.push(entry);
    }
    return undefined;
  }

  #acked(body: Buffer): string | undefined {
    const seq = body.length === 8 ? readInteger(body, 0) : -1;
    if (seq < 0 || seq > this.sent) return `acknowledgement of seq ${seq} never sent`;
    while (this.acked < seq) this.acked = (this.inFlight.shift() as JournalEntry).seq;
    return undefined;
  }

  #removed(body: Buffer): string | undefined {
    if (body.length === 0 || body.length % 8 !== 0) return 'bad removed record';
    const ids: number[] = [];
    for (let at = 0; at < body.length; at += 8) {
      const id = readInteger(body, at);
      if (!this.queued.has(id)) return `removal of entry ${id}, which is not queued`;
      ids.push(id);
    }
    for (const id of ids) this.queued.delete(id);
    return undefined;
  }
}

/** Where and how a journal was damaged. */
export interface JournalFault {
  /** Where the valid prefix ends: everything from here on was cut. */
  offset: number;
  /** Whether valid records follow the damage (data in the middle was lost), or only the tail was. */
  inMiddle: boolean;
  /** What was wrong, in words. */
  detail: string;
}

/** A journal read back: the state of its valid prefix and, if it had any, the damage cut. */
export interface Replayed {
  state: JournalState;
  /** Bytes of the valid prefix. */
  validBytes: number;
  fault: JournalFault | undefined;
}

/** Thrown for a journal this code cannot read at all: a format from a newer version. */
export class UnknownJournalVersion extends Error {
  readonly version: number;
  constructor(version: number) {
    super(`journal format ${version} is newer than this client (${JOURNAL_VERSION})`);
    this.version = version;
  }
}

/**
 * Replays a journal: applies its records in order until the end or the first record that is cut
 * short, fails its CRC or contradicts the ones before, and returns the state of that valid
 * prefix. It never throws on damage (only for a newer format) and never applies a damaged record.
 */
export function replayJournal(bytes: Buffer): Replayed {
  const state = new JournalState();
  let offset = 0;
  for (;;) {
    const record = readRecord(bytes, offset);
    if (record === undefined) return { state, validBytes: offset, fault: undefined };
    if (typeof record === 'string') return faulted(state, bytes, offset, describe(record));
    if (state.records === 0 && record.type === RecordType.HEADER && record.body.length >= 6) {
      const version = record.body.readUInt16BE(4);
      if (record.body.readUInt32BE(0) === JOURNAL_MAGIC && version !== JOURNAL_VERSION) {
        throw new UnknownJournalVersion(version);
      }
    }
    const problem = state.apply(record.type, record.body);
    if (problem !== undefined) return faulted(state, bytes, offset, problem);
    offset = record.end;
  }
}

function describe(fault: RecordFault): string {
  return fault === 'truncated' ? 'a record cut short' : 'a record with a bad checksum';
}

function faulted(state: JournalState, bytes: Buffer, offset: number, detail: string): Replayed {
  const inMiddle = validRecordAfter(bytes, offset + 1);
  return { state, validBytes: offset, fault: { offset, inMiddle, detail } };
}
