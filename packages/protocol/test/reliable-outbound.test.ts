import { describe, expect, it } from 'vitest';
import { ErrorCode, type OutboundEntry, ProtocolError, ReliableOutbound } from '../src/index.js';

/** An entry tagged with a name, as owners extend entries with their bookkeeping. */
interface Tagged extends OutboundEntry {
  meta: string;
}

type Out = ReliableOutbound<Tagged>;

function tagged(payload: Buffer, meta: string, flags = 0, requestId = 0): Tagged {
  return { payload, flags, requestId, seq: 0, meta };
}

function payload(size: number, fill = 0x61): Buffer {
  return Buffer.alloc(size, fill);
}

/** Enqueues one message per size, with meta m0, m1, ... (continuing from `from`). */
function enqueueSizes(out: Out, sizes: number[], from = 0): void {
  sizes.forEach((size, i) => {
    out.enqueue(tagged(payload(size), `m${from + i}`));
  });
}

const metas = (entries: Tagged[]): string[] => entries.map((e) => e.meta);
const seqs = (entries: Tagged[]): number[] => entries.map((e) => e.seq);

function released(result: Tagged[] | ProtocolError): Tagged[] {
  if (result instanceof ProtocolError) throw result;
  return result;
}

/** Checks the counters against a recount of what the object says it holds. */
function expectBookkeeping(
  out: Out,
  expected: { queued: number; inFlight: number; queuedBytes: number; inFlightBytes: number },
): void {
  let queuedCount = 0;
  let queuedBytes = 0;
  for (const entry of out.queued()) {
    queuedCount++;
    queuedBytes += entry.payload.length;
  }
  const actual = {
    queuedCount: out.queuedCount,
    inFlightCount: out.inFlightCount,
    count: out.count,
    inFlightBytes: out.inFlightBytes,
    bytes: out.bytes,
    recountQueued: queuedCount,
    recountQueuedBytes: queuedBytes,
  };
  const want = {
    queuedCount: expected.queued,
    inFlightCount: expected.inFlight,
    count: expected.queued + expected.inFlight,
    inFlightBytes: expected.inFlightBytes,
    bytes: expected.queuedBytes + expected.inFlightBytes,
    recountQueued: expected.queued,
    recountQueuedBytes: expected.queuedBytes,
  };
  // One comparison per call keeps the 2,000-step model run fast.
  if (JSON.stringify(actual) !== JSON.stringify(want)) expect(actual).toEqual(want);
}

