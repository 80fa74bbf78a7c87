import { crc32 } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import type { PendingSend } from '../src/outbox.js';
import { type JournalState, replayJournal } from '../src/store/journal-replay.js';
import type { JournalWriter } from '../src/store/journal-writer.js';
import { JournaledOutbound } from '../src/store/journaled-outbound.js';
import { RecordArena, RecordType, readRecord } from '../src/store/record-codec.js';

// Torn and damaged journals: a journal written by the real journaled outbound from a seeded
// random history is truncated, garbled or holed at random offsets, and must replay to exactly
// the state after the last intact record before the damage: never a throw, never a record
// applied that is damaged, never a payload that differs from what was sent.

/** The state a journal should replay to, in comparable form. */
interface Expected {
  clientId: string | undefined;
  acked: number;
  sent: number;
  inFlight: string[];
  queued: string[];
  requestIds: number;
}

const wallExpiry = (expiresAt: number): number =>
  expiresAt === Number.POSITIVE_INFINITY ? 0 : Math.round(expiresAt);

function describeEntry(id: number, seq: number, expiresAt: number, payload: Buffer): string {
  return `${id}/${seq}/${expiresAt}/${payload.length}:${crc32(payload).toString(16)}`;
}

function expectedOf(
  outbound: JournaledOutbound,
  clientId: string | undefined,
  requestIds: number,
): Expected {
  return {
    clientId,
    acked: outbound.acked,
    sent: outbound.sent,
    inFlight: outbound
      .restart()
      .map((e) => describeEntry(e.journalId, e.seq, wallExpiry(e.expiresAt), e.payload)),
    queued: [...outbound.queued()].map((e) =>
      describeEntry(e.journalId, 0, wallExpiry(e.expiresAt), e.payload),
    ),
    requestIds,
  };
}

function replayedOf(state: JournalState): Expected {
  return {
    clientId: state.clientId,
    acked: state.acked,
    sent: state.sent,
    inFlight: [...state.inFlight].map((e) => describeEntry(e.id, e.seq, e.expiresAt, e.payload)),
    queued: [...state.queued.values()].map((e) => describeEntry(e.id, 0, e.expiresAt, e.payload)),
    requestIds: state.requestIds,
  };
}

/** A small seeded PRNG (mulberry32). */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface History {
  bytes: Buffer;
  /** End offset of each record, in order. */
  ends: number[];
  /** State after the first k records (index k), for every k. */
  states: Expected[];
}

function entry(payload: Buffer, expiresAt: number): PendingSend {
  return {
    payload,
    flags: 0,
    requestId: 0,
    seq: 0,
    journalId: 0,
    expiresAt,
    resolve: () => {},
    reject: () => {},
    order: 0,
    publishId: 0,
  };
}

