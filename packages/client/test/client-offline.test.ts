import { MIN_MAX_FRAME } from '@tether/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ClientOptions,
  ClientState,
  ErrorCode,
  type StateChange,
  TetherClient,
  type TetherError,
} from '../src/index.js';

// These tests never call connect(): no socket is opened, so fake timers drive every deadline.

interface Tracked<T> {
  promise: Promise<T>;
  status: 'pending' | 'resolved' | 'rejected';
  value: T | undefined;
  error: TetherError | undefined;
}

function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { promise, status: 'pending', value: undefined, error: undefined };
  promise.then(
    (value) => {
      tracked.status = 'resolved';
      tracked.value = value;
    },
    (error: TetherError) => {
      tracked.status = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

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

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  vi.useRealTimers();
});

describe('client offline', () => {
  it('client offline - send() queues while idle without opening anything', async () => {
    const client = offlineClient();
    const sent = track(client.send('hello'));
    await settle();
    expect(sent.status).toBe('pending');
    expect(client.state).toBe(ClientState.IDLE);
    expect(client.stats().outbox).toEqual({
      depth: 1,
      queued: 1,
      inFlight: 0,
      bytes: 5,
      waiting: 0,
    });
  });

  it('client offline - a payload over maxFrame rejects with MESSAGE_TOO_LARGE and is not queued', async () => {
    const client = offlineClient({ maxFrame: MIN_MAX_FRAME });
    // DATA length = type + flags + seq + payload: this payload is 10 bytes over the limit.
    const tooBig = track(client.send(Buffer.alloc(MIN_MAX_FRAME)));
    const fine = track(client.send(Buffer.alloc(100)));
    await settle();
    expect(tooBig.error?.code).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect(fine.status).toBe('pending');
    expect(client.stats().outbox.depth).toBe(1);
  });

  it('client offline - ttlMs must be positive', async () => {
    const client = offlineClient();
    await expect(client.send('x', { ttlMs: 0 })).rejects.toBeInstanceOf(TypeError);
    await expect(client.send('x', { ttlMs: -1 })).rejects.toBeInstanceOf(TypeError);
    expect(client.stats().outbox.depth).toBe(0);
  });

  it('client offline - a queued message past its TTL rejects with MESSAGE_EXPIRED', async () => {
    const client = offlineClient();
    const short = track(client.send('short', { ttlMs: 100 }));
    const kept = track(client.send('kept'));
    await vi.advanceTimersByTimeAsync(99);
    expect(short.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(short.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(kept.status).toBe('pending');
    expect(client.stats().outbox.depth).toBe(1);
  });

  it('client offline - the reject policy applies to send() once the outbox is full', async () => {
    const client = offlineClient({ maxQueuedMessages: 2 });
    const sent = [track(client.send('a')), track(client.send('b')), track(client.send('c'))];
    await settle();
    expect(sent.map((s) => s.status)).toEqual(['pending', 'pending', 'rejected']);
    expect(sent[2]?.error?.code).toBe(ErrorCode.QUEUE_FULL);
  });

  it('client offline - drop-oldest emits a drop event with the dropped payload', async () => {
    const client = offlineClient({ maxQueuedMessages: 1, overflow: 'drop-oldest' });
    const drops: string[] = [];
    client.on('drop', (info) => drops.push(`${info.reason}:${info.payload.toString()}`));
    const first = track(client.send('first'));
    const second = track(client.send('second'));
    await settle();
    expect(first.error?.code).toBe(ErrorCode.MESSAGE_DROPPED);
    expect(second.status).toBe('pending');
    expect(drops).toEqual(['overflow:first']);
  });

  it('client offline - close() rejects pending sends and requests with CLOSED', async () => {
    const client = offlineClient();
    const changes: StateChange[] = [];
    const closeReasons: string[] = [];
    client.on('state', (change) => changes.push(change));
    client.on('close', (reason) => closeReasons.push(reason));
    const a = track(client.send('a'));
    const b = track(client.send('b', { ttlMs: 10_000 }));
    const request = track(client.request('r'));
    await client.close();
    await settle();
    expect([a.error?.code, b.error?.code, request.error?.code]).toEqual([
      ErrorCode.CLOSED,
      ErrorCode.CLOSED,
      ErrorCode.CLOSED,
    ]);
    expect(client.state).toBe(ClientState.CLOSED);
    expect(changes.map((c) => [c.previous, c.state, c.reason])).toEqual([
      [ClientState.IDLE, ClientState.CLOSED, 'close() called'],
    ]);
    expect(closeReasons).toEqual(['close() called']);
    expect(client.stats()).toMatchObject({ pendingRequests: 0, outbox: { depth: 0 } });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('client offline - send(), request() and connect() after close() reject with CLOSED', async () => {
    const client = offlineClient();
    await client.close();
    await expect(client.send('late')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    await expect(client.request('late')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('client offline - request() of a payload over maxFrame rejects with MESSAGE_TOO_LARGE', async () => {
    const client = offlineClient({ maxFrame: MIN_MAX_FRAME });
    await expect(client.request(Buffer.alloc(MIN_MAX_FRAME))).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    expect(client.stats().pendingRequests).toBe(0);
  });

  it('client offline - request() times out with REQUEST_TIMEOUT while offline and leaves the outbox', async () => {
    const client = offlineClient();
    const request = track(client.request('r', { timeoutMs: 500 }));
    await settle();
    expect(client.stats().outbox.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(499);
    expect(request.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(request.error?.code).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(client.stats().pendingRequests).toBe(0);
    // The unsent request is taken out of the queue: it will never reach the server.
    expect(client.stats().outbox.queued).toBe(0);
  });

  it('client offline - request() aborted by its signal rejects with ABORTED and leaves the outbox', async () => {
    const client = offlineClient();
    const controller = new AbortController();
    const request = track(client.request('r', { signal: controller.signal }));
    controller.abort();
    await settle();
    expect(request.error?.code).toBe(ErrorCode.ABORTED);
    expect(client.stats().outbox.queued).toBe(0);
    expect(client.stats().pendingRequests).toBe(0);
  });

  it('client offline - close({ flush: true }) gives up after timeoutMs and then rejects with CLOSED', async () => {
    const client = offlineClient();
    const sent = track(client.send('never delivered'));
    const closing = track(client.close({ flush: true, timeoutMs: 100 }));
    await vi.advanceTimersByTimeAsync(99);
    expect(closing.status).toBe('pending');
    expect(sent.status).toBe('pending');
    expect(client.state).toBe(ClientState.IDLE);
    await vi.advanceTimersByTimeAsync(1);
    expect(closing.status).toBe('resolved');
    expect(sent.error?.code).toBe(ErrorCode.CLOSED);
    expect(client.state).toBe(ClientState.CLOSED);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('client offline - close({ flush: true }) with an empty outbox closes at once', async () => {
    const client = offlineClient();
    const closing = track(client.close({ flush: true, timeoutMs: 10_000 }));
    await settle();
    expect(closing.status).toBe('resolved');
    expect(client.state).toBe(ClientState.CLOSED);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('client offline - close({ flush: true }) returns once expired messages leave the outbox empty', async () => {
    const client = offlineClient();
    const sent = track(client.send('short-lived', { ttlMs: 50 }));
    const closing = track(client.close({ flush: true, timeoutMs: 10_000 }));
    await vi.advanceTimersByTimeAsync(50);
    expect(sent.error?.code).toBe(ErrorCode.MESSAGE_EXPIRED);
    expect(client.stats().outbox.depth).toBe(0);
    // Nothing is left to flush: waiting the remaining 9950 ms serves no purpose.
    await vi.advanceTimersByTimeAsync(1);
    expect(closing.status).toBe('resolved');
    expect(client.state).toBe(ClientState.CLOSED);
  });
});
