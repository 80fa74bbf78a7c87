import { ErrorCode, type TetherError } from '@tether/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PendingRequests } from '../src/pending-requests.js';

type RemoteFailure = TetherError & { remoteCode?: string };

interface Opened {
  id: number;
  reply: Promise<Buffer>;
  status: 'pending' | 'resolved' | 'rejected';
  value: Buffer | undefined;
  error: RemoteFailure | undefined;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function open(
  requests: PendingRequests,
  timeoutMs: number,
  signal?: AbortSignal,
  onGiveUp: (id: number) => void = () => {},
): Opened {
  const { id, reply } = requests.open(timeoutMs, signal, onGiveUp);
  const opened: Opened = { id, reply, status: 'pending', value: undefined, error: undefined };
  reply.then(
    (value) => {
      opened.status = 'resolved';
      opened.value = value;
    },
    (error: RemoteFailure) => {
      opened.status = 'rejected';
      opened.error = error;
    },
  );
  return opened;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('pending requests', () => {
  it('pending requests - settle resolves with the reply and frees the entry and its timer', async () => {
    const requests = new PendingRequests();
    const onGiveUp = vi.fn();
    const request = open(requests, 1000, undefined, onGiveUp);
    expect(requests.size).toBe(1);
    expect(vi.getTimerCount()).toBe(1);

    requests.settle(request.id, Buffer.from('pong'), false);
    await settle();
    expect(request.status).toBe('resolved');
    expect(request.value?.toString()).toBe('pong');
    expect(requests.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(onGiveUp).not.toHaveBeenCalled();
  });

  it('pending requests - ids are unique and each reply goes to its own request', async () => {
    const requests = new PendingRequests();
    const a = open(requests, 1000);
    const b = open(requests, 1000);
    expect(a.id).not.toBe(b.id);
    requests.settle(b.id, Buffer.from('for b'), false);
    requests.settle(a.id, Buffer.from('for a'), false);
    await settle();
    expect(a.value?.toString()).toBe('for a');
    expect(b.value?.toString()).toBe('for b');
  });

  it('pending requests - an error response rejects with REQUEST_FAILED carrying the remote code', async () => {
    const requests = new PendingRequests();
    const request = open(requests, 1000);
    const body = JSON.stringify({ code: 'NOT_FOUND', message: 'no such thing' });
    requests.settle(request.id, Buffer.from(body), true);
    await settle();
    expect(request.status).toBe('rejected');
    expect(request.error?.code).toBe(ErrorCode.REQUEST_FAILED);
    expect(request.error?.remoteCode).toBe('NOT_FOUND');
    expect(requests.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('pending requests - an error response that is not JSON still rejects with REQUEST_FAILED', async () => {
    const requests = new PendingRequests();
    const request = open(requests, 1000);
    requests.settle(request.id, Buffer.from('\u0000garbage'), true);
    await settle();
    expect(request.error?.code).toBe(ErrorCode.REQUEST_FAILED);
    expect(request.error?.remoteCode).toBe(ErrorCode.REQUEST_FAILED);
  });

  it('pending requests - times out with REQUEST_TIMEOUT at exactly timeoutMs and calls onGiveUp', async () => {
    const requests = new PendingRequests();
    const onGiveUp = vi.fn();
    const request = open(requests, 1000, undefined, onGiveUp);
    await vi.advanceTimersByTimeAsync(999);
    expect(request.status).toBe('pending');
    expect(onGiveUp).not.toHaveBeenCalled();

    await vi.advanceTimersByTimeAsync(1);
    expect(request.status).toBe('rejected');
    expect(request.error?.code).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(onGiveUp).toHaveBeenCalledTimes(1);
    expect(onGiveUp).toHaveBeenCalledWith(request.id);
    expect(requests.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('pending requests - an infinite timeout starts no timer', () => {
    const requests = new PendingRequests();
    open(requests, Number.POSITIVE_INFINITY);
    expect(vi.getTimerCount()).toBe(0);
    expect(requests.size).toBe(1);
  });

  it('pending requests - abort rejects with ABORTED, calls onGiveUp and clears the timer', async () => {
    const requests = new PendingRequests();
    const onGiveUp = vi.fn();
    const controller = new AbortController();
    const request = open(requests, 1000, controller.signal, onGiveUp);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    await settle();
    expect(request.status).toBe('rejected');
    expect(request.error?.code).toBe(ErrorCode.ABORTED);
    expect(request.error?.cause).toBe(reason);
    expect(onGiveUp).toHaveBeenCalledWith(request.id);
    expect(requests.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('pending requests - an already aborted signal rejects with ABORTED at once', async () => {
    const requests = new PendingRequests();
    const onGiveUp = vi.fn();
    const request = open(requests, 1000, AbortSignal.abort(), onGiveUp);
    await settle();
    expect(request.status).toBe('rejected');
    expect(request.error?.code).toBe(ErrorCode.ABORTED);
    expect(requests.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('pending requests - a settled request ignores a later abort', async () => {
    const requests = new PendingRequests();
    const onGiveUp = vi.fn();
    const controller = new AbortController();
    const request = open(requests, 1000, controller.signal, onGiveUp);
    requests.settle(request.id, Buffer.from('ok'), false);
    controller.abort();
    await settle();
    expect(request.status).toBe('resolved');
    expect(onGiveUp).not.toHaveBeenCalled();
  });

  it('pending requests - failAll rejects every request with the error and leaves no timer', async () => {
    const requests = new PendingRequests();
    const onGiveUp = vi.fn();
    const controller = new AbortController();
    const a = open(requests, 1000, controller.signal, onGiveUp);
    const b = open(requests, 5000, undefined, onGiveUp);
    const error = new Error('closed');
    requests.failAll(error);
    await settle();
    expect([a.status, b.status]).toEqual(['rejected', 'rejected']);
    expect(a.error).toBe(error);
    expect(b.error).toBe(error);
    expect(requests.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    controller.abort();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(onGiveUp).not.toHaveBeenCalled();
  });

  it('pending requests - a late settle of an unknown or finished id is ignored', async () => {
    const requests = new PendingRequests();
    const timedOut = open(requests, 10);
    const live = open(requests, 1000);
    await vi.advanceTimersByTimeAsync(10);
    expect(timedOut.error?.code).toBe(ErrorCode.REQUEST_TIMEOUT);

    expect(() => requests.settle(timedOut.id, Buffer.from('late'), false)).not.toThrow();
    expect(() => requests.settle(9999, Buffer.from('stray'), true)).not.toThrow();
    await settle();
    expect(timedOut.error?.code).toBe(ErrorCode.REQUEST_TIMEOUT);
    expect(live.status).toBe('pending');
    expect(requests.size).toBe(1);
    requests.settle(live.id, Buffer.from('ok'), false);
    await settle();
    expect(live.status).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('pending requests - ids start at firstId and each is announced before it is used', () => {
    const used: number[] = [];
    const requests = new PendingRequests(undefined, 1026, (id) => used.push(id));
    const a = open(requests, Number.POSITIVE_INFINITY);
    const b = open(requests, Number.POSITIVE_INFINITY);
    expect([a.id, b.id]).toEqual([1026, 1027]);
    expect(used).toEqual([1026, 1027]);
    requests.failAll(new Error('done'));
  });
});
