import { describe, expect, it } from 'vitest';
import {
  DataFlag,
  ErrorCode,
  encodeAck,
  encodeData,
  OutputBatch,
  ProtocolError,
} from '../src/index.js';

const KiB = 1024;

// Pseudo-random source bytes; each frame copies a different window of it, so a misplaced or
// reordered byte changes the joined stream.
const SOURCE = Buffer.alloc(256 * KiB);
for (let i = 0, x = 1; i < SOURCE.length; i++) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  SOURCE[i] = x >>> 24;
}

/** Frames of the given sizes, each with distinct content. */
function frames(sizes: number[]): Buffer[] {
  let offset = 0;
  return sizes.map((size) => {
    offset = (offset + 4099) % (SOURCE.length - 128 * KiB);
    return Buffer.from(SOURCE.subarray(offset, offset + size));
  });
}

/** A seeded generator of integers in [0, n): the same frames on every run. */
function seededRandom(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
}

function pushAll(batch: OutputBatch, input: Buffer[]): void {
  for (const frame of input) batch.push(frame);
}

describe('output-batch', () => {
  it('output-batch - push returns true only for the first frame of a batch', () => {
    const batch = new OutputBatch();
    expect(batch.push(Buffer.from('a'))).toBe(true);
    expect(batch.push(Buffer.from('bb'))).toBe(false);
    expect(batch.push(Buffer.from('ccc'))).toBe(false);
    expect(batch.bytes).toBe(6);
    batch.take();
    expect(batch.bytes).toBe(0);
    expect(batch.push(Buffer.from('d'))).toBe(true);
    expect(batch.push(Buffer.from('e'))).toBe(false);
  });

  it('output-batch - take on an empty batch gives nothing; one frame is given as is', () => {
    const batch = new OutputBatch();
    expect(batch.take()).toEqual([]);
    const only = Buffer.from('single');
    batch.push(only);
    const out = batch.take();
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(only);
    expect(batch.take()).toEqual([]);
  });

  it('output-batch - small frames are joined into one buffer', () => {
    const batch = new OutputBatch();
    const input = frames([14, 22, 100, 14, 3000]);
    pushAll(batch, input);
    const out = batch.take();
    expect(out).toHaveLength(1);
    expect(out[0]?.equals(Buffer.concat(input))).toBe(true);
    expect(batch.bytes).toBe(0);
  });

  it('output-batch - runs of small frames are cut at about 64 KiB, joined while one staging buffer holds them', () => {
    const batch = new OutputBatch();
    const input = frames(Array.from({ length: 100 }, () => 4 * KiB)); // 400 KiB of 4 KiB frames
    pushAll(batch, input);
    const out = batch.take();
    // Runs of 64 KiB: four fill a 256 KiB staging buffer, the other three start the next.
    expect(out.map((b) => b.length)).toEqual([256 * KiB, 2 * 64 * KiB + 16 * KiB]);
    expect(Buffer.concat(out).equals(Buffer.concat(input))).toBe(true);
  });

  it('output-batch - runs of 64 KiB plus one small frame at most fill staging buffers of 256 KiB', () => {
    const batch = new OutputBatch();
    const sizes = Array.from({ length: 300 }, (_, i) => ((i * 7919) % (16 * KiB - 1)) + 1);
    const input = frames(sizes);
    pushAll(batch, input);
    const out = batch.take();
    expect(out.length).toBeGreaterThan(1);
    expect(out.length).toBeLessThan(input.length / 3);
    // A stage takes runs until the next (under 64 + 16 KiB) does not fit.
    for (const buf of out) expect(buf.length).toBeLessThanOrEqual(256 * KiB);
    for (const buf of out.slice(0, -1)) {
      expect(buf.length).toBeGreaterThan(256 * KiB - (64 * KiB + 16 * KiB));
    }
    expect(Buffer.concat(out).equals(Buffer.concat(input))).toBe(true);
  });

  it('output-batch - frames of 16 KiB and more stay separate and in place', () => {
    const batch = new OutputBatch();
    const input = frames([10, 20, 16 * KiB, 30, 16 * KiB - 1, 100 * KiB, 16 * KiB, 5]);
    pushAll(batch, input);
    const out = batch.take();
    expect(out.map((b) => b.length)).toEqual([
      30,
      16 * KiB,
      30 + 16 * KiB - 1,
      100 * KiB,
      16 * KiB,
      5,
    ]);
    // Large frames are passed through without a copy.
    expect(out[1]).toBe(input[2]);
    expect(out[3]).toBe(input[5]);
    expect(out[4]).toBe(input[6]);
    expect(Buffer.concat(out).equals(Buffer.concat(input))).toBe(true);
  });

  it('output-batch - random mixes keep the byte stream exactly', () => {
    const rand = seededRandom(42);
    const batch = new OutputBatch();
    for (let round = 0; round < 30; round++) {
      const count = rand(60);
      const sizes = Array.from({ length: count }, () =>
        rand(5) === 0 ? 16 * KiB + rand(40 * KiB) : rand(2 * KiB) + 1,
      );
      const input = frames(sizes);
      pushAll(batch, input);
      expect(batch.bytes).toBe(sizes.reduce((a, b) => a + b, 0));
      const out = batch.take();
      expect(Buffer.concat(out).equals(Buffer.concat(input))).toBe(true);
      expect(out.length).toBeLessThanOrEqual(input.length);
      for (const frame of input) {
        if (frame.length >= 16 * KiB) expect(out.includes(frame)).toBe(true);
      }
    }
  });
});