// A journal of `ops` random operations, as the store writes it: a snapshot (of a state built
// before, when `warm`), then one record per operation.
function history(seed: number, ops: number, warm: boolean): History {
  const random = prng(seed);
  const arena = new RecordArena();
  const writer = { arena, touch() {} } as unknown as JournalWriter;
  const outbound = new JournaledOutbound(warm ? 1000 : 0, warm ? 7 : 1, wallExpiry);
  const payload = (): Buffer => {
    // Mostly small; now and then one large enough to be written from its own buffer.
    const length = random(20) === 0 ? 9000 + random(3000) : random(200);
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++) bytes[i] = random(256);
    return bytes;
  };
  const expiry = (): number =>
    random(3) === 0 ? 1_700_000_000_000 + random(1_000_000) : Number.POSITIVE_INFINITY;
  const clientId = 'client-7';
  let requestIds = warm ? 2048 : 0;
  // The states along the snapshot's records, built by hand: header, client id, base, then (when
  // warm) the four entries in flight, their seqs, and the two queued.
  const states: Expected[] = [];
  const empty: Expected = {
    clientId: undefined,
    acked: 0,
    sent: 0,
    inFlight: [],
    queued: [],
    requestIds: 0,
  };
  const base = warm ? 1000 : 0;
  states.push(empty, empty, { ...empty, clientId });
  let state: Expected = { ...empty, clientId, acked: base, sent: base, requestIds };
  states.push(state);
  if (warm) {
    const before: PendingSend[] = [];
    for (let i = 0; i < 6; i++) before.push({ ...entry(payload(), expiry()), journalId: i + 1 });
    const described = (e: PendingSend, seq: number): string =>
      describeEntry(e.journalId, seq, wallExpiry(e.expiresAt), e.payload);
    // The four in flight are queued, then numbered; then the two still queued.
    for (const e of before.slice(0, 4)) {
      state = { ...state, queued: [...state.queued, described(e, 0)] };
      states.push(state);
    }
    state = {
      ...state,
      sent: base + 4,
      inFlight: before.slice(0, 4).map((e, i) => described(e, base + 1 + i)),
      queued: [],
    };
    states.push(state);
    for (const e of before.slice(4)) {
      state = { ...state, queued: [...state.queued, described(e, 0)] };
      states.push(state);
    }
    outbound.restore(before.slice(0, 4), before.slice(4));
  }
  outbound.snapshot(arena, clientId, requestIds, false);
  outbound.attach(writer);
  const ends: number[] = [];
  const chunks: Buffer[] = [];
  let length = 0;
  const collect = (): void => {
    const bytes = Buffer.concat(arena.take());
    chunks.push(bytes);
    for (let at = 0; at < bytes.length; ) {
      const record = readRecord(bytes, at);
      if (typeof record !== 'object') throw new Error('the writer wrote a bad record');
      at = record.end;
      ends.push(length + at);
    }
    length += bytes.length;
  };
  collect();
  if (ends.length !== states.length - 1) throw new Error('the snapshot is not as expected');
  expect(states[states.length - 1]).toEqual(expectedOf(outbound, clientId, requestIds));
  for (let op = 0; op < ops; op++) {
    const before = ends.length;
    const kind = random(10);
    if (kind < 4) outbound.enqueue(entry(payload(), expiry()));
    else if (kind < 6) outbound.takeSendable(1 + random(600));
    else if (kind < 8 && outbound.sent > outbound.acked) {
      outbound.ack(outbound.acked + 1 + random(outbound.sent - outbound.acked));
    } else if (kind === 8) outbound.dropQueued(() => random(3) === 0);
    else if (random(2) === 0) outbound.dropOldestQueued();
    else {
      requestIds += 1024;
      arena.requestIds(requestIds);
    }
    collect();
    if (ends.length > before + 1) throw new Error('one operation wrote several records');
    if (ends.length > before) states.push(expectedOf(outbound, clientId, requestIds));
  }
  return { bytes: Buffer.concat(chunks), ends, states };
}

// Index of the first record whose bytes differ between `a` and `b` (b may be shorter).
function firstDamaged(h: History, damaged: Buffer): number {
  let start = 0;
  for (let i = 0; i < h.ends.length; i++) {
    const end = h.ends[i] as number;
    if (
      end > damaged.length ||
      !damaged.subarray(start, end).equals(h.bytes.subarray(start, end))
    ) {
      return i;
    }
    start = end;
  }
  return h.ends.length;
}

// Whether a record after record `r` is intact (then the damage was in the middle).
function intactAfter(h: History, damaged: Buffer, r: number): boolean {
  for (let i = r + 1; i < h.ends.length; i++) {
    const start = h.ends[i - 1] as number;
    const end = h.ends[i] as number;
    if (
      end <= damaged.length &&
      damaged.subarray(start, end).equals(h.bytes.subarray(start, end))
    ) {
      return true;
    }
  }
  return false;
}

function check(h: History, damaged: Buffer, label: string): void {
  const replayed = replayJournal(damaged);
  const r = firstDamaged(h, damaged);
  const prefixEnd = r === 0 ? 0 : (h.ends[r - 1] as number);
  expect(replayedOf(replayed.state), label).toEqual(h.states[r]);
  expect(replayed.validBytes, label).toBe(prefixEnd);
  // A cut at a record boundary is a shorter journal, not damage.
  if (damaged.length === prefixEnd) {
    expect(replayed.fault, label).toBeUndefined();
    return;
  }
  expect(replayed.fault?.offset, label).toBe(prefixEnd);
  expect(replayed.fault?.inMiddle, label).toBe(intactAfter(h, damaged, r));
}

const HISTORIES = Array.from({ length: 8 }, (_, i) => history(1500 + i, 70, i % 2 === 1));

