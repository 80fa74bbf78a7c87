import { describe, expect, it } from 'vitest';
import {
  DataFlag,
  type DataFrame,
  ErrorCode,
  type Frame,
  FrameDecoder,
  FrameType,
  type LinkOptions,
  MEMORY_LOG,
  type OutboundEntry,
  ProtocolError,
  ReliableInbound,
  ReliableLink,
  ReliableOutbound,
  RttEstimator,
  type RttStats,
  type SessionLog,
} from '../src/index.js';

const P = 5000;
const D = 15_000;
const BIG_WINDOW = 64 * 1024 * 1024;

/** An entry tagged with a name, as owners extend entries with their bookkeeping. */
interface Tagged extends OutboundEntry {
  meta: string;
}

function tagged(payload: Buffer, meta: string, flags = 0, requestId = 0): Tagged {
  return { payload, flags, requestId, seq: 0, meta };
}

/** One end of a simulated connection, with the session state that outlives its links. */
interface Side {
  name: string;
  outbound: ReliableOutbound<Tagged>;
  inbound: ReliableInbound;
  rtt: RttEstimator;
  options: LinkOptions;
  link: ReliableLink<Tagged>;
  /** Decodes what the peer writes to this side, on the current connection. */
  decoder: FrameDecoder;
  /** Payloads delivered to this side's application, with their seqs. */
  delivered: { seq: number; text: string; flags: number; requestId: number }[];
  /** Metas of this side's messages the peer acknowledged (by ACK or by resume). */
  acked: string[];
  rtts: RttStats[];
  flushes: number;
  /** Frames this side wrote that reached the peer, by type. */
  sentFrames: Map<number, number>;
  errors: ProtocolError[];
  /** Highest in-flight payload bytes seen. */
  maxInFlight: number;
  /** The session log the links run over (memory unless a test gives its own). */
  log: SessionLog;
  /** Errors the log's failed commits reported. */
  logFailures: unknown[];
}

function makeLink(side: Side, now: number): ReliableLink<Tagged> {
  return new ReliableLink(
    { outbound: side.outbound, inbound: side.inbound, rttEstimator: side.rtt, log: side.log },
    side.options,
    {
      data: (frame: DataFrame) => {
        side.delivered.push({
          seq: frame.seq,
          text: frame.payload.toString('utf8'),
          flags: frame.flags,
          requestId: frame.requestId,
        });
      },
      acked: (entries: Tagged[]) => {
        for (const entry of entries) side.acked.push(entry.meta);
      },
      rtt: (stats: RttStats) => {
        side.rtts.push(stats);
      },
    },
    {
      flush: () => {
        side.flushes++;
      },
      logFailed: (error) => {
        side.logFailures.push(error);
      },
    },
    now,
  );
}

function makeSide(name: string, now: number, maxInFlightBytes = BIG_WINDOW): Side {
  const side = {
    name,
    outbound: new ReliableOutbound<Tagged>(),
    inbound: new ReliableInbound(),
    rtt: new RttEstimator(),
    options: { heartbeat: { pingIntervalMs: P, deadAfterMs: D }, maxInFlightBytes },
    decoder: new FrameDecoder({ expectPreface: false }),
    delivered: [],
    acked: [],
    rtts: [],
    flushes: 0,
    sentFrames: new Map<number, number>(),
    errors: [],
    maxInFlight: 0,
    log: MEMORY_LOG,
    logFailures: [],
  } as Omit<Side, 'link'> as Side;
  side.link = makeLink(side, now);
  return side;
}

/** Records the in-flight peak; fails when the window is exceeded (one oversized message may go alone). */
function noteInFlight(side: Side): void {
  const bytes = side.outbound.inFlightBytes;
  side.maxInFlight = Math.max(side.maxInFlight, bytes);
  if (bytes > side.options.maxInFlightBytes && side.outbound.inFlightCount > 1) {
    throw new Error(
      `${side.name}: ${bytes} bytes in flight, window ${side.options.maxInFlightBytes}`,
    );
  }
}

/** Feeds bytes `from` wrote into `to`, as one read burst. */
function feed(from: Side, to: Side, chunks: Buffer[], now: number): void {
  for (const chunk of chunks) {
    const error = to.decoder.push(chunk, (frame: Frame) => {
      from.sentFrames.set(frame.type, (from.sentFrames.get(frame.type) ?? 0) + 1);
      to.link.heartbeat.inbound(now);
      const result = to.link.handle(frame, now);
      if (result instanceof ProtocolError) to.errors.push(result);
      else if (result !== true) throw new Error(`frame type ${frame.type} not handled`);
      noteInFlight(to);
    });
    if (error) throw error;
  }
  to.link.endOfBurst();
}

