import * as net from 'node:net';
import {
  backoffDelay,
  encodeChallenge,
  encodeError,
  MIN_MAX_FRAME,
  PREFACE,
  resolveBackoff,
  retryAfterDelay,
} from '@tether/protocol';
import { type ServerOptions, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientOptions,
  ClientState,
  ErrorCode,
  type ReconnectInfo,
  type SessionInfo,
  type StateChange,
  TetherClient,
  TetherError,
} from '../src/index.js';

// Real sockets on 127.0.0.1, port 0; everything started is closed after each test, newest first.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FAST_BACKOFF = { minDelayMs: 10, maxDelayMs: 40 };

async function startServer(
  options: ServerOptions = {},
): Promise<{ server: TetherServer; port: number }> {
  const server = new TetherServer({ host: '127.0.0.1', ...options });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  return { server, port };
}

function createClient(options: ClientOptions): TetherClient {
  const client = new TetherClient({ host: '127.0.0.1', ...options });
  cleanups.push(() => client.close());
  return client;
}

/** A port on which nothing listens (bound on port 0, then released). */
async function unusedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function nextState(client: TetherClient, state: ClientState): Promise<StateChange> {
  return new Promise((resolve) => {
    const onState = (change: StateChange): void => {
      if (change.state !== state) return;
      client.off('state', onState);
      resolve(change);
    };
    client.on('state', onState);
  });
}

