import { EventEmitter } from 'node:events';
import {
  ErrorCode,
  encodeAck,
  encodeData,
  encodeHello,
  encodePing,
  type Frame,
  FrameType,
  type OutboundEntry,
  PREFACE,
  PROTOCOL_VERSION,
  ReliableOutbound,
  type TetherError,
} from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { Connection, type ConnectionOwner, type OpenOptions } from '../src/connection.js';
import { Deadlines } from '../src/deadlines.js';
import { type MemoryTransport, memoryTransportPair } from '../src/memory-transport.js';
import { VirtualScheduler } from '../src/scheduler.js';
import { Session } from '../src/session.js';
import type { Transport } from '../src/transport.js';

/** A session that records what its link hands it. */
class RecordingSession extends Session<OutboundEntry> {
  readonly delivered: number[] = [];
  constructor() {
    super(new ReliableOutbound<OutboundEntry>());
  }
  override data(frame: { seq: number }): void {
    this.delivered.push(frame.seq);
  }
  override acked(): void {}
  override rtt(): void {}
  protected override makeFiles(): never {
    throw new Error('no files in these tests');
  }
}

const OPEN: OpenOptions = {
  heartbeat: { pingIntervalMs: 100, deadAfterMs: 400 },
  maxInFlightBytes: 1 << 20,
  maxFrame: 1 << 20,
  peerMaxFrame: 1 << 20,
  deadCode: ErrorCode.EVICTED,
};

/**
 * A connection whose handshake opens the session at the first HELLO; `peer` is the other end of
 * its transport, driven by hand.
 */
function harness(options: { frameTimeoutMs?: number; replyBacklogLimit?: number } = {}) {
  const scheduler = new VirtualScheduler();
  const [mine, peer] = memoryTransportPair(scheduler);
  const closed: { code: string; silentMs: number | undefined }[] = [];
  const session = new RecordingSession();
  const owner: ConnectionOwner<OutboundEntry> = {
    handshakeFrame: (connection, frame: Frame) => {
      if (frame.type === FrameType.HELLO) connection.open(session, OPEN, []);
    },
    handshakeExpired: (connection) => connection.fail(new Error('late') as unknown as TetherError),
    control: () => false,
    closed: (_connection, error, silentMs) => closed.push({ code: error.code, silentMs }),
  };
  const deadlines = new Deadlines<Connection<OutboundEntry>>(scheduler, (c, at) => c.deadline(at));
  const connection = new Connection(
    mine,
    owner,
    {
      scheduler,
      deadlines,
      maxFrame: 1 << 20,
      replyBacklogLimit: options.replyBacklogLimit ?? 1 << 20,
      ...(options.frameTimeoutMs === undefined ? {} : { frameTimeoutMs: options.frameTimeoutMs }),
    },
    'memory',
  );
  const hello = (): void => {
    peer.write(PREFACE);
    peer.write(
      encodeHello({
        versions: [PROTOCOL_VERSION],
        clientId: 'c',
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
      }),
    );
    scheduler.runDeferred();
  };
  return { scheduler, connection, peer, closed, session, hello };
}

function count(peer: MemoryTransport): { bytes: number } {
  const seen = { bytes: 0 };
  peer.on('data', (chunk: Uint8Array) => {
    seen.bytes += chunk.length;
  });
  return seen;
}