/** Delivers everything `from` has written to `to`, as one read burst. */
function deliver(from: Side, to: Side, now: number): void {
  feed(from, to, from.link.batch.take(), now);
}

/** Exchanges batches until both sides are quiet. */
function settle(a: Side, b: Side, now: number): void {
  for (let round = 0; round < 10_000; round++) {
    if (a.link.batch.bytes === 0 && b.link.batch.bytes === 0) return;
    deliver(a, b, now);
    deliver(b, a, now);
  }
  throw new Error('links never settled');
}

function start(a: Side, b: Side, now: number): void {
  a.link.start([], now);
  noteInFlight(a);
  b.link.start([], now);
  noteInFlight(b);
}

/**
 * The connection drops: each direction loses its pending bytes, except for a prefix the peer
 * read before the cut (possibly ending inside a frame). Then a new connection resumes the session:
 * each side learns what the peer delivered (HELLO/WELCOME), and new links run over the same state.
 */
/** What the simulated link losses did, so tests can check that they really lost something. */
const losses = { reconnects: 0, droppedBytes: 0, cutInsideFrame: 0, resent: 0 };

function reconnect(a: Side, b: Side, now: number, keepA: number, keepB: number): void {
  losses.reconnects++;
  const fromA = Buffer.concat(a.link.batch.take());
  const fromB = Buffer.concat(b.link.batch.take());
  feed(a, b, [fromA.subarray(0, Math.floor(fromA.length * keepA))], now);
  feed(b, a, [fromB.subarray(0, Math.floor(fromB.length * keepB))], now);
  losses.droppedBytes += fromA.length - Math.floor(fromA.length * keepA);
  losses.droppedBytes += fromB.length - Math.floor(fromB.length * keepB);
  if (a.decoder.bufferedBytes > 0) losses.cutInsideFrame++;
  if (b.decoder.bufferedBytes > 0) losses.cutInsideFrame++;
  // Whatever those sides wrote in answer is lost with the connection too.
  a.link.batch.take();
  b.link.batch.take();
  for (const side of [a, b]) {
    const peer = side === a ? b : a;
    const resumed = side.outbound.resume(peer.inbound.delivered);
    if (resumed instanceof ProtocolError) throw resumed;
    for (const entry of resumed.released) side.acked.push(entry.meta);
    losses.resent += resumed.resend.length;
    side.decoder = new FrameDecoder({ expectPreface: false });
    side.link = makeLink(side, now);
    side.link.start(resumed.resend, now);
    noteInFlight(side);
  }
}

function enqueueMany(side: Side, count: number, from = 0, size = 0): void {
  for (let i = from; i < from + count; i++) {
    const text = `${side.name}-${i}`.padEnd(size, '.');
    side.outbound.enqueue(tagged(Buffer.from(text), `${side.name}-${i}`));
  }
}

function expectExactlyOnceInOrder(receiver: Side, sender: Side, count: number): void {
  expect(receiver.delivered.map((d) => d.seq)).toEqual(
    Array.from({ length: count }, (_, i) => i + 1),
  );
  expect(receiver.delivered.map((d) => d.text.replace(/\.+$/, ''))).toEqual(
    Array.from({ length: count }, (_, i) => `${sender.name}-${i}`),
  );
  expect(sender.acked).toEqual(Array.from({ length: count }, (_, i) => `${sender.name}-${i}`));
  expect(sender.outbound.count).toBe(0);
  expect(sender.outbound.bytes).toBe(0);
  expect(receiver.inbound.delivered).toBe(count);
}

const sent = (side: Side, type: number): number => side.sentFrames.get(type) ?? 0;