describe('output-batch - DATA frames', () => {
  const encoded = (item: { seq: number; payload: Buffer; flags: number; requestId: number }) =>
    encodeData(item.seq, item.payload, item.flags, item.requestId);

  it('encodes DATA items exactly as encodeData, in order with encoded frames', () => {
    const rand = seededRandom(7);
    const batch = new OutputBatch();
    for (let round = 0; round < 30; round++) {
      const count = rand(50) + 1;
      const expected: Buffer[] = [];
      let bytes = 0;
      for (let i = 0; i < count; i++) {
        const [payload] = frames([rand(4) === 0 ? 16 * KiB + rand(40 * KiB) : rand(3 * KiB)]);
        if (rand(3) === 0) {
          batch.push(payload as Buffer);
          expected.push(payload as Buffer);
        } else {
          const flags = [
            0,
            DataFlag.REQUEST,
            DataFlag.RESPONSE,
            DataFlag.RESPONSE | DataFlag.ERROR,
          ][rand(4)] as number;
          const item = {
            seq: round * 100 + i + 1,
            payload: payload as Buffer,
            flags,
            requestId: rand(1000),
          };
          batch.pushData(item);
          expected.push(encoded(item));
        }
        bytes += (expected.at(-1) as Buffer).length;
        expect(batch.bytes).toBe(bytes);
      }
      const out = batch.take();
      expect(Buffer.concat(out).equals(Buffer.concat(expected))).toBe(true);
      expect(out.length).toBeLessThanOrEqual(expected.length);
    }
  });

  it('encodes ACKs exactly as encodeAck, alone and in order with DATA items and encoded frames', () => {
    const lone = new OutputBatch();
    expect(lone.pushAck(2 ** 40 + 7)).toBe(true);
    expect(lone.bytes).toBe(14);
    expect(Buffer.concat(lone.take()).equals(encodeAck(2 ** 40 + 7))).toBe(true);
    expect(lone.bytes).toBe(0);

    const rand = seededRandom(11);
    const batch = new OutputBatch();
    for (let round = 0; round < 20; round++) {
      const expected: Buffer[] = [];
      const count = rand(20) + 1;
      for (let i = 0; i < count; i++) {
        const kind = rand(3);
        const [payload] = frames([rand(5) === 0 ? 16 * KiB + rand(8 * KiB) : rand(300)]);
        if (kind === 0) {
          const seq = round * 1000 + i;
          const first = batch.pushAck(seq);
          expect(first).toBe(expected.length === 0);
          expected.push(encodeAck(seq));
        } else if (kind === 1) {
          const item = {
            seq: round * 1000 + i + 1,
            payload: payload as Buffer,
            flags: 0,
            requestId: 0,
          };
          batch.pushData(item);
          expected.push(encoded(item));
        } else {
          batch.push(payload as Buffer);
          expected.push(payload as Buffer);
        }
      }
      expect(batch.bytes).toBe(expected.reduce((n, b) => n + b.length, 0));
      expect(Buffer.concat(batch.take()).equals(Buffer.concat(expected))).toBe(true);
    }
  });

  it('refuses an ACK of a sequence that is no u64 it can write, when it is added', () => {
    const batch = new OutputBatch();
    for (const seq of [-1, 1.5, 2 ** 53, Number.NaN]) {
      let caught: unknown;
      try {
        batch.pushAck(seq);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ProtocolError);
      expect((caught as ProtocolError).code).toBe(ErrorCode.INTEGER_OUT_OF_RANGE);
    }
    expect(batch.bytes).toBe(0);
    expect(batch.take()).toEqual([]);
  });

  it('sends a large payload as it is, its header joined to the small frames before it', () => {
    const batch = new OutputBatch();
    const [small, large] = frames([100, 20 * KiB]) as [Buffer, Buffer];
    batch.pushData({ seq: 1, payload: small, flags: 0, requestId: 0 });
    batch.pushData({ seq: 2, payload: large, flags: 0, requestId: 0 });
    const out = batch.take();
    expect(out.map((b) => b.length)).toEqual([14 + 100 + 14, 20 * KiB]);
    expect(out[1]).toBe(large);
    // Alone, a large payload still goes without a copy, after a buffer holding only its header.
    batch.pushData({ seq: 3, payload: large, flags: 0, requestId: 0 });
    const alone = batch.take();
    expect(alone.map((b) => b.length)).toEqual([14, 20 * KiB]);
    expect(alone[1]).toBe(large);
  });

  it('refuses invalid flags when the frame is added, not when the batch is written', () => {
    const batch = new OutputBatch();
    const bad = {
      seq: 1,
      payload: Buffer.from('x'),
      flags: DataFlag.REQUEST | DataFlag.RESPONSE,
      requestId: 1,
    };
    expect(() => batch.pushData(bad)).toThrow(ProtocolError);
    expect(batch.bytes).toBe(0);
    expect(batch.take()).toEqual([]);
  });
});

