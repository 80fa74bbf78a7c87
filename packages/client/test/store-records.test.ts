import { crc32 } from '@tether/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32Range } from '../src/store/crc32-range.js';
import {
  JOURNAL_MAGIC,
  RECORD_HEADER_SIZE,
  RecordArena,
  RecordFault,
  RecordType,
  readRecord,
  validRecordAfter,
} from '../src/store/record-codec.js';

function encode(write: (arena: RecordArena) => void): Buffer {
  const arena = new RecordArena();
  write(arena);
  const bytes = arena.bytes;
  const out = Buffer.concat(arena.take());
  expect(out.length).toBe(bytes);
  return out;
}

function records(bytes: Buffer): { type: number; body: Buffer }[] {
  const out: { type: number; body: Buffer }[] = [];
  for (let offset = 0; ; ) {
    const record = readRecord(bytes, offset);
    if (record === undefined) return out;
    if (typeof record === 'string') throw new Error(`${record} at ${offset}`);
    out.push({ type: record.type, body: Buffer.from(record.body) });
    offset = record.end;
  }
}

describe('store records', () => {
  it('store records - crc32Range equals zlib CRC-32 on any range, continuing from any value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (data, a, b) => {
        const bytes = Buffer.from(data);
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (b % (bytes.length - start + 1));
        expect(crc32Range(bytes, start, end)).toBe(crc32(bytes.subarray(start, end)));
        const head = crc32(bytes.subarray(0, start));
        expect(crc32Range(bytes, start, bytes.length, head)).toBe(crc32(bytes));
      }),
      { seed: 15, numRuns: 500 },
    );
  });

  it('store records - an ACKED record is laid out as the format says (hand-built bytes)', () => {
    // length 8, type 0x12, body: 1000 as a big-endian double (0x408f400000000000).
    const tail = Buffer.from('00000008' + '12' + '408f400000000000', 'hex');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tail));
    expect(encode((arena) => arena.acked(1000))).toEqual(Buffer.concat([crc, tail]));
  });

  it('store records - the header record carries the magic and version 1', () => {
    const bytes = encode((arena) => arena.header());
    expect(bytes.readUInt32BE(4)).toBe(6);
    expect(bytes[8]).toBe(RecordType.HEADER);
    expect(bytes.readUInt32BE(RECORD_HEADER_SIZE)).toBe(JOURNAL_MAGIC);
    expect(bytes.toString('latin1', RECORD_HEADER_SIZE, RECORD_HEADER_SIZE + 4)).toBe('TJNL');
    expect(bytes.readUInt16BE(RECORD_HEADER_SIZE + 4)).toBe(1);
  });

  it('store records - every record type reads back as written', () => {
    const payload = Buffer.from('hello');
    const bytes = encode((arena) => {
      arena.header();
      arena.client('sensor-17');
      arena.base(7, 12, 2048);
      arena.queued(12, 1, 5, 1_700_000_000_000, payload);
      arena.sent(12, 12, 8);
      arena.acked(8);
      arena.removed([3, 4]);
      arena.requestIds(4096);
      arena.diverged();
    });
    const read = records(bytes);
    expect(read.map((r) => r.type)).toEqual([
      RecordType.HEADER,
      RecordType.CLIENT,
      RecordType.BASE,
      RecordType.QUEUED,
      RecordType.SENT,
      RecordType.ACKED,
      RecordType.REMOVED,
      RecordType.REQUEST_IDS,
      RecordType.DIVERGED,
    ]);
    expect(read[1]?.body.toString()).toBe('sensor-17');
    const base = read[2]?.body as Buffer;
    expect([base.readDoubleBE(0), base.readDoubleBE(8), base.readDoubleBE(16)]).toEqual([
      7, 12, 2048,
    ]);
    const queued = read[3]?.body as Buffer;
    expect(queued.readDoubleBE(0)).toBe(12);
    expect(queued[8]).toBe(1);
    expect(queued.readDoubleBE(9)).toBe(5);
    expect(queued.readDoubleBE(17)).toBe(1_700_000_000_000);
    expect(queued.subarray(25)).toEqual(payload);
    const sent = read[4]?.body as Buffer;
    expect([sent.readDoubleBE(0), sent.readDoubleBE(8), sent.readDoubleBE(16)]).toEqual([
      12, 12, 8,
    ]);
    expect(read[6]?.body.length).toBe(16);
    expect(read[8]?.body.length).toBe(0);
  });

  it('store records - a large payload written from its own buffer gives the same bytes as a copied one', () => {
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const bytes = encode((arena) => {
      arena.acked(1);
      arena.queued(1, 0, 0, 0, big);
      arena.acked(2);
    });
    const read = records(bytes);
    expect(read.map((r) => r.type)).toEqual([
      RecordType.ACKED,
      RecordType.QUEUED,
      RecordType.ACKED,
    ]);
    expect(read[1]?.body.subarray(25).equals(big)).toBe(true);
  });

  it('store records - many records span several chunks and still read back in order', () => {
    const bytes = encode((arena) => {
      for (let i = 1; i <= 5000; i++) arena.queued(i, 0, 0, 0, Buffer.alloc(100, i & 0xff));
    });
    const read = records(bytes);
    expect(read).toHaveLength(5000);
    expect(
      read.every((r, i) => r.body.readDoubleBE(0) === i + 1 && r.body[25] === ((i + 1) & 0xff)),
    ).toBe(true);
  });

  it('store records - a record cut short reads as truncated, a flipped byte as corrupt', () => {
    const bytes = encode((arena) => arena.queued(1, 0, 0, 0, Buffer.from('payload')));
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(readRecord(bytes.subarray(0, cut), 0)).toBe(RecordFault.TRUNCATED);
    }
    for (let at = 0; at < bytes.length; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = (damaged[at] as number) ^ 0x01;
      const read = readRecord(damaged, 0);
      expect(typeof read === 'string', `flip at ${at}`).toBe(true);
    }
  });

  it('store records - an impossible length or an unknown type is corrupt before any CRC', () => {
    const bytes = encode((arena) => arena.acked(1));
    const long = Buffer.from(bytes);
    long.writeUInt32BE(0xffffffff, 4);
    expect(readRecord(long, 0)).toBe(RecordFault.CORRUPT);
    const unknown = Buffer.from(bytes);
    unknown[8] = 0x7f;
    expect(readRecord(unknown, 0)).toBe(RecordFault.CORRUPT);
  });

  it('store records - validRecordAfter finds a record past damage and nothing in garbage', () => {
    const good = encode((arena) => arena.acked(5));
    const garbage = Buffer.alloc(200, 0xa5);
    expect(validRecordAfter(Buffer.concat([garbage, good]), 1)).toBe(true);
    expect(validRecordAfter(garbage, 0)).toBe(false);
    expect(validRecordAfter(Buffer.concat([good, garbage]), 1)).toBe(false);
  });
});