function recordReconnects(client: TetherClient): (ReconnectInfo & { at: number })[] {
  const infos: (ReconnectInfo & { at: number })[] = [];
  client.on('reconnecting', (info) => infos.push({ ...info, at: performance.now() }));
  return infos;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('client - sending', () => {
  it('client - send() before connect() queues the message and delivers it after connect', async () => {
    const { server, port } = await startServer();
    const received: string[] = [];
    server.on('message', (message) => received.push(message.text()));
    const client = createClient({ port });
    let settled = false;
    const early = client.send('early').finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    expect(client.stats().outbox).toMatchObject({ depth: 1, queued: 1, inFlight: 0 });
    expect(received).toEqual([]);

    await client.connect();
    const receipt = await early;
    expect(receipt).toEqual({ id: `${client.clientId}:1`, seq: 1 });
    expect(received).toEqual(['early']);
    expect(client.stats().outbox.depth).toBe(0);
    expect(client.stats().messagesOut).toBe(1);
  });

  it('client - send() rejects with MESSAGE_TOO_LARGE for a payload over the server maxFrame', async () => {
    // PROTOCOL.md section 7: "a sender MUST NOT exceed the peer's value" (WELCOME.maxFrame).
    const { port } = await startServer({ maxFrame: MIN_MAX_FRAME });
    const client = createClient({ port, backoff: FAST_BACKOFF });
    await client.connect();
    const outcome = await Promise.race([
      client.send(Buffer.alloc(MIN_MAX_FRAME)).then(
        () => 'delivered',
        (error: TetherError) => error.code,
      ),
      nextState(client, ClientState.RECONNECTING).then(
        (change) => `link dropped with ${change.error?.code}`,
      ),
    ]);
    expect(outcome).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect(client.state).toBe(ClientState.CONNECTED);
  });

  it('client - close() rejects sends still waiting for an acknowledgement with CLOSED', async () => {
    const { port: serverPort } = await startServer();
    // A forwarder that stops carrying bytes to the server: nothing sent from then on is
    // acknowledged.
    const upstream: net.Socket[] = [];
    const forwarder = net.createServer((socket) => {
      const target = net.connect({ port: serverPort, host: '127.0.0.1' });
      upstream.push(target);
      socket.pipe(target).on('error', () => {});
      target.pipe(socket).on('error', () => {});
      cleanups.push(() => {
        socket.destroy();
        target.destroy();
      });
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => forwarder.close(resolve)));
    const port = (forwarder.address() as net.AddressInfo).port;
    const client = createClient({ port });
    await client.connect();
    for (const socket of upstream) socket.cork();
    const pending = [client.send('a'), client.send('b')].map((p) =>
      p.then(
        () => 'delivered',
        (error: TetherError) => error.code,
      ),
    );
    await client.close();
    expect(await Promise.all(pending)).toEqual([ErrorCode.CLOSED, ErrorCode.CLOSED]);
    await expect(client.send('after')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it('client - close({ flush: true }) waits until queued messages are acknowledged', async () => {
    const { server, port } = await startServer();
    const received: string[] = [];
    server.on('message', (message) => received.push(message.text()));
    const client = createClient({ port });
    await client.connect();
    const outcomes = Array.from({ length: 50 }, (_, i) =>
      client.send(`m${i}`).then(
        () => 'delivered',
        (error: TetherError) => error.code,
      ),
    );
    expect(client.stats().outbox.depth).toBe(50);
    await client.close({ flush: true, timeoutMs: 5000 });
    expect(client.state).toBe(ClientState.CLOSED);
    expect(new Set(await Promise.all(outcomes))).toEqual(new Set(['delivered']));
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });
});

describe('client - state and reconnect', () => {
  it('client - emits one state event per change, with reasons', async () => {
    const { server, port } = await startServer();
    const client = createClient({ port, backoff: FAST_BACKOFF, random: () => 0 });
    const changes: StateChange[] = [];
    client.on('state', (change) => changes.push(change));
    const reconnects = recordReconnects(client);
    const sessions: SessionInfo[] = [];
    client.on('session', (info) => sessions.push(info));

    await client.connect();
    const reconnected = nextState(client, ClientState.CONNECTED);
    server.peers[0]?.disconnect();
    await reconnected;
    await client.close();

    expect(changes.map((c) => [c.previous, c.state])).toEqual([
      [ClientState.IDLE, ClientState.CONNECTING],
      [ClientState.CONNECTING, ClientState.CONNECTED],
      [ClientState.CONNECTED, ClientState.RECONNECTING],
      [ClientState.RECONNECTING, ClientState.CONNECTED],
      [ClientState.CONNECTED, ClientState.CLOSED],
    ]);
    expect(changes.map((c) => c.reason)).toEqual([
      'connect() called',
      'session established',
      expect.any(String),
      'session established',
      'close() called',
    ]);
    expect(changes[2]?.reason.length).toBeGreaterThan(0);
    expect(changes[2]?.error?.code).toBe(ErrorCode.CONNECTION_LOST);
    expect(changes[4]?.error).toBeUndefined();
    // The first retry of an outage is attempt 1 and waits backoffDelay(1).
    expect(reconnects.map((r) => [r.attempt, r.delayMs])).toEqual([[1, 10]]);
    expect(reconnects[0]?.reason).toBe(changes[2]?.reason);
    expect(sessions.map((s) => [s.resumed, s.lost])).toEqual([
      [false, false],
      [true, false],
    ]);
    expect(client.stats().reconnects).toBe(1);
  });

  it('client - retries: 3 ends with RETRIES_EXHAUSTED after three retries, state closed', async () => {
    const port = await unusedPort();
    const client = createClient({ port, backoff: FAST_BACKOFF, random: () => 0, retries: 3 });
    const changes: StateChange[] = [];
    client.on('state', (change) => changes.push(change));
    const errors: TetherError[] = [];
    client.on('error', (error) => errors.push(error));
    const reconnects = recordReconnects(client);
    const queued = client.send('never').then(
      () => 'delivered',
      (error: TetherError) => error.code,
    );

    const error = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TetherError);
    expect((error as TetherError).code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect(reconnects).toHaveLength(3);
    expect(client.state).toBe(ClientState.CLOSED);
    expect(changes.map((c) => [c.previous, c.state])).toEqual([
      [ClientState.IDLE, ClientState.CONNECTING],
      [ClientState.CONNECTING, ClientState.CLOSED],
    ]);
    expect(changes[1]?.error?.code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.RETRIES_EXHAUSTED]);
    expect(await queued).toBe(ErrorCode.RETRIES_EXHAUSTED);
  });

  it('client - reconnecting delays follow backoffDelay from attempt 1, capped, with an injected random', async () => {
    const port = await unusedPort();
    const client = createClient({ port, backoff: FAST_BACKOFF, random: () => 0, retries: 4 });
    const reconnects = recordReconnects(client);
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED });
    const options = resolveBackoff(FAST_BACKOFF);
    const expected = [1, 2, 3, 4].map((attempt) => [
      attempt,
      backoffDelay(attempt, options, () => 0),
    ]);
    expect(expected).toEqual([
      [1, 10],
      [2, 20],
      [3, 40],
      [4, 40],
    ]);
    expect(reconnects.map((r) => [r.attempt, r.delayMs])).toEqual(expected);
  });

  it('client - jitter from the injected random shortens each delay by up to half', async () => {
    const port = await unusedPort();
    const client = createClient({
      port,
      backoff: { minDelayMs: 20, maxDelayMs: 40 },
      random: () => 0.5,
      retries: 3,
    });
    const reconnects = recordReconnects(client);
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED });
    const options = resolveBackoff({ minDelayMs: 20, maxDelayMs: 40 });
    expect(reconnects.map((r) => r.delayMs)).toEqual(
      reconnects.map((r) => backoffDelay(r.attempt, options, () => 0.5)),
    );
    for (const r of reconnects) expect(r.delayMs).toBeLessThanOrEqual(30);
  });

  it('client - retries: 0 makes a single attempt', async () => {
    const port = await unusedPort();
    const client = createClient({ port, backoff: FAST_BACKOFF, retries: 0 });
    const reconnects = recordReconnects(client);
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED });
    expect(reconnects).toHaveLength(0);
    expect(client.state).toBe(ClientState.CLOSED);
  });

  it('client - maxRetryTime stops the reconnect loop', async () => {
    const port = await unusedPort();
    const client = createClient({
      port,
      backoff: { minDelayMs: 10, maxDelayMs: 10 },
      random: () => 0,
      maxRetryTime: 60,
    });
    const reconnects = recordReconnects(client);
    const started = performance.now();
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED });
    const elapsed = performance.now() - started;
    expect(reconnects.length).toBeGreaterThanOrEqual(1);
    expect(reconnects.length).toBeLessThanOrEqual(7);
    expect(elapsed).toBeLessThan(1000);
    expect(client.state).toBe(ClientState.CLOSED);
  });

  it('client - a healthy connection resets the attempt count; a short-lived one does not', async () => {
    let clock = 0;
    const port = await unusedPort();
    const client = createClient({
      port,
      backoff: FAST_BACKOFF,
      random: () => 0,
      healthyAfterMs: 1000,
      now: () => clock,
    });
    const reconnects = recordReconnects(client);
    // Fail twice, then let the next attempt through.
    const twoFailures = new Promise<void>((resolve) =>
      client.on('reconnecting', () => {
        if (reconnects.length === 2) resolve();
      }),
    );
    const connected = client.connect();
    await twoFailures;
    const { server } = await startServer({ port });
    await connected;
    // Let the client's connect bookkeeping (it reads the clock) finish before moving the clock.
    await new Promise((resolve) => setImmediate(resolve));
    const attemptsBefore = reconnects.at(-1)?.attempt ?? 0;

    // Dropped at once (clock unchanged): the count goes on, so the wait is not back to the minimum.
    let back = nextState(client, ClientState.CONNECTED);
    server.peers[0]?.disconnect();
    await back;
    await new Promise((resolve) => setImmediate(resolve));
    expect(reconnects.at(-1)?.attempt).toBeGreaterThanOrEqual(attemptsBefore);
    expect(reconnects.at(-1)?.delayMs).toBeGreaterThan(10);

    // Up for 2000 ms by the injected clock: healthy, so the next outage starts at attempt 1.
    clock += 2000;
    back = nextState(client, ClientState.CONNECTED);
    server.peers[0]?.disconnect();
    await back;
    expect(reconnects.at(-1)).toMatchObject({ attempt: 1, delayMs: 10 });
  });

  it('client - a GOAWAY retryAfterMs is honoured before reconnecting', async () => {
    const first = await startServer();
    const client = createClient({ port: first.port, backoff: FAST_BACKOFF, random: () => 0 });
    await client.connect();
    const reconnects = recordReconnects(client);
    const sessions: SessionInfo[] = [];
    client.on('session', (info) => sessions.push(info));

    await first.server.close({ retryAfterMs: 300, drainTimeoutMs: 0 });
    const second = await startServer({ port: first.port });
    const back = nextState(client, ClientState.CONNECTED);
    await back;
    const connectedAt = performance.now();

    expect(reconnects).toHaveLength(1);
    expect(reconnects[0]?.delayMs).toBeGreaterThanOrEqual(300);
    expect(reconnects[0]?.delayMs).toBe(retryAfterDelay(300, () => 0));
    expect(connectedAt - (reconnects[0]?.at ?? 0)).toBeGreaterThanOrEqual(295);
    // The first server ended its sessions: the new one is a fresh session.
    expect(sessions.map((s) => [s.resumed, s.lost])).toEqual([[false, true]]);
    expect(second.server.peers).toHaveLength(1);
  });

  it('client - an ERROR retryAfterMs is a floor for the next attempt', async () => {
    // PROTOCOL.md section 8: "retryAfterMs, when present, is a floor for the client's next attempt".
    const sockets = new Set<net.Socket>();
    const busy = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.write(PREFACE);
      socket.write(encodeChallenge({ nonce: 'bm9uY2U=', auth: [], maxFrame: 1 << 20 }));
      socket.end(
        encodeError({
          code: ErrorCode.TOO_MANY_CONNECTIONS,
          message: 'server full',
          retryAfterMs: 300,
        }),
      );
    });
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const socket of sockets) socket.destroy();
          busy.close(resolve);
        }),
    );
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as net.AddressInfo;
    const client = createClient({ port, backoff: FAST_BACKOFF, random: () => 0 });
    const firstRetry = new Promise<ReconnectInfo>((resolve) =>
      client.once('reconnecting', resolve),
    );
    client.connect().catch(() => {});
    const info = await firstRetry;
    expect(info.delayMs).toBeGreaterThanOrEqual(300);
  });
});