describe('reliable-link', () => {
  it('reliable-link - 1,000 messages each way are delivered exactly once, in order', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    enqueueMany(a, 1000);
    enqueueMany(b, 1000);
    start(a, b, 0);
    settle(a, b, 1);
    expectExactlyOnceInOrder(b, a, 1000);
    expectExactlyOnceInOrder(a, b, 1000);
    expect(sent(a, FrameType.DATA)).toBe(1000);
    expect(sent(b, FrameType.DATA)).toBe(1000);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('reliable-link - ACKs are coalesced: one per read burst, not one per message', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    start(a, b, 0);
    settle(a, b, 0);
    const initialAcks = sent(b, FrameType.ACK);
    expect(initialAcks).toBe(1); // the repeated ACK every new link starts with
    for (let burst = 0; burst < 10; burst++) {
      enqueueMany(a, 100, burst * 100);
      a.link.pump(burst);
      settle(a, b, burst);
    }
    expectExactlyOnceInOrder(b, a, 1000);
    expect(sent(a, FrameType.DATA)).toBe(1000);
    expect(sent(b, FrameType.ACK) - initialAcks).toBe(10);
    // The side that only sends needs no ACKs after the first.
    expect(sent(a, FrameType.ACK)).toBe(1);
  });

  it('reliable-link - pump keeps in-flight bytes within maxInFlightBytes', () => {
    const window = 1000;
    const a = makeSide('a', 0, window);
    const b = makeSide('b', 0, window);
    enqueueMany(a, 200, 0, 100); // 100-byte payloads: 10 fit the window
    enqueueMany(b, 50, 0, 100);
    start(a, b, 0);
    expect(a.outbound.inFlightBytes).toBe(window);
    expect(a.outbound.inFlightCount).toBe(10);
    expect(a.outbound.queuedCount).toBe(190);
    let rounds = 0;
    while ((a.link.batch.bytes > 0 || b.link.batch.bytes > 0) && rounds < 1000) {
      deliver(a, b, rounds);
      noteInFlight(b);
      deliver(b, a, rounds);
      noteInFlight(a);
      rounds++;
    }
    expect(rounds).toBeGreaterThanOrEqual(20);
    expectExactlyOnceInOrder(b, a, 200);
    expectExactlyOnceInOrder(a, b, 50);
    expect(a.maxInFlight).toBe(window);
  });

  it('reliable-link - a message larger than the window still goes when nothing is in flight', () => {
    const a = makeSide('a', 0, 10);
    const b = makeSide('b', 0, 10);
    enqueueMany(a, 3, 0, 50);
    start(a, b, 0);
    expect(a.outbound.inFlightCount).toBe(1);
    expect(a.outbound.inFlightBytes).toBe(50);
    settle(a, b, 1);
    expectExactlyOnceInOrder(b, a, 3);
    expect(a.maxInFlight).toBe(50);
  });

  it('reliable-link - DATA flags and request ids survive the trip', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    a.outbound.enqueue(tagged(Buffer.from('req'), 'r', DataFlag.REQUEST, 9));
    a.outbound.enqueue(tagged(Buffer.from('plain'), 'p'));
    start(a, b, 0);
    settle(a, b, 0);
    expect(b.delivered).toEqual([
      { seq: 1, text: 'req', flags: DataFlag.REQUEST, requestId: 9 },
      { seq: 2, text: 'plain', flags: 0, requestId: 0 },
    ]);
  });

  it('reliable-link - a PING is answered by a PONG and gives an rtt event with the measured time', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    a.link.ping(1000);
    deliver(a, b, 1010);
    expect(sent(a, FrameType.PING)).toBe(1);
    expect(b.rtts).toEqual([]);
    deliver(b, a, 1042);
    expect(sent(b, FrameType.PONG)).toBe(1);
    expect(a.rtts).toEqual([{ last: 42, min: 42, srtt: 42, rttvar: 21, samples: 1 }]);
    // Sub-millisecond clocks (performance.now()) keep their precision through the stamp.
    a.link.ping(2000.25);
    deliver(a, b, 2000.5);
    deliver(b, a, 2010.75);
    expect(a.rtts).toHaveLength(2);
    expect(a.rtts[1]?.last).toBeCloseTo(10.5, 6);
    expect(a.rtts[1]?.min).toBeCloseTo(10.5, 6);
    expect(a.rtts[1]?.samples).toBe(2);
    expect(a.rtt.stats?.samples).toBe(2);
    // The event carries a snapshot, not the estimator's live object.
    expect(a.rtts[0]).toEqual({ last: 42, min: 42, srtt: 42, rttvar: 21, samples: 1 });
  });

  it('reliable-link - only a PONG that answers one of our PINGs is an RTT sample', () => {
    const a = makeSide('a', 0);
    // Unsolicited PONGs (a flood, or a stale answer): no sample, no event, still handled.
    expect(a.link.handle({ type: FrameType.PONG, stamp: 5_000_000 }, 1000)).toBe(true);
    expect(a.link.handle({ type: FrameType.PONG, stamp: 990_000 }, 1000)).toBe(true);
    expect(a.rtts).toEqual([]);
    a.link.ping(990);
    a.link.handle({ type: FrameType.PONG, stamp: 990_000 }, 1000);
    expect(a.rtts).toEqual([{ last: 10, min: 10, srtt: 10, rttvar: 5, samples: 1 }]);
    // Each PING is answered once: the same PONG again is no second sample.
    a.link.handle({ type: FrameType.PONG, stamp: 990_000 }, 1020);
    expect(a.rtts).toHaveLength(1);
    // On a link slower than the ping interval, the answer to an earlier PING still counts.
    a.link.ping(2000);
    a.link.ping(2500);
    a.link.handle({ type: FrameType.PONG, stamp: 2_000_000 }, 2600);
    expect(a.rtts.at(-1)?.last).toBe(600);
    a.link.handle({ type: FrameType.PONG, stamp: 2_500_000 }, 2610);
    expect(a.rtts.at(-1)?.last).toBe(110);
    expect(a.rtt.stats?.samples).toBe(3);
  });

  it('reliable-link - check() writes a PING when the heartbeat asks, and only then', () => {
    const a = makeSide('a', 0);
    expect(a.link.check(4999, 4999)).toMatchObject({ ping: false, dead: false, wakeAt: P });
    expect(a.link.batch.bytes).toBe(0);
    expect(a.flushes).toBe(0);
    expect(a.link.check(P, P)).toMatchObject({ ping: true, dead: false });
    expect(a.flushes).toBe(1);
    const frames: Frame[] = [];
    const decoder = new FrameDecoder({ expectPreface: false });
    for (const buf of a.link.batch.take()) decoder.push(buf, (f) => frames.push(f));
    expect(frames).toEqual([{ type: FrameType.PING, stamp: P * 1000 }]);
    expect(a.link.check(P + 1, P + 1).ping).toBe(false);
    expect(a.link.batch.bytes).toBe(0);
  });

  it('reliable-link - an explicit ping() postpones the heartbeat PING', () => {
    const a = makeSide('a', 0);
    a.link.ping(4000);
    a.link.batch.take();
    expect(a.link.check(P, P)).toMatchObject({ ping: false, wakeAt: 9000 });
    expect(a.link.batch.bytes).toBe(0);
    expect(a.link.check(9000, 9000).ping).toBe(true);
  });

  it('reliable-link - messages resent by start() wait for an ACK under the heartbeat', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    enqueueMany(a, 1);
    start(a, b, 0);
    a.link.batch.take(); // lost with the link
    const t0 = 1000;
    a.link = makeLink(a, t0);
    a.decoder = new FrameDecoder({ expectPreface: false });
    a.link.start(a.outbound.restart(), t0);
    a.link.batch.take(); // lost again: the peer never acknowledges
    for (let t = t0 + 100; t < t0 + D; t += 100) {
      a.link.heartbeat.inbound(t); // yet the peer keeps talking
      expect(a.link.check(t, t).dead).toBe(false);
    }
    expect(a.link.check(t0 + D, t0 + D).dead).toBe(true);
  });

  it('reliable-link - flush is requested once per batch', () => {
    const a = makeSide('a', 0);
    enqueueMany(a, 5);
    a.link.start([], 0); // ACK + 5 DATA
    expect(a.flushes).toBe(1);
    a.link.ping(1);
    expect(a.flushes).toBe(1);
    a.link.batch.take();
    a.link.ping(2);
    expect(a.flushes).toBe(2);
  });

  it('reliable-link - unacknowledged DATA is found dead even while inbound bytes arrive', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    enqueueMany(a, 1);
    start(a, b, 0);
    a.link.batch.take(); // the DATA never reaches b
    for (let t = 100; t < D; t += 100) {
      b.link.ping(t); // b keeps talking
      deliver(b, a, t);
      expect(a.link.check(t, t).dead).toBe(false);
    }
    expect(a.link.check(D, D).dead).toBe(true);
  });

  it('reliable-link - an ACK that releases data counts as progress for the heartbeat', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    enqueueMany(a, 1);
    start(a, b, 0);
    deliver(a, b, 100);
    b.link.batch.take(); // b's ACK is lost
    b.inbound.resetAck();
    b.link.endOfBurst(); // b repeats its ACK at 14000
    deliver(b, a, 14_000);
    expect(a.acked).toEqual(['a-0']);
    expect(a.link.check(D, D).dead).toBe(false);
    expect(a.link.check(14_000 + D - 1, 14_000 + D - 1).dead).toBe(false);
    expect(a.link.check(14_000 + D, 14_000 + D).dead).toBe(true);
  });

  it('reliable-link - a gap in DATA sequences is SEQUENCE_GAP from handle()', () => {
    const b = makeSide('b', 0);
    const frame = (seq: number): DataFrame => ({
      type: FrameType.DATA,
      flags: 0,
      seq,
      requestId: 0,
      payload: Buffer.from(`m${seq}`),
    });
    expect(b.link.handle(frame(1), 0)).toBe(true);
    const gap = b.link.handle(frame(3), 0);
    expect(gap).toBeInstanceOf(ProtocolError);
    expect((gap as ProtocolError).code).toBe(ErrorCode.SEQUENCE_GAP);
    expect(b.delivered.map((d) => d.seq)).toEqual([1]);
    expect(b.inbound.delivered).toBe(1);
  });

  it('reliable-link - an ACK beyond what was sent is ACK_OUT_OF_RANGE from handle()', () => {
    const a = makeSide('a', 0);
    enqueueMany(a, 2);
    a.link.start([], 0);
    const error = a.link.handle({ type: FrameType.ACK, seq: 3 }, 0);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe(ErrorCode.ACK_OUT_OF_RANGE);
    expect(a.acked).toEqual([]);
  });

  it('reliable-link - frames outside the reliable stream are left to the owner', () => {
    const a = makeSide('a', 0);
    const goaway: Frame = { type: FrameType.GOAWAY, body: { reason: 'drain', retryAfterMs: 10 } };
    expect(a.link.handle(goaway, 0)).toBe(false);
    expect(a.link.batch.bytes).toBe(0);
  });

  it('reliable-link - resume after link loss: no loss and no duplicates when frames in flight were dropped', () => {
    const a = makeSide('a', 0, 2000);
    const b = makeSide('b', 0, 2000);
    enqueueMany(a, 300, 0, 100);
    enqueueMany(b, 300, 0, 100);
    start(a, b, 0);
    deliver(a, b, 1); // b delivers a-0..a-19 and queues its ACK
    deliver(b, a, 2); // a delivers b-0..b-19, releases its 20, sends the next 20
    a.link.batch.take(); // lost: a's next 20 DATA and its ACK
    deliver(b, a, 3);
    expect(b.delivered).toHaveLength(20);
    expect(a.delivered).toHaveLength(20);
    expect(a.outbound.inFlightCount).toBe(20);

    reconnect(a, b, 10, 0, 0);
    expect(a.link.batch.bytes).toBeGreaterThan(0);
    settle(a, b, 11);
    expectExactlyOnceInOrder(b, a, 300);
    expectExactlyOnceInOrder(a, b, 300);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('reliable-link - repeated losses mid-frame at random points never lose or duplicate', () => {
    let state = 2024;
    const rand = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 4294967296;
    };
    const a = makeSide('a', 0, 3000);
    const b = makeSide('b', 0, 3000);
    let nextA = 0;
    let nextB = 0;
    const before = { ...losses };
    start(a, b, 0);
    for (let step = 1; step <= 400; step++) {
      const r = rand();
      if (r < 0.2) {
        const n = Math.floor(rand() * 20);
        enqueueMany(a, n, nextA, Math.floor(rand() * 200));
        nextA += n;
        a.link.pump(step);
      } else if (r < 0.4) {
        const n = Math.floor(rand() * 20);
        enqueueMany(b, n, nextB, Math.floor(rand() * 200));
        nextB += n;
        b.link.pump(step);
      } else if (r < 0.6) {
        deliver(a, b, step);
      } else if (r < 0.8) {
        deliver(b, a, step);
      } else if (r < 0.85) {
        a.link.batch.take(); // a whole write lost, then the link drops
        reconnect(a, b, step, rand(), rand());
      } else if (r < 0.9) {
        reconnect(a, b, step, rand(), rand());
      }
      noteInFlight(a);
      noteInFlight(b);
    }
    reconnect(a, b, 500, 1, 1);
    settle(a, b, 501);
    expect(nextA).toBeGreaterThan(100);
    expect(nextB).toBeGreaterThan(100);
    // The run really lost data, cut frames in half and resent.
    expect(losses.reconnects - before.reconnects).toBeGreaterThan(20);
    expect(losses.droppedBytes - before.droppedBytes).toBeGreaterThan(10_000);
    expect(losses.cutInsideFrame - before.cutInsideFrame).toBeGreaterThan(10);
    expect(losses.resent - before.resent).toBeGreaterThan(50);
    expectExactlyOnceInOrder(b, a, nextA);
    expectExactlyOnceInOrder(a, b, nextB);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('reliable-link - resent messages the peer already delivered are dropped and acknowledged again', () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    enqueueMany(a, 5);
    start(a, b, 0);
    deliver(a, b, 1);
    b.link.batch.take(); // b's ACK of 5 is lost with the link
    expect(a.outbound.inFlightCount).toBe(5);
    // The sender does not know what was delivered: it resends everything in flight.
    a.link = makeLink(a, 2);
    b.link = makeLink(b, 2);
    a.decoder = new FrameDecoder({ expectPreface: false });
    b.decoder = new FrameDecoder({ expectPreface: false });
    a.link.start(a.outbound.restart(), 2);
    b.link.start([], 2);
    settle(a, b, 3);
    expect(b.delivered.map((d) => d.text)).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    expect(sent(a, FrameType.DATA)).toBe(10);
    expect(a.acked).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    expect(a.outbound.count).toBe(0);
  });
});