describe('connection', () => {
  it('connection - a peer flooding frames gets 256 KiB per event-loop turn, then waits for the next', () => {
    const { scheduler, connection, peer, session, hello } = harness();
    hello();
    expect(connection.established).toBe(true);
    // 1 MiB of tiny messages arrives at once.
    const frames: Buffer[] = [];
    for (let seq = 1; frames.length * 26 < 1 << 20; seq++)
      frames.push(encodeData(seq, Buffer.alloc(8)));
    for (let i = 0; i < frames.length; i += 2048)
      peer.write(Buffer.concat(frames.slice(i, i + 2048)));
    // One turn: the connection stops after its budget (its reads are 53 KiB each here).
    scheduler.runDeferred(1);
    const afterOneTurn = session.delivered.length;
    expect(afterOneTurn * 26).toBeGreaterThanOrEqual(256 * 1024);
    expect(afterOneTurn * 26).toBeLessThan(256 * 1024 + 2048 * 26 * 2);
    // The next turn resumes it (the memory pipe delivers in the turn after): it reads again.
    scheduler.runDeferred(2);
    expect(session.delivered.length).toBeGreaterThan(afterOneTurn);
    scheduler.runDeferred();
    expect(session.delivered).toEqual(frames.map((_, i) => i + 1));
  });

  it('connection - a peer sending large frames is not paused within a turn while it completed fewer than 64 frames', () => {
    const { scheduler, connection, peer, session, hello } = harness();
    hello();
    expect(connection.established).toBe(true);
    // 2 MiB in four 512 KiB messages arrives at once: few frames, cheap per byte (kept as views).
    const frames = [1, 2, 3, 4].map((seq) => encodeData(seq, Buffer.alloc(512 * 1024, seq)));
    for (const frame of frames) peer.write(frame);
    // One turn reads all of it: a 256 KiB byte budget alone would have stopped it inside the
    // first message.
    scheduler.runDeferred(1);
    expect(session.delivered).toEqual([1, 2, 3, 4]);
  });

  it('connection - a frame not complete within frameTimeoutMs of its first byte ends the connection', () => {
    const { scheduler, peer, closed, hello } = harness({ frameTimeoutMs: 300 });
    hello();
    const frame = encodeData(1, Buffer.alloc(100));
    peer.write(frame.subarray(0, 50));
    scheduler.advance(299);
    expect(closed).toEqual([]);
    scheduler.advance(1);
    expect(closed.map((c) => c.code)).toEqual([ErrorCode.FRAME_TIMEOUT]);
  });

  it('connection - a peer that does not read its replies stops being read, and is cut as a slow consumer at the deadline', () => {
    const { scheduler, connection, peer, closed, hello } = harness({ replyBacklogLimit: 1024 });
    hello();
    peer.pause(); // never reads what the connection writes
    const seen = count(peer);
    // PINGs ask for PONGs: 100 of them per write, until the connection stops taking more.
    for (let i = 0; i < 200; i++) {
      peer.write(Buffer.concat(Array.from({ length: 100 }, (_, n) => encodePing(i * 100 + n))));
      scheduler.runDeferred();
    }
    expect(connection.backlogBytes).toBeGreaterThan(1024);
    // Its PINGs wait unread on its own side: the connection holds a bounded backlog.
    expect(connection.backlogBytes).toBeLessThan(1024 + 64 * 1024);
    expect(peer.writableLength).toBeGreaterThan(0);
    expect(seen.bytes).toBe(0);
    scheduler.advance(400);
    expect(closed.map((c) => c.code)).toEqual([ErrorCode.SLOW_CONSUMER]);
  });

  it('connection - a closed connection destroys its transport after a second even if the peer never reads', () => {
    const { scheduler, connection, peer, hello } = harness();
    hello();
    peer.pause();
    connection.fail({ code: ErrorCode.CLOSED, message: 'bye' } as TetherError);
    expect(connection.closed).toBe(true);
    expect(connection.transport.destroyed).toBe(false);
    scheduler.advance(999);
    expect(connection.transport.destroyed).toBe(false);
    scheduler.advance(1);
    expect(connection.transport.destroyed).toBe(true);
  });

  it('connection - the batch waits for drain while the transport is full, then goes out in order', () => {
    const { scheduler, connection, session, sink } = fullTransportHarness();
    const payload = Buffer.alloc(1024, 5);
    for (let i = 0; i < 1000; i++) {
      session.outbound.enqueue({ payload, flags: 0, requestId: 0, seq: 0 });
    }
    connection.pump();
    scheduler.runDeferred();
    // The transport took one slice and said it is full: the rest waits in the batch.
    const firstSlice = sink.bytes();
    expect(firstSlice).toBeGreaterThan(0);
    expect(firstSlice).toBeLessThan(400 * 1024);
    expect(connection.backlogBytes).toBe(14 + 1000 * (1024 + 14));
    // More frames while waiting go behind them; nothing is written until 'drain'.
    session.outbound.enqueue({ payload, flags: 0, requestId: 0, seq: 0 });
    connection.pump();
    scheduler.runDeferred();
    expect(sink.bytes()).toBe(firstSlice);
    for (let rounds = 0; sink.bytes() < 14 + 1001 * (1024 + 14); rounds++) {
      expect(rounds).toBeLessThan(100);
      sink.drain();
    }
    expect(sink.stream().equals(dataStream(1, 1001, payload))).toBe(true);
    sink.drain();
    expect(connection.backlogBytes).toBe(0);
  });

  it('connection - fail() writes everything the batch holds before the ERROR, full or not', () => {
    const { scheduler, connection, session, sink } = fullTransportHarness();
    const payload = Buffer.alloc(1024, 6);
    for (let i = 0; i < 500; i++) {
      session.outbound.enqueue({ payload, flags: 0, requestId: 0, seq: 0 });
    }
    connection.pump();
    scheduler.runDeferred();
    expect(sink.bytes()).toBeLessThan(500 * (1024 + 14));
    connection.fail({ code: ErrorCode.CLOSED, message: 'bye' } as TetherError);
    const stream = sink.stream();
    const data = dataStream(1, 500, payload);
    expect(stream.subarray(0, data.length).equals(data)).toBe(true);
    expect(stream[data.length + 4]).toBe(FrameType.ERROR);
  });
});

