import { MIN_MAX_FRAME } from '@tether/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ClientOptions,
  ErrorCode,
  type PublishFailure,
  TetherClient,
  TetherError,
} from '../src/index.js';

// publish() and flush() on clients that never connect: no socket is opened, so fake timers drive
// every deadline. Over a server (fake time, memory pipes): test/logic/publish.test.ts; over real
// sockets across a reconnect: test/integration/publish.test.ts.

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const clients: TetherClient[] = [];
function offlineClient(options: Partial<ClientOptions> = {}): TetherClient {
  // Port 9 (discard) is never dialled: these clients are never connected.
  const client = new TetherClient({ port: 9, now: () => Date.now(), ...options });
  clients.push(client);
  return client;
}

function recordFailures(client: TetherClient): PublishFailure[] {
  const failures: PublishFailure[] = [];
  client.on('publishFailed', (failure) => failures.push(failure));
  return failures;
}

/** What a synchronous call threw. */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

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

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  vi.useRealTimers();
});

describe('client publish offline', () => {
  it('client publish - returns consecutive ids and queues like send(), in one order', async () => {
    const client = offlineClient();
    expect(client.publish('a')).toBe(1);
    const sent = client.send('b');
    sent.catch(() => {});
    expect(client.publish(Buffer.from('c'))).toBe(2);
    expect(client.publish(new Uint8Array([0x64]))).toBe(3);
    expect(client.stats().outbox).toMatchObject({ depth: 4, queued: 4, bytes: 4 });
  });

  it('client publish - bad input throws synchronously with a stable code and queues nothing', () => {
    const client = offlineClient({ maxFrame: MIN_MAX_FRAME });
    for (const bad of [42, null, undefined, { length: 1 }, [1, 2]]) {
      const error = thrown(() => client.publish(bad as unknown as string));
      expect(error, String(bad)).toBeInstanceOf(TetherError);
      expect((error as TetherError).code).toBe(ErrorCode.INVALID_OPTION);
    }
    // DATA length = type + flags + seq + payload: over the frame limit.
    expect(thrown(() => client.publish(Buffer.alloc(MIN_MAX_FRAME)))).toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    expect(thrown(() => client.publish('x', { ttlMs: 0 }))).toBeInstanceOf(TypeError);
    expect(client.stats().outbox.depth).toBe(0);
    // A refused publish takes no id.
    expect(client.publish('ok')).toBe(1);
  });

  it('client publish - send() rejects a payload that is not bytes or a string with INVALID_OPTION', async () => {
    const client = offlineClient();
    await expect(client.send(42 as unknown as string)).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
    });
  });

  it('client publish - request() rejects a payload that is not bytes or a string with INVALID_OPTION, holding nothing', async () => {
    const client = offlineClient();
    await expect(client.request(42 as unknown as string)).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
    });
    // Refused before it was opened: no pending request, no timer waiting for its timeout.
    expect(client.stats().pendingRequests).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('client publish - a full outbox throws QUEUE_FULL under reject and under wait (publish never waits)', async () => {
    for (const overflow of ['reject', 'wait'] as const) {
      const client = offlineClient({ maxQueuedMessages: 2, overflow });
      const failures = recordFailures(client);
      client.publish('a');
      client.publish('b');
      expect(
        thrown(() => client.publish('c')),
        overflow,
      ).toMatchObject({
        code: ErrorCode.QUEUE_FULL,
      });
      expect(client.stats().outbox.depth).toBe(2);
      await settle();
      expect(failures).toEqual([]);
    }
    const bytes = offlineClient({ maxQueuedBytes: 4 });
    bytes.publish('abc');
    expect(thrown(() => bytes.publish('de'))).toMatchObject({ code: ErrorCode.QUEUE_FULL });
    expect(thrown(() => bytes.publish('12345'))).toMatchObject({ code: ErrorCode.QUEUE_FULL });
  });

  it('client publish - under wait, a publish while a send waits for room throws QUEUE_FULL (order kept)', async () => {
    const client = offlineClient({ maxQueuedMessages: 1, overflow: 'wait' });
    client.publish('a');
    const waiting = client.send('b');
    waiting.catch(() => {});
    expect(client.stats().outbox.waiting).toBe(1);
    expect(thrown(() => client.publish('c'))).toMatchObject({ code: ErrorCode.QUEUE_FULL });
  });

  it('client publish - drop-oldest makes room and reports the dropped message after the call returns', async () => {
    const client = offlineClient({ maxQueuedMessages: 2, overflow: 'drop-oldest' });
    const failures = recordFailures(client);
    const drops: string[] = [];
    client.on('drop', (info) => drops.push(info.payload.toString()));
    client.publish('first');
    client.publish('second');
    expect(client.publish('third')).toBe(3);
    expect(failures).toEqual([]); // not from inside publish()
    await settle();
    expect(failures.map((f) => [f.id, f.code, f.seq, f.payload.toString()])).toEqual([
      [1, ErrorCode.MESSAGE_DROPPED, 0, 'first'],
    ]);
    expect(failures[0]?.error).toBeInstanceOf(TetherError);
    expect(drops).toEqual(['first']);
  });

  it('client publish - a message past its ttlMs is reported MESSAGE_EXPIRED', async () => {
    const client = offlineClient();
    const failures = recordFailures(client);
    client.publish('short', { ttlMs: 100 });
    client.publish('kept');
    await vi.advanceTimersByTimeAsync(99);
    expect(failures).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(failures.map((f) => [f.id, f.code])).toEqual([[1, ErrorCode.MESSAGE_EXPIRED]]);
    expect(client.stats().outbox.depth).toBe(1);
  });

  it('client publish - close() without flush reports every pending message CLOSED, in order, and rejects flush()', async () => {
    const client = offlineClient();
    const failures = recordFailures(client);
    for (let i = 0; i < 5; i++) client.publish(`m${i}`);
    const flushed = trackFlush(client.flush());
    await client.close();
    await settle();
    expect(failures.map((f) => [f.id, f.code, f.payload.toString()])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [i + 1, ErrorCode.CLOSED, `m${i}`]),
    );
    expect(flushed.error?.code).toBe(ErrorCode.CLOSED);
    // After close: publish throws, flush rejects.
    expect(thrown(() => client.publish('late'))).toMatchObject({ code: ErrorCode.CLOSED });
    await expect(client.flush()).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it('client publish - flush() resolves at once when nothing is pending; times out with FLUSH_TIMEOUT', async () => {
    const client = offlineClient();
    await expect(client.flush()).resolves.toBeUndefined();
    client.publish('never acknowledged');
    const flushed = trackFlush(client.flush({ timeoutMs: 500 }));
    await vi.advanceTimersByTimeAsync(499);
    expect(flushed.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(flushed.error?.code).toBe(ErrorCode.FLUSH_TIMEOUT);
    await expect(client.flush({ timeoutMs: 0 })).rejects.toBeInstanceOf(TypeError);
    // The message stays queued: a timeout gives up waiting, not the message.
    expect(client.stats().outbox.depth).toBe(1);
  });

  it('client publish - flush() rejects with ABORTED on its signal', async () => {
    const client = offlineClient();
    client.publish('a');
    const controller = new AbortController();
    const flushed = trackFlush(client.flush({ signal: controller.signal }));
    controller.abort();
    await settle();
    expect(flushed.error?.code).toBe(ErrorCode.ABORTED);
    // A signal aborted before the call rejects at once, and leaves no timer behind.
    await expect(
      client.flush({ signal: AbortSignal.abort(), timeoutMs: 1000 }),
    ).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    expect(vi.getTimerCount()).toBe(0);
    for (const timeoutMs of [-1, Number.NaN]) {
      await expect(client.flush({ timeoutMs })).rejects.toBeInstanceOf(TypeError);
    }
  });

  it('client publish - a publishFailed listener that throws is reported as HANDLER_FAILED, the others still run', async () => {
    const client = offlineClient();
    const errors: TetherError[] = [];
    client.on('error', (error) => errors.push(error));
    const seen: number[] = [];
    client.on('publishFailed', (failure) => {
      seen.push(failure.id);
      throw new Error('listener bug');
    });
    client.publish('a');
    client.publish('b');
    await client.close();
    await settle();
    expect(seen).toEqual([1, 2]);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.HANDLER_FAILED, ErrorCode.HANDLER_FAILED]);
  });
});