describe('output-batch - drainTo', () => {
  it('writes every byte in order, corked only around several buffers, and reports the count', () => {
    const calls: string[] = [];
    const written: Buffer[] = [];
    const sink = {
      write: (chunk: Buffer) => {
        calls.push('write');
        written.push(chunk);
      },
      cork: () => calls.push('cork'),
      uncork: () => calls.push('uncork'),
    };
    const batch = new OutputBatch();
    const big = Buffer.alloc(20 * 1024, 7);
    batch.push(Buffer.from('ab'));
    batch.push(big);
    batch.push(Buffer.from('cd'));
    expect(batch.drainTo(sink)).toBe(4 + big.length);
    expect(calls).toEqual(['cork', 'write', 'write', 'write', 'uncork']);
    expect(Buffer.concat(written)).toEqual(
      Buffer.concat([Buffer.from('ab'), big, Buffer.from('cd')]),
    );
    expect(batch.bytes).toBe(0);

    calls.length = 0;
    batch.push(Buffer.from('x'));
    expect(batch.drainTo(sink)).toBe(1);
    expect(calls).toEqual(['write']);
    calls.length = 0;
    expect(batch.drainTo(sink)).toBe(0);
    expect(calls).toEqual([]);
  });

  it('output-batch - take(maxBytes) takes whole frames up to the limit and leaves the rest in order', () => {
    const random = seededRandom(7);
    for (let round = 0; round < 30; round++) {
      const batch = new OutputBatch();
      const input = frames(Array.from({ length: 300 }, () => 1 + random(20 * KiB)));
      const expected = Buffer.concat(input);
      pushAll(batch, input);
      const written: Buffer[] = [];
      const limit = 1 + random(200 * KiB);
      let takes = 0;
      while (batch.bytes > 0) {
        const before = batch.bytes;
        const out = batch.take(limit);
        const bytes = out.reduce((sum, b) => sum + b.length, 0);
        expect(bytes).toBeGreaterThan(0);
        expect(before - batch.bytes).toBe(bytes);
        // At most one run (64 KiB plus a small frame) or one large frame past the limit.
        expect(bytes).toBeLessThan(limit + 80 * KiB);
        written.push(...out.map((b) => Buffer.from(b)));
        batch.settle(random(2) === 0);
        takes++;
      }
      // equals: a deep toEqual of megabytes is slow.
      expect(Buffer.concat(written).equals(expected)).toBe(true);
      if (limit < expected.length / 2) expect(takes).toBeGreaterThan(1);
    }
  });

  it('output-batch - after a partial take, push reports a non-empty batch until all is taken', () => {
    const batch = new OutputBatch();
    pushAll(batch, frames([30 * KiB, 30 * KiB, 30 * KiB]));
    batch.take(1);
    expect(batch.bytes).toBe(60 * KiB);
    expect(batch.push(Buffer.from('a'))).toBe(false);
    batch.take();
    expect(batch.bytes).toBe(0);
    expect(batch.push(Buffer.from('b'))).toBe(true);
  });

  it('output-batch - a staging buffer is written again only after the sink released it', () => {
    // DATA items of 1 KiB: their runs are carved from a staging buffer.
    const payload = Buffer.alloc(KiB, 1);
    const fill = (batch: OutputBatch, from: number): void => {
      for (let seq = from; seq < from + 100; seq++) {
        batch.pushData({ seq, payload, flags: 0, requestId: 0 });
      }
    };
    const batch = new OutputBatch();
    fill(batch, 1);
    const held = batch.take();
    const copy = Buffer.concat(held);
    batch.settle(false); // the sink still holds it
    // Other batches take and release (the process-wide free stages).
    for (let i = 0; i < 10; i++) {
      const other = new OutputBatch();
      fill(other, 1000 + i * 100);
      other.take();
      other.settle(true);
    }
    fill(batch, 101);
    const next = batch.take();
    batch.settle(true);
    const heldMemory = new Set(held.map((b) => b.buffer));
    for (const b of next) expect(heldMemory.has(b.buffer)).toBe(false);
    expect(Buffer.concat(held).equals(copy)).toBe(true);
    // Released: the next take of the same size may use the same memory; the bytes are right.
    fill(batch, 201);
    const again = Buffer.concat(batch.take());
    batch.settle(true);
    const expected = Buffer.concat(
      Array.from({ length: 100 }, (_, i) => encodeData(201 + i, payload)),
    );
    expect(again.equals(expected)).toBe(true);
  });
});