/** What the connection writes: its ACK of nothing delivered yet (a new link repeats it), then DATA. */
function dataStream(from: number, to: number, payload: Buffer): Buffer {
  return Buffer.concat([
    encodeAck(0),
    ...Array.from({ length: to - from + 1 }, (_, i) => encodeData(from + i, payload)),
  ]);
}

/**
 * A transport that is always full: every write returns false and leaves its bytes waiting
 * until the test calls `drain()`, which hands them on and emits 'drain'.
 */
class FullTransport extends EventEmitter {
  destroyed = false;
  readableLength = 0;
  readonly written: Buffer[] = [];
  #waiting = 0;
  get writableLength(): number {
    return this.#waiting;
  }
  write(chunk: Uint8Array): boolean {
    this.written.push(Buffer.from(chunk));
    this.#waiting += chunk.length;
    return false;
  }
  cork(): void {}
  uncork(): void {}
  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) this.write(chunk);
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {}
  resume(): void {}
  drain(): void {
    this.#waiting = 0;
    this.emit('drain');
  }
}

function fullTransportHarness() {
  const scheduler = new VirtualScheduler();
  const transport = new FullTransport();
  const session = new RecordingSession();
  const owner: ConnectionOwner<OutboundEntry> = {
    handshakeFrame: () => {},
    handshakeExpired: () => {},
    control: () => false,
    closed: () => {},
  };
  const deadlines = new Deadlines<Connection<OutboundEntry>>(scheduler, (c, at) => c.deadline(at));
  const connection = new Connection(
    transport as unknown as Transport,
    owner,
    {
      scheduler,
      deadlines,
      maxFrame: 1 << 20,
      replyBacklogLimit: Number.POSITIVE_INFINITY,
    },
    'full',
  );
  connection.open(session, { ...OPEN, maxInFlightBytes: 1 << 30 }, []);
  const sink = {
    bytes: () => transport.written.reduce((sum, b) => sum + b.length, 0),
    stream: () => Buffer.concat(transport.written),
    drain: () => transport.drain(),
  };
  return { scheduler, connection, session, sink };
}

/**
 * A transport that behaves as a TLS socket does: it takes (encrypts, copies) what it is given at
 * once, but counts it in `writableLength` and calls the write callbacks only on a later turn
 * (`complete()`), emitting 'drain' then if a write returned false.
 */