/** A durable log held by the test: records, and commits only when the test says so. */
class ManualLog implements SessionLog {
  readonly records: string[] = [];
  #waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  sent(entries: readonly OutboundEntry[]): void {
    this.records.push(`sent ${entries.map((e) => e.seq).join(',')}`);
  }
  acked(seq: number): void {
    this.records.push(`acked ${seq}`);
  }
  delivered(seq: number): void {
    this.records.push(`delivered ${seq}`);
  }
  commit(): Promise<void> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
  /** Makes every commit asked so far durable (or fails them). */
  async settle(error?: Error): Promise<void> {
    for (const waiter of this.#waiters.splice(0)) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
    // Let the link's continuations run.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

describe('reliable-link - a durable session log', () => {
  function withLog(side: Side, log: SessionLog): void {
    side.log = log;
    side.link = makeLink(side, 0);
  }

  it('log - new DATA leaves only once its sequence numbers are committed, in order', async () => {
    const a = makeSide('a', 0);
    const log = new ManualLog();
    withLog(a, log);
    enqueueMany(a, 2);
    a.link.start([], 0);
    enqueueMany(a, 1, 2);
    a.link.pump(0);
    // start() repeats the ACK of what was delivered (0 here) first, as every new link does.
    expect(log.records).toEqual(['delivered 0', 'sent 1,2', 'sent 3']);
    expect(a.link.batch.bytes).toBe(0);
    await log.settle();
    const b = makeSide('b', 0);
    deliver(a, b, 0);
    expect(b.delivered.map((d) => d.seq)).toEqual([1, 2, 3]);
  });

  it('log - an ACK leaves only once the delivered position it carries is committed', async () => {
    const a = makeSide('a', 0);
    const b = makeSide('b', 0);
    const log = new ManualLog();
    withLog(b, log);
    enqueueMany(a, 3);
    a.link.pump(0);
    deliver(a, b, 0);
    // Delivered to b's application, recorded, not yet acknowledged.
    expect(b.delivered).toHaveLength(3);
    expect(log.records).toEqual(['delivered 3']);
    expect(b.link.batch.bytes).toBe(0);
    await log.settle();
    deliver(b, a, 0);
    expect(a.acked).toEqual(['a-0', 'a-1', 'a-2']);
    // ...and the acknowledgement b received for its own messages is recorded too.
    enqueueMany(b, 1);
    b.link.pump(0);
    await log.settle();
    deliver(b, a, 0);
    deliver(a, b, 0);
    expect(log.records).toEqual(['delivered 3', 'sent 1', 'acked 1']);
  });

  it('log - a failed commit sends nothing that depends on it and is reported; a closed link sends nothing', async () => {
    const a = makeSide('a', 0);
    const log = new ManualLog();
    withLog(a, log);
    enqueueMany(a, 1);
    a.link.pump(0);
    await log.settle(new Error('store down'));
    expect(a.link.batch.bytes).toBe(0);
    expect(a.logFailures).toHaveLength(1);

    const c = makeSide('c', 0);
    const log2 = new ManualLog();
    withLog(c, log2);
    enqueueMany(c, 1);
    c.link.pump(0);
    c.link.close();
    await log2.settle();
    expect(c.link.batch.bytes).toBe(0);
  });
});