describe('store torn writes', () => {
  it('store torn writes - every history replays whole to its final state', () => {
    // The histories hold every kind of record, and payloads written from their own buffer.
    const types = new Set<number>();
    let large = 0;
    for (const h of HISTORIES) {
      for (let at = 0; at < h.bytes.length; ) {
        const record = readRecord(h.bytes, at);
        if (typeof record !== 'object') throw new Error('bad history');
        types.add(record.type);
        if (record.type === RecordType.QUEUED && record.body.length > 9000) large++;
        at = record.end;
      }
    }
    expect([...types].sort((a, b) => a - b)).toEqual(
      Object.values(RecordType)
        .filter((t) => t !== RecordType.DIVERGED)
        .sort((a, b) => a - b),
    );
    expect(large).toBeGreaterThan(5);
    for (const h of HISTORIES) {
      const replayed = replayJournal(h.bytes);
      expect(replayed.fault).toBeUndefined();
      expect(replayedOf(replayed.state)).toEqual(h.states[h.states.length - 1]);
      expect(h.states).toHaveLength(h.ends.length + 1);
    }
  });

  it('store torn writes - truncated at 400 random offsets: the state of the records before the cut', () => {
    const random = prng(15_001);
    let cases = 0;
    for (let n = 0; n < 400; n++) {
      const h = HISTORIES[n % HISTORIES.length] as History;
      const cut = random(h.bytes.length + 1);
      check(h, h.bytes.subarray(0, cut), `truncated at ${cut} (history ${n % HISTORIES.length})`);
      cases++;
    }
    expect(cases).toBe(400);
  });

  it('store torn writes - cut inside every record of a history: always the records before it', () => {
    const h = HISTORIES[1] as History;
    for (let i = 0; i < h.ends.length; i++) {
      const start = i === 0 ? 0 : (h.ends[i - 1] as number);
      const end = h.ends[i] as number;
      const mid = start + 1 + Math.floor((end - start - 1) / 2);
      check(h, h.bytes.subarray(0, mid), `cut inside record ${i}`);
      check(h, h.bytes.subarray(0, end), `cut after record ${i}`);
    }
  });

  it('store torn writes - 400 random bursts of garbled bytes: the records before the first one hit', () => {
    const random = prng(15_002);
    for (let n = 0; n < 400; n++) {
      const h = HISTORIES[n % HISTORIES.length] as History;
      const damaged = Buffer.from(h.bytes);
      const at = random(damaged.length);
      const burst = 1 + random(4);
      for (let i = at; i < Math.min(damaged.length, at + burst); i++) {
        damaged[i] = (damaged[i] as number) ^ (1 + random(255));
      }
      check(h, damaged, `garbled ${burst} bytes at ${at} (history ${n % HISTORIES.length})`);
    }
  });

  it('store torn writes - 300 random holes of zeros (a lost block): the records before the hole', () => {
    const random = prng(15_003);
    for (let n = 0; n < 300; n++) {
      const h = HISTORIES[n % HISTORIES.length] as History;
      const damaged = Buffer.from(h.bytes);
      const at = random(damaged.length);
      const length = 1 + random(600);
      damaged.fill(0, at, Math.min(damaged.length, at + length));
      check(h, damaged, `zeros at ${at}+${length} (history ${n % HISTORIES.length})`);
    }
  });

  it('store torn writes - a record removed whole from the middle is caught by the next one that depends on it', () => {
    // SENT names the first and last entry it numbers: a QUEUED record missing in between shows.
    const arena = new RecordArena();
    arena.header();
    arena.client('c');
    arena.base(0, 1, 0);
    const keep = Buffer.concat(arena.take());
    arena.queued(1, 0, 0, 0, Buffer.from('a'));
    const first = Buffer.concat(arena.take());
    arena.queued(2, 0, 0, 0, Buffer.from('b'));
    const missing = Buffer.concat(arena.take());
    arena.queued(3, 0, 0, 0, Buffer.from('c'));
    arena.sent(1, 2, 2);
    const rest = Buffer.concat(arena.take());
    expect(replayJournal(Buffer.concat([keep, first, missing, rest])).fault).toBeUndefined();
    const spliced = replayJournal(Buffer.concat([keep, first, rest]));
    expect(spliced.fault?.offset).toBe(keep.length + first.length + rest.length - 33);
    expect(spliced.state.sent).toBe(0);
  });
});
