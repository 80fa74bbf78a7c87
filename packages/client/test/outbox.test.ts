import { schedulerWithClock } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OverflowPolicy as Policy } from '../src/options.js';
import { Outbox, type OutboxLimits, type PendingSend, type SendReceipt } from '../src/outbox.js';

type Entry = PendingSend;

/** One submitted message and how its promise settled (handlers attached at once). */
interface Sent {
  promise: Promise<SendReceipt>;
  status: 'pending' | 'resolved' | 'rejected';
  receipt: SendReceipt | undefined;
  error: TetherError | undefined;
}

interface SendOptions {
  ttlMs?: number;
  signal?: AbortSignal;
}

/** Lets promise callbacks run (fake timers do not fake microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function harness(limits: Partial<OutboxLimits> = {}) {
  const onEnqueued = vi.fn();
  const onDrop = vi.fn<(entry: Entry) => void>();
  const now = (): number => Date.now();
  const outbox = new Outbox(
    'client-1',
    { maxMessages: 3, maxBytes: 1000, overflow: Policy.REJECT, ...limits },
    schedulerWithClock(now),
    onEnqueued,
    onDrop,
  );
  function send(payload: string, options: SendOptions = {}): Sent {
    const sent: Sent = {
      promise: undefined as unknown as Promise<SendReceipt>,
      status: 'pending',
      receipt: undefined,
      error: undefined,
    };
    sent.promise = new Promise<SendReceipt>((resolve, reject) => {
      const expiresAt =
        options.ttlMs === undefined ? Number.POSITIVE_INFINITY : now() + options.ttlMs;
      outbox.submit(
        {
          payload: Buffer.from(payload),
          flags: 0,
          requestId: 0,
          seq: 0,
          resolve,
          reject,
          expiresAt,
          journalId: 0,
          order: 0,
          publishId: 0,
        },
        options.signal,
      );
    });
    sent.promise.then(
      (receipt) => {
        sent.status = 'resolved';
        sent.receipt = receipt;
      },
      (error: TetherError) => {
        sent.status = 'rejected';
        sent.error = error;
      },
    );
    return sent;
  }
  /** Payloads of queued (never transmitted) messages, oldest first. */
  const queued = (): string[] => [...outbox.stream.queued()].map((e) => e.payload.toString());
  /** Transmits every queued message; returns their payloads. */
  const transmit = (): string[] => outbox.stream.takeSendable().map((e) => e.payload.toString());
  /** Acknowledges up to `seq` and hands the released entries to the outbox. */
  function ack(seq: number): Entry[] {
    const released = outbox.stream.ack(seq);
    if (!Array.isArray(released)) throw released;
    outbox.released(released);
    return released;
  }
  return { outbox, onEnqueued, onDrop, send, queued, transmit, ack };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('outbox - reject policy', () => {
  it('outbox - reject policy rejects with QUEUE_FULL at the count cap; depth never exceeds it', async () => {
    const { outbox, send, onEnqueued, onDrop } = harness({ maxMessages: 3, maxBytes: 1000 });
    const sent = ['a', 'b', 'c', 'd', 'e'].map((p) => {
      const s = send(p);
      expect(outbox.depth).toBeLessThanOrEqual(3);
      return s;
    });
    await settle();
    expect(sent.map((s) => s.status)).toEqual([
      'pending',
      'pending',
      'pending',
      'rejected',
      'rejected',
    ]);
    expect(sent[3]?.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(sent[4]?.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(outbox.depth).toBe(3);
    expect(outbox.waiting).toBe(0);
    expect(onEnqueued).toHaveBeenCalledTimes(3);
    expect(onDrop).not.toHaveBeenCalled();
  });

  it('outbox - reject policy rejects with QUEUE_FULL at the byte cap; bytes never exceed it', async () => {
    const { outbox, send, queued } = harness({ maxMessages: 100, maxBytes: 10 });
    const a = send('aaaa');
    const b = send('bbbb');
    const tooBig = send('ccc'); // 4 + 4 + 3 = 11 > 10
    const exact = send('dd'); // 4 + 4 + 2 = 10: fits exactly
    const over = send('e');
    await settle();
    expect([a.status, b.status, exact.status]).toEqual(['pending', 'pending', 'pending']);
    expect(tooBig.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(over.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(outbox.stream.bytes).toBe(10);
    expect(queued()).toEqual(['aaaa', 'bbbb', 'dd']);
  });

  it('outbox - in-flight messages count against the caps until they are acknowledged', async () => {
    const { outbox, send, transmit, ack } = harness({ maxMessages: 2, maxBytes: 1000 });
    const a = send('a');
    const b = send('b');
    expect(transmit()).toEqual(['a', 'b']);
    const c = send('c');
    await settle();
    expect(c.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(outbox.depth).toBe(2);

    ack(1);
    await settle();
    expect(a.status).toBe('resolved');
    expect(a.receipt).toEqual({ id: 'client-1:1', seq: 1 });
    expect(b.status).toBe('pending');
    const d = send('d');
    await settle();
    expect(d.status).toBe('pending');
    expect(outbox.depth).toBe(2);
  });

  it('outbox - a payload larger than the byte cap is rejected with QUEUE_FULL under every policy', async () => {
    for (const overflow of Object.values(Policy)) {
      const { outbox, send } = harness({ maxMessages: 10, maxBytes: 4, overflow });
      const sent = send('12345');
      await settle();
      expect(sent.error?.code, overflow).toBe(ErrorCode.QUEUE_FULL);
      expect(outbox.depth).toBe(0);
      expect(outbox.waiting).toBe(0);
    }
  });
});

describe('outbox - drop-oldest policy', () => {
  it('outbox - drop-oldest drops the oldest queued message, never the one in flight', async () => {
    const { outbox, send, transmit, queued, onDrop } = harness({
      maxMessages: 3,
      overflow: Policy.DROP_OLDEST,
    });
    const a = send('a');
    expect(transmit()).toEqual(['a']);
    const b = send('b');
    const c = send('c');
    const d = send('d');
    await settle();
    expect(a.status).toBe('pending');
    expect(b.status).toBe('rejected');
    expect(b.error?.code).toBe(ErrorCode.MESSAGE_DROPPED);
    expect([c.status, d.status]).toEqual(['pending', 'pending']);
    expect(onDrop).toHaveBeenCalledTimes(1);
    expect(onDrop.mock.calls[0]?.[0].payload.toString()).toBe('b');
    expect(queued()).toEqual(['c', 'd']);
    expect(outbox.stream.inFlightCount).toBe(1);
    expect(outbox.depth).toBe(3);
  });

  it('outbox - drop-oldest drops only as many queued messages as the byte cap needs', async () => {
    const { outbox, send, queued, onDrop } = harness({
      maxMessages: 100,
      maxBytes: 10,
      overflow: Policy.DROP_OLDEST,
    });
    const a = send('aaaa');
    const b = send('bbbb');
    const c = send('cccccc'); // 14 bytes: dropping 'aaaa' (4) is enough
    await settle();
    expect(a.error?.code).toBe(ErrorCode.MESSAGE_DROPPED);
    expect([b.status, c.status]).toEqual(['pending', 'pending']);
    expect(onDrop).toHaveBeenCalledTimes(1);
    expect(queued()).toEqual(['bbbb', 'cccccc']);
    expect(outbox.stream.bytes).toBe(10);
  });

  it('outbox - drop-oldest rejects the new send with QUEUE_FULL when only in-flight messages fill it', async () => {
    const { outbox, send, transmit, onDrop } = harness({
      maxMessages: 2,
      overflow: Policy.DROP_OLDEST,
    });
    const a = send('a');
    const b = send('b');
    expect(transmit()).toEqual(['a', 'b']);
    const c = send('c');
    await settle();
    expect(c.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect([a.status, b.status]).toEqual(['pending', 'pending']);
    expect(onDrop).not.toHaveBeenCalled();
    expect(outbox.depth).toBe(2);
    expect(outbox.stream.inFlightCount).toBe(2);
  });

  it('outbox - drop-oldest drops nothing when dropping every queued message still cannot make room', async () => {
    const { outbox, send, transmit, queued, onDrop } = harness({
      maxMessages: 100,
      maxBytes: 10,
      overflow: Policy.DROP_OLDEST,
    });
    send('xxxxxx'); // 6 bytes, in flight below
    expect(transmit()).toEqual(['xxxxxx']);
    const queuedOne = send('yy'); // 8 bytes held
    const tooBig = send('zzzzz'); // 6 in flight + 5 = 11 > 10 even with 'yy' gone
    await settle();
    expect(tooBig.error?.code).toBe(ErrorCode.QUEUE_FULL);
    // Dropping 'yy' could not have let 'zzzzz' in: it must not be sacrificed for nothing.
    expect(queuedOne.status).toBe('pending');
    expect(onDrop).not.toHaveBeenCalled();
    expect(queued()).toEqual(['yy']);
    expect(outbox.stream.bytes).toBe(8);
  });
});

describe('outbox - wait policy', () => {
  it('outbox - wait policy holds sends in order and admits them as released() frees room', async () => {
    const { outbox, send, transmit, ack, queued, onEnqueued } = harness({
      maxMessages: 2,
      overflow: Policy.WAIT,
    });
    const a = send('a');
    const b = send('b');
    const c = send('c');
    const d = send('d');
    await settle();
    expect([a, b, c, d].map((s) => s.status)).toEqual(['pending', 'pending', 'pending', 'pending']);
    expect(outbox.waiting).toBe(2);
    expect(outbox.depth).toBe(2);
    expect(onEnqueued).toHaveBeenCalledTimes(2);

    expect(transmit()).toEqual(['a', 'b']);
    ack(1);
    expect(outbox.waiting).toBe(1);
    expect(queued()).toEqual(['c']);
    expect(onEnqueued).toHaveBeenCalledTimes(3);
    ack(2);
    expect(outbox.waiting).toBe(0);
    expect(queued()).toEqual(['c', 'd']);
    expect(outbox.depth).toBe(2);

    const sent = outbox.stream.takeSendable();
    expect(sent.map((e) => [e.payload.toString(), e.seq])).toEqual([
      ['c', 3],
      ['d', 4],
    ]);
    await settle();
    expect([a.status, b.status]).toEqual(['resolved', 'resolved']);
    expect([c.status, d.status]).toEqual(['pending', 'pending']);
  });

  it('outbox - a new send that would fit still waits behind earlier waiting sends', async () => {
    const { outbox, send, transmit, ack, queued } = harness({
      maxMessages: 100,
      maxBytes: 10,
      overflow: Policy.WAIT,
    });
    send('12345678');
    const big = send('12345'); // waits: 8 + 5 > 10
    const small = send('1'); // 8 + 1 fits, but must not overtake 'big'
    expect(outbox.waiting).toBe(2);
    expect(queued()).toEqual(['12345678']);
    transmit();
    ack(1);
    expect(queued()).toEqual(['12345', '1']);
    await settle();
    expect([big.status, small.status]).toEqual(['pending', 'pending']);
  });

  it('outbox - a waiting send aborted by its signal rejects with ABORTED and keeps the order', async () => {
    const { outbox, send, transmit, ack, queued, onEnqueued } = harness({
      maxMessages: 1,
      overflow: Policy.WAIT,
    });
    send('head');
    const first = send('w1');
    const controller = new AbortController();
    const second = send('w2', { signal: controller.signal });
    const third = send('w3');
    expect(outbox.waiting).toBe(3);

    controller.abort(new Error('user gave up'));
    await settle();
    expect(second.status).toBe('rejected');
    expect(second.error?.code).toBe(ErrorCode.ABORTED);
    expect(outbox.waiting).toBe(2);
    expect([first.status, third.status]).toEqual(['pending', 'pending']);

    const order: string[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      order.push(...transmit());
      ack(seq);
    }
    order.push(...queued());
    expect(order).toEqual(['head', 'w1', 'w3']);
    expect(outbox.waiting).toBe(0);
    expect(onEnqueued).toHaveBeenCalledTimes(3);
  });

  it('outbox - a send whose signal is already aborted rejects with ABORTED and is not queued', async () => {
    const { outbox, send, onEnqueued } = harness({ overflow: Policy.WAIT });
    const sent = send('a', { signal: AbortSignal.abort() });
    await settle();
    expect(sent.error?.code).toBe(ErrorCode.ABORTED);
    expect(outbox.depth).toBe(0);
    expect(onEnqueued).not.toHaveBeenCalled();
  });

  it('outbox - aborting the head waiter admits the next waiter that now fits', async () => {
    const { outbox, send, queued } = harness({
      maxMessages: 100,
      maxBytes: 10,
      overflow: Policy.WAIT,
    });
    send('12345678');
    const controller = new AbortController();
    const big = send('12345', { signal: controller.signal }); // 8 + 5 > 10: waits
    const small = send('12'); // 8 + 2 fits, waits behind 'big' to keep the order
    expect(outbox.waiting).toBe(2);

    controller.abort();
    await settle();
    expect(big.error?.code).toBe(ErrorCode.ABORTED);
    // Nothing is ahead of 'small' any more and there is room: it must not keep waiting.
    expect(small.status).toBe('pending');
    expect(outbox.waiting).toBe(0);
    expect(queued()).toEqual(['12345678', '12']);
  });

  it('outbox - the abort listener is removed once a waiting send is admitted', async () => {
    const { outbox, send, transmit, ack } = harness({ maxMessages: 1, overflow: Policy.WAIT });
    send('a');
    const controller = new AbortController();
    const b = send('b', { signal: controller.signal });
    transmit();
    ack(1);
    expect(outbox.depth).toBe(1);
    controller.abort();
    await settle();
    expect(b.status).toBe('pending');
    expect(outbox.depth).toBe(1);
  });
});

describe('outbox - TTL', () => {
  it('outbox - a queued message past its TTL is rejected with MESSAGE_EXPIRED by the timer', async () => {
    const { outbox, send, queued } = harness({ maxMessages: 10 });
    const short = send('short', { ttlMs: 100 });
    const forever = send('forever');
    expect(vi.getTimerCount()).toBe(1);

    await vi.advanceTimersByTimeAsync(99);
    expect(short.status).toBe('pending');
    expect(queued()).toEqual(['short', 'forever']);

    await vi.advanceTimersByTimeAsync(1);
    expect(short.status).toBe('rejected');
    expect(short.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(forever.status).toBe('pending');
    expect(queued()).toEqual(['forever']);
    expect(outbox.depth).toBe(1);
    expect(outbox.stream.bytes).toBe('forever'.length);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('outbox - the TTL timer follows the earliest deadline and re-arms for the next one', async () => {
    const { send, queued } = harness({ maxMessages: 10 });
    const a = send('a', { ttlMs: 100 });
    const b = send('b', { ttlMs: 50 });
    const c = send('c', { ttlMs: 200 });
    await vi.advanceTimersByTimeAsync(50);
    expect([a.status, b.status, c.status]).toEqual(['pending', 'rejected', 'pending']);
    await vi.advanceTimersByTimeAsync(50);
    expect([a.status, c.status]).toEqual(['rejected', 'pending']);
    expect(queued()).toEqual(['c']);
    await vi.advanceTimersByTimeAsync(100);
    expect(c.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(queued()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('outbox - a transmitted message is never expired', async () => {
    const { outbox, send, transmit, ack } = harness({ maxMessages: 10 });
    const a = send('a', { ttlMs: 100 });
    const b = send('b', { ttlMs: 100 });
    expect(outbox.stream.takeSendable().length).toBe(2);
    await vi.advanceTimersByTimeAsync(10_000);
    outbox.expire();
    expect([a.status, b.status]).toEqual(['pending', 'pending']);
    expect(outbox.stream.inFlightCount).toBe(2);
    expect(transmit()).toEqual([]);
    ack(2);
    await settle();
    expect([a.status, b.status]).toEqual(['resolved', 'resolved']);
  });

  it('outbox - expire() rejects only queued messages whose deadline passed', async () => {
    const { outbox, send, queued } = harness({ maxMessages: 10 });
    const now = Date.now();
    const a = send('a', { ttlMs: 10 });
    const b = send('b', { ttlMs: 20 });
    outbox.expire(now + 10);
    await settle();
    expect(a.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(b.status).toBe('pending');
    expect(queued()).toEqual(['b']);
  });

  it('outbox - a waiting send past its TTL is rejected with MESSAGE_EXPIRED and leaves the wait list', async () => {
    const { outbox, send } = harness({ maxMessages: 1, overflow: Policy.WAIT });
    const head = send('head');
    const waiter = send('w', { ttlMs: 100 });
    expect(outbox.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(waiter.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(outbox.waiting).toBe(0);
    expect(head.status).toBe('pending');
    expect(outbox.depth).toBe(1);
  });

  it('outbox - an expired queued message lets a waiting send in', async () => {
    const { outbox, send, queued } = harness({ maxMessages: 1, overflow: Policy.WAIT });
    const head = send('head', { ttlMs: 100 });
    const waiter = send('w');
    await vi.advanceTimersByTimeAsync(100);
    expect(head.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(waiter.status).toBe('pending');
    expect(outbox.waiting).toBe(0);
    expect(queued()).toEqual(['w']);
  });

  it('outbox - an expired head waiter lets the next waiter that fits in', async () => {
    const { outbox, send, queued } = harness({
      maxMessages: 100,
      maxBytes: 10,
      overflow: Policy.WAIT,
    });
    send('12345678');
    const big = send('12345', { ttlMs: 100 }); // waits: 8 + 5 > 10
    const small = send('12'); // fits, waits behind 'big'
    await vi.advanceTimersByTimeAsync(100);
    expect(big.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(small.status).toBe('pending');
    expect(outbox.waiting).toBe(0);
    expect(queued()).toEqual(['12345678', '12']);
  });
});

describe('outbox - failAll', () => {
  it('outbox - failAll rejects queued, in-flight and waiting sends and clears the TTL timer', async () => {
    const { outbox, send, transmit } = harness({ maxMessages: 2, overflow: Policy.WAIT });
    const inFlight = send('a', { ttlMs: 1000 });
    transmit();
    const queuedOne = send('b', { ttlMs: 500 });
    const controller = new AbortController();
    const waiting = send('c', { ttlMs: 100, signal: controller.signal });
    expect(outbox.waiting).toBe(1);
    expect(vi.getTimerCount()).toBe(1);

    const error = new Error('closing');
    outbox.failAll(error);
    await settle();
    for (const s of [inFlight, queuedOne, waiting]) {
      expect(s.status).toBe('rejected');
      expect(s.error).toBe(error);
    }
    expect(outbox.depth).toBe(0);
    expect(outbox.stream.bytes).toBe(0);
    expect(outbox.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // Nothing fires later: no timer, and the abort listener is gone.
    controller.abort();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(waiting.error).toBe(error);
  });
});

/** A published message as the outbox sees it: no promise; failures land in `failed`. */
function published(payload: string, publishId: number, failed: [number, string][], ttlMs?: number) {
  return {
    payload: Buffer.from(payload),
    flags: 0,
    requestId: 0,
    seq: 0,
    expiresAt: ttlMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + ttlMs,
    journalId: 0,
    order: 0,
    publishId,
    resolve: () => {
      throw new Error('a published message gets no receipt');
    },
    reject: (error: Error) => {
      failed.push([publishId, (error as TetherError).code]);
    },
  } satisfies Entry;
}

/** Tracks a flush() promise. */
function trackFlush(promise: Promise<void>): { status: string; error: TetherError | undefined } {
  const tracked = { status: 'pending', error: undefined as TetherError | undefined };
  promise.then(
    () => {
      tracked.status = 'resolved';
    },
    (error: TetherError) => {
      tracked.status = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

describe('outbox - offer (publish)', () => {
  it('outbox - offer queues at once and returns QUEUE_FULL, never rejecting, at either cap', () => {
    const failed: [number, string][] = [];
    const { outbox, queued } = harness({ maxMessages: 2, maxBytes: 6 });
    expect(outbox.offer(published('aa', 1, failed))).toBeUndefined();
    expect(outbox.offer(published('bbbbbbb', 2, failed))?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(outbox.offer(published('bbbbb', 3, failed))?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(outbox.offer(published('bb', 4, failed))).toBeUndefined();
    expect(outbox.offer(published('c', 5, failed))?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(queued()).toEqual(['aa', 'bb']);
    expect(failed).toEqual([]);
  });

  it('outbox - offer under wait does not wait: QUEUE_FULL when full or while sends wait', async () => {
    const failed: [number, string][] = [];
    const { outbox, send, transmit, ack, queued } = harness({
      maxMessages: 2,
      overflow: Policy.WAIT,
    });
    send('a');
    send('b');
    const waiting = send('c');
    expect(outbox.offer(published('p', 1, failed))?.code).toBe(ErrorCode.QUEUE_FULL);
    transmit();
    ack(1); // room for one: the waiting send takes it
    await settle();
    expect(waiting.status).toBe('pending');
    expect(queued()).toEqual(['c']);
    expect(outbox.offer(published('p', 2, failed))?.code).toBe(ErrorCode.QUEUE_FULL);
    ack(2);
    expect(outbox.offer(published('p', 3, failed))).toBeUndefined();
    expect(queued()).toEqual(['c', 'p']);
  });

  it('outbox - offer under drop-oldest drops the oldest queued message and reports it', () => {
    const failed: [number, string][] = [];
    const { outbox, queued, onDrop } = harness({ maxMessages: 2, overflow: Policy.DROP_OLDEST });
    outbox.offer(published('a', 1, failed));
    outbox.offer(published('b', 2, failed));
    expect(outbox.offer(published('c', 3, failed))).toBeUndefined();
    expect(queued()).toEqual(['b', 'c']);
    expect(failed).toEqual([[1, ErrorCode.MESSAGE_DROPPED]]);
    expect(onDrop).toHaveBeenCalledTimes(1);
  });

  it('outbox - an acknowledged published message is released without a receipt', () => {
    const failed: [number, string][] = [];
    const { outbox, transmit, ack } = harness();
    outbox.offer(published('a', 1, failed));
    transmit();
    // resolve() of the entry throws: released() must not call it.
    expect(ack(1).map((e) => e.publishId)).toEqual([1]);
    expect(outbox.depth).toBe(0);
  });
});

describe('outbox - flush', () => {
  it('outbox - flush resolves at once when nothing is pending, else once everything before it is acknowledged', async () => {
    const failed: [number, string][] = [];
    const { outbox, send, transmit, ack } = harness({ maxMessages: 10 });
    const empty = trackFlush(outbox.flush());
    send('a');
    outbox.offer(published('b', 1, failed));
    const first = trackFlush(outbox.flush());
    outbox.offer(published('c', 2, failed));
    const second = trackFlush(outbox.flush());
    await settle();
    expect(empty.status).toBe('resolved');
    transmit();
    ack(1);
    await settle();
    expect([first.status, second.status]).toEqual(['pending', 'pending']);
    ack(2);
    await settle();
    expect([first.status, second.status]).toEqual(['resolved', 'pending']);
    ack(3);
    await settle();
    expect(second.status).toBe('resolved');
  });

  it('outbox - a message sent after the flush does not hold it', async () => {
    const { outbox, send, transmit, ack } = harness({ maxMessages: 10 });
    send('a');
    const flushed = trackFlush(outbox.flush());
    send('b');
    transmit();
    ack(1);
    await settle();
    expect(flushed.status).toBe('resolved');
    expect(outbox.depth).toBe(1);
  });

  it('outbox - messages that end by failing (drop-oldest, TTL, withdrawn) end the flush too', async () => {
    const failed: [number, string][] = [];
    const { outbox, send, transmit, ack } = harness({
      maxMessages: 3,
      overflow: Policy.DROP_OLDEST,
    });
    send('a');
    transmit(); // 'a' in flight
    outbox.offer(published('dropped', 1, failed));
    outbox.offer(published('expires', 2, failed, 100));
    const first = trackFlush(outbox.flush());
    outbox.offer(published('withdrawn', 3, failed)); // full: drops message 1
    const second = trackFlush(outbox.flush());
    expect(failed).toEqual([[1, ErrorCode.MESSAGE_DROPPED]]);
    ack(1);
    await settle();
    expect([first.status, second.status]).toEqual(['pending', 'pending']);
    vi.advanceTimersByTime(100);
    await settle();
    expect(failed.at(-1)).toEqual([2, ErrorCode.MESSAGE_EXPIRED]);
    expect([first.status, second.status]).toEqual(['resolved', 'pending']);
    outbox.withdraw((e) => e.publishId === 3, new TetherError(ErrorCode.ABORTED, 'withdrawn'));
    await settle();
    expect(failed.at(-1)).toEqual([3, ErrorCode.ABORTED]);
    expect(second.status).toBe('resolved');
    expect(outbox.depth).toBe(0);
  });

  it('outbox - a flush waiting only for a message that drop-oldest drops resolves then', async () => {
    const failed: [number, string][] = [];
    const { outbox } = harness({ maxMessages: 1, overflow: Policy.DROP_OLDEST });
    outbox.offer(published('a', 1, failed));
    const flushed = trackFlush(outbox.flush());
    outbox.offer(published('b', 2, failed)); // drops 'a'; 'b' came after the flush
    await settle();
    expect(failed).toEqual([[1, ErrorCode.MESSAGE_DROPPED]]);
    expect(flushed.status).toBe('resolved');
    expect(outbox.depth).toBe(1);
  });

  it('outbox - flush waits for sends waiting for room', async () => {
    const { outbox, send, transmit, ack } = harness({ maxMessages: 1, overflow: Policy.WAIT });
    send('a');
    send('b'); // waits
    const flushed = trackFlush(outbox.flush());
    transmit();
    ack(1); // 'b' admitted
    await settle();
    expect(flushed.status).toBe('pending');
    transmit();
    ack(2);
    await settle();
    expect(flushed.status).toBe('resolved');
  });

  it('outbox - flush rejects with FLUSH_TIMEOUT after timeoutMs, leaving later flushes waiting', async () => {
    const { outbox, send, transmit, ack } = harness();
    send('a');
    const short = trackFlush(outbox.flush(100));
    const long = trackFlush(outbox.flush());
    vi.advanceTimersByTime(99);
    await settle();
    expect(short.status).toBe('pending');
    vi.advanceTimersByTime(1);
    await settle();
    expect(short.error?.code).toBe(ErrorCode.FLUSH_TIMEOUT);
    expect(long.status).toBe('pending');
    transmit();
    ack(1);
    await settle();
    expect(long.status).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('outbox - flush rejects with ABORTED on its signal, at once when already aborted', async () => {
    const { outbox, send } = harness();
    send('a');
    const controller = new AbortController();
    const flushed = trackFlush(outbox.flush(undefined, controller.signal));
    const already = trackFlush(outbox.flush(undefined, AbortSignal.abort()));
    controller.abort();
    await settle();
    expect(flushed.error?.code).toBe(ErrorCode.ABORTED);
    expect(already.error?.code).toBe(ErrorCode.ABORTED);
  });

  it('outbox - failAll rejects pending flushes with its error instead of resolving them', async () => {
    const failed: [number, string][] = [];
    const { outbox, send } = harness();
    send('a');
    outbox.offer(published('b', 1, failed));
    const flushed = trackFlush(outbox.flush(1000));
    outbox.failAll(new TetherError(ErrorCode.RETRIES_EXHAUSTED, 'gave up'));
    await settle();
    expect(flushed.error?.code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect(failed).toEqual([[1, ErrorCode.RETRIES_EXHAUSTED]]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