describe('output-batch - staging buffers lent to the sink', () => {
  const payload = Buffer.alloc(KiB, 3);
  const fill = (batch: OutputBatch, from: number, count = 100): void => {
    for (let seq = from; seq < from + count; seq++) {
      batch.pushData({ seq, payload, flags: 0, requestId: 0 });
    }
  };
  const dataStream = (from: number, count: number): Buffer =>
    Buffer.concat(Array.from({ length: count }, (_, i) => encodeData(from + i, payload)));

  it('output-batch - runs carved one after another from a staging buffer go out as one buffer', () => {
    const batch = new OutputBatch();
    // 200 frames of 1 KiB: four 64 KiB runs, all carved from one 256 KiB staging buffer.
    fill(batch, 1, 200);
    const out = batch.take();
    batch.settle(true);
    expect(out).toHaveLength(1);
    expect((out[0] as Buffer).equals(dataStream(1, 200))).toBe(true);
  });

  it('output-batch - a lent stage is written again only after its give-back, once however often it is called', () => {
    const batch = new OutputBatch();
    fill(batch, 1);
    const lent = batch.take();
    const copy = Buffer.concat(lent);
    const giveBack = batch.lend();
    expect(giveBack).toBeTypeOf('function');
    const lentMemory = lent[0]?.buffer;
    // Not given back yet: other batches never carve from it.
    for (let i = 0; i < 6; i++) {
      const other = new OutputBatch();
      fill(other, 1000 + i * 100);
      const out = other.take();
      other.lend();
      for (const b of out) expect(b.buffer).not.toBe(lentMemory);
    }
    expect(Buffer.concat(lent).equals(copy)).toBe(true);
    // Given back (twice: the second call must not hand it out a second time).
    giveBack?.();
    giveBack?.();
    const first = new OutputBatch();
    const second = new OutputBatch();
    fill(first, 2000);
    fill(second, 3000);
    const a = first.take();
    const b = second.take();
    expect(a[0]?.buffer).toBe(lentMemory);
    expect(b[0]?.buffer).not.toBe(lentMemory);
    expect(Buffer.concat(a).equals(dataStream(2000, 100))).toBe(true);
    expect(Buffer.concat(b).equals(dataStream(3000, 100))).toBe(true);
  });

  it('output-batch - lend returns nothing when the take carved no staging buffer', () => {
    const batch = new OutputBatch();
    batch.push(Buffer.from('small'));
    batch.take();
    expect(batch.lend()).toBeUndefined();
  });
});