class LaterTransport extends EventEmitter {
  destroyed = false;
  readableLength = 0;
  /** The chunks as given (their memory), and copies of their bytes at the time of the write. */
  readonly written: Buffer[] = [];
  readonly copies: Buffer[] = [];
  #waiting = 0;
  #callbacks: (() => void)[] = [];
  #needDrain = false;
  get writableLength(): number {
    return this.#waiting;
  }
  write(chunk: Buffer, callback?: () => void): boolean {
    this.written.push(chunk);
    this.copies.push(Buffer.from(chunk));
    this.#waiting += chunk.length;
    if (callback !== undefined) this.#callbacks.push(callback);
    const room = this.#waiting < 16 * 1024;
    if (!room) this.#needDrain = true;
    return room;
  }
  cork(): void {}
  uncork(): void {}
  end(chunk?: Buffer): void {
    if (chunk !== undefined) this.write(chunk);
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {}
  resume(): void {}
  complete(): void {
    this.#waiting = 0;
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const callback of callbacks) callback();
    if (this.#needDrain) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }
}

describe('connection - staging buffers over a transport that reports writes later (TLS)', () => {
  it('connection - a staging buffer is written again once the write callback says the transport let go of it', () => {
    const scheduler = new VirtualScheduler();
    const transport = new LaterTransport();
    const session = new RecordingSession();
    const owner: ConnectionOwner<OutboundEntry> = {
      handshakeFrame: () => {},
      handshakeExpired: () => {},
      control: () => false,
      closed: () => {},
    };
    const deadlines = new Deadlines<Connection<OutboundEntry>>(scheduler, (c, at) =>
      c.deadline(at),
    );
    const connection = new Connection(
      transport as unknown as Transport,
      owner,
      {
        scheduler,
        deadlines,
        maxFrame: 1 << 20,
        replyBacklogLimit: Number.POSITIVE_INFINITY,
      },
      'later',
    );
    connection.open(session, { ...OPEN, maxInFlightBytes: 1 << 30 }, []);
    const payload = Buffer.alloc(1024, 7);
    const burst = (): Buffer[] => {
      const from = transport.written.length;
      for (let i = 0; i < 100; i++) {
        session.outbound.enqueue({ payload, flags: 0, requestId: 0, seq: 0 });
      }
      connection.pump();
      scheduler.runDeferred();
      return transport.written.slice(from);
    };
    const first = burst();
    const firstMemory = new Set(first.map((b) => b.buffer));
    const firstBytes = Buffer.concat(first);
    // Still counted by the transport: a second burst must not write into the first one's memory.
    const second = burst();
    expect(second.length).toBeGreaterThan(0);
    for (const b of second) expect(firstMemory.has(b.buffer)).toBe(false);
    expect(Buffer.concat(first).equals(firstBytes)).toBe(true);
    transport.complete();
    scheduler.runDeferred();
    // Let go of (the callbacks ran): the next burst is carved from memory already written.
    const third = burst();
    expect(third.some((b) => firstMemory.has(b.buffer) || b.buffer === second[0]?.buffer)).toBe(
      true,
    );
    transport.complete();
    scheduler.runDeferred();
    expect(Buffer.concat(transport.copies).equals(dataStream(1, 300, payload))).toBe(true);
  });
});

describe('connection - batched writes', () => {
  it("connection - the end of a turn is one deferred callback for every connection, and each connection's replies are one write", () => {
    const scheduler = new VirtualScheduler();
    let deferred = 0;
    const defer = scheduler.defer.bind(scheduler);
    scheduler.defer = (callback) => {
      deferred++;
      defer(callback);
    };
    const owner: ConnectionOwner<OutboundEntry> = {
      handshakeFrame: () => {},
      handshakeExpired: () => {},
      control: () => false,
      closed: () => {},
    };
    const deadlines = new Deadlines<Connection<OutboundEntry>>(scheduler, (c, at) =>
      c.deadline(at),
    );
    const options = { scheduler, deadlines, maxFrame: 1 << 20, replyBacklogLimit: 1 << 20 };
    const links = [0, 1, 2].map((i) => {
      const transport = new FullTransport();
      const connection = new Connection(transport as unknown as Transport, owner, options, `c${i}`);
      connection.open(new RecordingSession(), OPEN, []);
      connection.received(PREFACE);
      return { transport, connection };
    });
    // Each new link's ACK went out; from here on, count.
    scheduler.runDeferred();
    for (const { transport } of links) {
      transport.drain();
      transport.written.length = 0;
    }
    deferred = 0;
    // One turn: every connection reads a PING (and the first two a second one).
    for (const { connection } of links) connection.received(encodePing(7));
    for (const { connection } of links.slice(0, 2)) connection.received(encodePing(8));
    // One callback ends the turn: it counts it (the turn budget) and writes every batch.
    expect(deferred).toBe(1);
    scheduler.runDeferred();
    expect(links.map(({ transport }) => transport.written.length)).toEqual([1, 1, 1]);
    expect(links.map(({ transport }) => transport.written[0]?.length)).toEqual([28, 28, 14]);
    expect(links.map(({ transport }) => transport.written[0]?.[4])).toEqual([
      FrameType.PONG,
      FrameType.PONG,
      FrameType.PONG,
    ]);
  });
});