describe('client - requests', () => {
  it('client - request() resolves with the handler reply and reports handler errors', async () => {
    const { port } = await startServer({
      onRequest: (payload) => {
        const text = payload.toString();
        if (text === 'deny') throw new TetherError(ErrorCode.AUTH_FAILED, 'denied');
        if (text === 'boom') throw new Error('boom');
        return `re:${text}`;
      },
    });
    const client = createClient({ port });
    await client.connect();
    expect((await client.request('ping')).toString()).toBe('re:ping');
    await expect(client.request('deny')).rejects.toMatchObject({
      code: ErrorCode.REQUEST_FAILED,
      remoteCode: ErrorCode.AUTH_FAILED,
    });
    await expect(client.request('boom')).rejects.toMatchObject({
      code: ErrorCode.REQUEST_FAILED,
      remoteCode: ErrorCode.REQUEST_FAILED,
    });
    expect(client.stats().pendingRequests).toBe(0);
  });

  it('client - request() survives a reconnect while the server is still working on it', async () => {
    const called = deferred();
    const release = deferred();
    const { server, port } = await startServer({
      onRequest: async (payload) => {
        called.resolve();
        await release.promise;
        return `re:${payload.toString()}`;
      },
    });
    const client = createClient({ port, backoff: FAST_BACKOFF, random: () => 0 });
    const sessions: SessionInfo[] = [];
    client.on('session', (info) => sessions.push(info));
    await client.connect();

    const reply = client.request('slow', { timeoutMs: 5000 });
    await called.promise;
    const disconnected = new Promise<void>((resolve) => server.once('disconnect', () => resolve()));
    const reconnected = nextState(client, ClientState.CONNECTED);
    server.peers[0]?.disconnect();
    await disconnected;
    // The reply is produced while the client is away; it travels in the resumed session.
    release.resolve();
    await reconnected;

    expect((await reply).toString()).toBe('re:slow');
    expect(sessions.map((s) => s.resumed)).toEqual([false, true]);
    expect(client.stats()).toMatchObject({ reconnects: 1, pendingRequests: 0 });
  });

  it('client - request() times out with REQUEST_TIMEOUT when the server never answers', async () => {
    const { port } = await startServer({ onRequest: () => new Promise<never>(() => {}) });
    const client = createClient({ port });
    await client.connect();
    const started = performance.now();
    await expect(client.request('void', { timeoutMs: 50 })).rejects.toMatchObject({
      code: ErrorCode.REQUEST_TIMEOUT,
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(client.stats().pendingRequests).toBe(0);
    expect(client.state).toBe(ClientState.CONNECTED);
  });
});