describe('reliable-outbound', () => {
  it('reliable-outbound - enqueue keeps fields and leaves seq 0 until transmission', () => {
    const out: Out = new ReliableOutbound();
    const entry = out.enqueue(tagged(Buffer.from('hi'), 'meta', 0x01, 77));
    expect(entry).toEqual({
      payload: Buffer.from('hi'),
      flags: 0x01,
      requestId: 77,
      seq: 0,
      meta: 'meta',
    });
    expect(out.sent).toBe(0);
    expect(out.acked).toBe(0);
    expectBookkeeping(out, { queued: 1, inFlight: 0, queuedBytes: 2, inFlightBytes: 0 });
    const [sent] = out.takeSendable();
    expect(sent).toBe(entry);
    expect(entry.seq).toBe(1);
    expect(out.sent).toBe(1);
  });

  it('reliable-outbound - seqs are assigned at transmission: a dropped queued message leaves no gap', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 2, 3, 4, 5]);
    expect(metas(out.dropQueued((e) => e.meta === 'm1' || e.meta === 'm3'))).toEqual(['m1', 'm3']);
    expect(out.dropOldestQueued()?.meta).toBe('m0');
    const sent = out.takeSendable();
    expect(metas(sent)).toEqual(['m2', 'm4']);
    expect(seqs(sent)).toEqual([1, 2]);
    expect(out.sent).toBe(2);
    expectBookkeeping(out, { queued: 0, inFlight: 2, queuedBytes: 0, inFlightBytes: 8 });
  });

  it('reliable-outbound - oldest() is the first in flight, else the first queued, else undefined', () => {
    const out: Out = new ReliableOutbound();
    expect(out.oldest()).toBeUndefined();
    enqueueSizes(out, [1, 2, 3]);
    expect(out.oldest()?.meta).toBe('m0');
    out.takeSendable(1);
    expect(out.oldest()?.meta).toBe('m0');
    released(out.ack(1));
    expect(out.oldest()?.meta).toBe('m1');
    out.dropQueued((e) => e.meta === 'm1');
    expect(out.oldest()?.meta).toBe('m2');
    out.takeSendable();
    released(out.ack(2));
    expect(out.oldest()).toBeUndefined();
  });

  it('reliable-outbound - takeSendable respects the in-flight byte window', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [400, 400, 400, 400]);
    expect(seqs(out.takeSendable(1000))).toEqual([1, 2]);
    expect(out.inFlightBytes).toBe(800);
    expect(out.takeSendable(1000)).toEqual([]);
    released(out.ack(1));
    expect(out.inFlightBytes).toBe(400);
    expect(seqs(out.takeSendable(1000))).toEqual([3]);
    released(out.ack(3));
    // Exactly filling the window is allowed.
    expect(seqs(out.takeSendable(400))).toEqual([4]);
    expectBookkeeping(out, { queued: 0, inFlight: 1, queuedBytes: 0, inFlightBytes: 400 });
  });

  it('reliable-outbound - takeSendable always sends one message when none is in flight', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [5000, 10]);
    expect(seqs(out.takeSendable(1000))).toEqual([1]);
    expect(out.takeSendable(1000)).toEqual([]);
    released(out.ack(1));
    expect(seqs(out.takeSendable(0))).toEqual([2]);
    expect(out.takeSendable(0)).toEqual([]);
  });

  it('reliable-outbound - a cumulative ack releases in order, oldest first', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 2, 3, 4, 5]);
    out.takeSendable();
    const first = released(out.ack(3));
    expect(metas(first)).toEqual(['m0', 'm1', 'm2']);
    expect(seqs(first)).toEqual([1, 2, 3]);
    expect(out.acked).toBe(3);
    expectBookkeeping(out, { queued: 0, inFlight: 2, queuedBytes: 0, inFlightBytes: 9 });
    expect(metas(released(out.ack(5)))).toEqual(['m3', 'm4']);
    expect(out.acked).toBe(5);
    expectBookkeeping(out, { queued: 0, inFlight: 0, queuedBytes: 0, inFlightBytes: 0 });
  });

  it('reliable-outbound - a stale or repeated ack releases nothing', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 1, 1]);
    out.takeSendable();
    released(out.ack(2));
    expect(released(out.ack(2))).toEqual([]);
    expect(released(out.ack(1))).toEqual([]);
    expect(released(out.ack(0))).toEqual([]);
    expect(out.acked).toBe(2);
    expect(out.inFlightCount).toBe(1);
  });

  it('reliable-outbound - an ack beyond what was sent is ACK_OUT_OF_RANGE and changes nothing', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 1, 1]);
    out.takeSendable(1); // only seq 1 goes
    const error = out.ack(2);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe(ErrorCode.ACK_OUT_OF_RANGE);
    expect(out.acked).toBe(0);
    expectBookkeeping(out, { queued: 2, inFlight: 1, queuedBytes: 2, inFlightBytes: 1 });
    const fresh: Out = new ReliableOutbound();
    expect((fresh.ack(1) as ProtocolError).code).toBe(ErrorCode.ACK_OUT_OF_RANGE);
  });

  it('reliable-outbound - resume(peerDelivered) releases what the peer has and resends the rest', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [10, 20, 30, 40, 50, 60]);
    out.takeSendable(100); // 1..4 in flight (100 bytes), 5 and 6 queued
    released(out.ack(1));
    const result = out.resume(3);
    if (result instanceof ProtocolError) throw result;
    expect(metas(result.released)).toEqual(['m1', 'm2']);
    expect(seqs(result.resend)).toEqual([4]);
    expect(out.acked).toBe(3);
    expectBookkeeping(out, { queued: 2, inFlight: 1, queuedBytes: 110, inFlightBytes: 40 });
    // Nothing delivered beyond what we knew: everything in flight is resent, in order.
    const again = out.resume(3);
    if (again instanceof ProtocolError) throw again;
    expect(again.released).toEqual([]);
    expect(seqs(again.resend)).toEqual([4]);
  });

  it('reliable-outbound - resume beyond what was sent is ACK_OUT_OF_RANGE', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 1]);
    out.takeSendable();
    const result = out.resume(3);
    expect(result).toBeInstanceOf(ProtocolError);
    expect((result as ProtocolError).code).toBe(ErrorCode.ACK_OUT_OF_RANGE);
    expect(out.inFlightCount).toBe(2);
  });

  it('reliable-outbound - restart returns every in-flight message with its seq, keeping them in flight', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 2, 3, 4]);
    out.takeSendable(3); // 1 and 2
    released(out.ack(1));
    out.takeSendable(); // 3 and 4
    const resend = out.restart();
    expect(seqs(resend)).toEqual([2, 3, 4]);
    expect(metas(resend)).toEqual(['m1', 'm2', 'm3']);
    expectBookkeeping(out, { queued: 0, inFlight: 3, queuedBytes: 0, inFlightBytes: 9 });
    expect(metas(released(out.ack(4)))).toEqual(['m1', 'm2', 'm3']);
  });

  it('reliable-outbound - constructing with acked=N continues sequences at N+1', () => {
    const out: Out = new ReliableOutbound(41);
    expect(out.acked).toBe(41);
    expect(out.sent).toBe(41);
    expect(released(out.ack(41))).toEqual([]);
    expect((out.ack(42) as ProtocolError).code).toBe(ErrorCode.ACK_OUT_OF_RANGE);
    enqueueSizes(out, [1, 1]);
    expect(seqs(out.takeSendable())).toEqual([42, 43]);
    expect(metas(released(out.ack(42)))).toEqual(['m0']);
  });

  it('reliable-outbound - dropOldestQueued takes from the queue only, never from flight', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [5, 6]);
    out.takeSendable();
    expect(out.dropOldestQueued()).toBeUndefined();
    enqueueSizes(out, [7, 8], 2);
    expect(out.dropOldestQueued()?.meta).toBe('m2');
    expectBookkeeping(out, { queued: 1, inFlight: 2, queuedBytes: 8, inFlightBytes: 11 });
    expect(out.dropQueued(() => true).map((e) => e.seq)).toEqual([0]);
    expectBookkeeping(out, { queued: 0, inFlight: 2, queuedBytes: 0, inFlightBytes: 11 });
  });

  it('reliable-outbound - clear returns everything, in flight first, and zeroes the counters', () => {
    const out: Out = new ReliableOutbound();
    enqueueSizes(out, [1, 2, 3, 4]);
    out.takeSendable(3);
    const all = out.clear();
    expect(metas(all)).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(seqs(all)).toEqual([1, 2, 0, 0]);
    expectBookkeeping(out, { queued: 0, inFlight: 0, queuedBytes: 0, inFlightBytes: 0 });
    expect(out.clear()).toEqual([]);
  });

  it('reliable-outbound - bytes and counts stay exact through a long random run', () => {
    // Model-based: a reference model of queued and in-flight payload sizes, checked after every step.
    let state = 12345;
    const rand = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const out: Out = new ReliableOutbound(7);
    let queued: { meta: string; size: number }[] = [];
    let inFlight: { meta: string; size: number; seq: number }[] = [];
    let nextSeq = 8;
    let n = 0;
    for (let step = 0; step < 2000; step++) {
      const op = rand(6);
      if (op <= 1) {
        const size = rand(300);
        const meta = `m${n++}`;
        out.enqueue(tagged(payload(size), meta));
        queued.push({ meta, size });
      } else if (op === 2) {
        const window = rand(1500);
        const sent = out.takeSendable(window);
        const expected: typeof inFlight = [];
        let bytes = inFlight.reduce((s, e) => s + e.size, 0);
        while (queued.length > 0) {
          const next = queued[0] as { meta: string; size: number };
          if (bytes + next.size > window && inFlight.length + expected.length > 0) break;
          queued.shift();
          bytes += next.size;
          expected.push({ ...next, seq: nextSeq++ });
        }
        expect(sent.map((e) => [e.meta, e.seq])).toEqual(expected.map((e) => [e.meta, e.seq]));
        inFlight.push(...expected);
      } else if (op === 3 && inFlight.length > 0) {
        const k = rand(inFlight.length + 1);
        const upTo = k === 0 ? out.acked : (inFlight[k - 1] as { seq: number }).seq;
        expect(metas(released(out.ack(upTo)))).toEqual(inFlight.slice(0, k).map((e) => e.meta));
        inFlight = inFlight.slice(k);
      } else if (op === 4) {
        const mod = rand(3) + 2;
        const dropped = out.dropQueued((e) => Number(e.meta.slice(1)) % mod === 0);
        expect(metas(dropped)).toEqual(
          queued.filter((e) => Number(e.meta.slice(1)) % mod === 0).map((e) => e.meta),
        );
        queued = queued.filter((e) => Number(e.meta.slice(1)) % mod !== 0);
      } else if (op === 5) {
        expect(out.dropOldestQueued()?.meta).toBe(queued.shift()?.meta);
      }
      expectBookkeeping(out, {
        queued: queued.length,
        inFlight: inFlight.length,
        queuedBytes: queued.reduce((s, e) => s + e.size, 0),
        inFlightBytes: inFlight.reduce((s, e) => s + e.size, 0),
      });
      if (out.sent !== nextSeq - 1) expect(out.sent).toBe(nextSeq - 1);
    }
    expect(n).toBeGreaterThan(500);
  });
});
