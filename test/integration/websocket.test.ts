import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClientOptions, type Message, TetherClient } from '@tether/client';
import {
  type Transport,
  WEBSOCKET_MAX_MESSAGE,
  WEBSOCKET_SUBPROTOCOL,
  WebSocketTransport,
} from '@tether/core';
import {
  ErrorCode,
  encodeHello,
  encodePing,
  type Frame,
  FrameDecoder,
  FrameType,
  type HelloBody,
  PREFACE,
  PROTOCOL_VERSION,
} from '@tether/protocol';
import {
  type DisconnectInfo,
  type Peer,
  type ServerOptions,
  type TetherError,
  TetherServer,
} from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';

// Tether over WebSocket with Node on both ends: the server's endpoint (ws), the client's `url`
// option (ws, as Node 20 has no global WebSocket), and a session moving between TCP and
// WebSocket. The browser runs are in websocket-browser.test.ts.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(options: ServerOptions = {}): Promise<{
  server: TetherServer;
  port: number;
  wsPort: number;
}> {
  const server = new TetherServer({ webSocket: {}, ...options });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  return { server, port, wsPort: server.webSocketAddress?.port ?? 0 };
}

function client(options: ClientOptions): TetherClient {
  const c = new TetherClient({
    pingIntervalMs: 200,
    deadAfterMs: 2000,
    backoff: { minDelayMs: 20, maxDelayMs: 100 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

/** A raw ws socket to the endpoint; resolves once open, or with the HTTP status it was refused with. */
function rawSocket(
  url: string,
  options: { protocols?: string[]; origin?: string; headers?: Record<string, string> } = {},
): Promise<{ socket: WebSocket; frames: Frame[] } | { status: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options.protocols ?? [WEBSOCKET_SUBPROTOCOL], {
      ...(options.origin === undefined ? {} : { origin: options.origin }),
      headers: options.headers ?? {},
    });
    cleanups.push(() => socket.terminate());
    // Listening from the start: the server's first messages may come with the upgrade.
    const frames = framesOf(socket);
    socket.once('open', () => resolve({ socket, frames }));
    socket.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      response.resume();
    });
    socket.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

async function openRaw(
  url: string,
  origin?: string,
): Promise<{ socket: WebSocket; frames: Frame[] }> {
  const result = await rawSocket(url, origin === undefined ? {} : { origin });
  if (!('socket' in result)) throw new Error(`refused with ${result.status}`);
  return result;
}

/** Frames a raw socket receives, decoded. */
function framesOf(socket: WebSocket): Frame[] {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  socket.on('message', (data: Buffer) => {
    decoder.push(data, (frame) => frames.push(frame));
  });
  return frames;
}

function hello(clientId: string): HelloBody {
  return { versions: [PROTOCOL_VERSION], clientId, delivered: 0, acked: 0, maxFrame: 1 << 20 };
}

function closeOf(socket: WebSocket): Promise<number> {
  return new Promise((resolve) => socket.once('close', (code) => resolve(code)));
}

describe('websocket - Node client and server', () => {
  it('websocket - a client with url exchanges messages and requests exactly once, in order', async () => {
    const { server, wsPort } = await startServer({
      onRequest: (payload) => `re:${payload.toString()}`,
    });
    const atServer: string[] = [];
    let peer: Peer | undefined;
    server.on('message', (m, p) => {
      peer = p;
      atServer.push(m.text());
    });
    const c = client({ url: `ws://127.0.0.1:${wsPort}/tether` });
    const atClient: string[] = [];
    c.on('message', (m: Message) => atClient.push(m.text()));
    await c.connect();
    const sends = Array.from({ length: 200 }, (_, i) => c.send(`c${i}`));
    await Promise.all(sends);
    expect(atServer).toEqual(Array.from({ length: 200 }, (_, i) => `c${i}`));
    await Promise.all(Array.from({ length: 200 }, (_, i) => (peer as Peer).send(`s${i}`)));
    expect(atClient).toEqual(Array.from({ length: 200 }, (_, i) => `s${i}`));
    expect((await c.request('ping')).toString()).toBe('re:ping');
    // A payload far larger than one WebSocket message travels in many.
    const big = Buffer.alloc(300 * 1024, 7);
    const received = new Promise<Buffer>((resolve) =>
      server.once('message', (m) => resolve(m.data)),
    );
    await c.send(big);
    expect((await received).equals(big)).toBe(true);
    expect(peer?.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('websocket - 100,000 small messages in one burst arrive whole, read a turn at a time', async () => {
    // More than a turn's reading budget arrives at once: the server pauses the WebSocket between
    // turns, and what ws had read meanwhile must not count against the paused bound.
    const { server, wsPort } = await startServer();
    let received = 0;
    server.on('message', () => received++);
    const c = client({ url: `ws://127.0.0.1:${wsPort}/tether`, overflow: 'wait' });
    await c.connect();
    const payload = Buffer.alloc(128, 1);
    let last: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < 100_000; i++) last = c.send(payload);
    await last;
    expect(received).toBe(100_000);
    expect(c.stats().reconnects).toBe(0);
  });

  it('websocket - a session moves between TCP and WebSocket connections and resumes', async () => {
    const { server, port, wsPort } = await startServer();
    const kinds = ['tcp', 'ws', 'tcp', 'ws'];
    const opened: Transport[] = [];
    let attempt = 0;
    const c = client({
      port,
      clientId: 'mover',
      transport: async () => {
        const kind = kinds[attempt++ % kinds.length];
        const transport =
          kind === 'ws' ? await wsTransport(`ws://127.0.0.1:${wsPort}/tether`) : await tcp(port);
        opened.push(transport);
        return transport;
      },
    });
    const sessions: { resumed: boolean; sessionId: string }[] = [];
    c.on('session', (info) => sessions.push(info));
    const atServer: string[] = [];
    server.on('message', (m) => atServer.push(m.text()));
    await c.connect();
    for (let round = 0; round < 3; round++) {
      await c.send(`before-${round}`);
      // Cut the link; the next connection is of the other kind.
      const reconnected = new Promise<void>((resolve) => c.once('session', () => resolve()));
      opened.at(-1)?.destroy();
      const queued = c.send(`during-${round}`);
      await reconnected;
      await queued;
    }
    expect(sessions).toHaveLength(4);
    // Every connection was of the kind planned: none failed over to the other.
    expect(attempt).toBe(4);
    expect(opened.map((t) => (t instanceof WebSocketTransport ? 'ws' : 'tcp'))).toEqual(kinds);
    expect(
      sessions.slice(1).every((s) => s.resumed && s.sessionId === sessions[0]?.sessionId),
    ).toBe(true);
    expect(atServer).toEqual([
      'before-0',
      'during-0',
      'before-1',
      'during-1',
      'before-2',
      'during-2',
    ]);
    expect(server.peers).toHaveLength(1);
  });

  it('websocket - origins: others get 403 before the upgrade; same origin and no origin pass', async () => {
    const { wsPort } = await startServer();
    const url = `ws://127.0.0.1:${wsPort}/tether`;
    expect(await rawSocket(url, { origin: 'https://evil.example' })).toEqual({ status: 403 });
    expect(await rawSocket(url, { origin: `http://127.0.0.1:${wsPort}` })).toHaveProperty('socket');
    expect(await rawSocket(url)).toHaveProperty('socket');

    const listed = await startServer({ webSocket: { origins: ['https://app.example'] } });
    const listedUrl = `ws://127.0.0.1:${listed.wsPort}/tether`;
    expect(await rawSocket(listedUrl, { origin: 'https://app.example' })).toHaveProperty('socket');
    expect(await rawSocket(listedUrl, { origin: `http://127.0.0.1:${listed.wsPort}` })).toEqual({
      status: 403,
    });
  });

  it('websocket - an upgrade without subprotocol tether.v1 gets 400, another path 404', async () => {
    const { wsPort } = await startServer();
    expect(await rawSocket(`ws://127.0.0.1:${wsPort}/tether`, { protocols: ['mqtt'] })).toEqual({
      status: 400,
    });
    expect(await rawSocket(`ws://127.0.0.1:${wsPort}/other`)).toEqual({ status: 404 });
    const plain = await fetch(`http://127.0.0.1:${wsPort}/tether`);
    expect(plain.status).toBe(426);
  });

  it('websocket - a text message is a protocol error: close 1003 and UNEXPECTED_FRAME', async () => {
    const { server, wsPort } = await startServer();
    const errors: TetherError[] = [];
    server.on('error', (error) => errors.push(error));
    const { socket } = await openRaw(`ws://127.0.0.1:${wsPort}/tether`);
    const closed = closeOf(socket);
    socket.send('hello');
    expect(await closed).toBe(1003);
    await expect.poll(() => errors.map((e) => e.code)).toEqual([ErrorCode.UNEXPECTED_FRAME]);
  });

  it('websocket - a message over 16 KiB is refused with 1009 and FRAME_TOO_LARGE, at once', async () => {
    const { server, wsPort } = await startServer();
    const errors: TetherError[] = [];
    server.on('error', (error) => errors.push(error));
    const { socket } = await openRaw(`ws://127.0.0.1:${wsPort}/tether`);
    const closed = closeOf(socket);
    socket.send(Buffer.alloc(WEBSOCKET_MAX_MESSAGE + 1));
    expect(await closed).toBe(1009);
    await expect.poll(() => errors.map((e) => e.code)).toEqual([ErrorCode.FRAME_TOO_LARGE]);
    // A peer that does not read the close frame is cut at once too (not after ws's close timeout).
    const { socket: deaf } = await openRaw(`ws://127.0.0.1:${wsPort}/tether`);
    const deafClosed = closeOf(deaf);
    (deaf as unknown as { pause(): void }).pause();
    const before = performance.now();
    deaf.send(Buffer.alloc(WEBSOCKET_MAX_MESSAGE + 1));
    await expect.poll(() => errors.length).toBe(2);
    (deaf as unknown as { resume(): void }).resume();
    await deafClosed;
    expect(performance.now() - before).toBeLessThan(2000);
    expect(server.stats().connections).toBe(0);
  });

  it('websocket - one connection limit for TCP and WebSocket; the refused learn TOO_MANY_CONNECTIONS', async () => {
    const { server, port, wsPort } = await startServer({ maxConnections: 2 });
    await client({ port, clientId: 'tcp-one' }).connect();
    await client({ url: `ws://127.0.0.1:${wsPort}/tether`, clientId: 'ws-one' }).connect();
    const { socket, frames } = await openRaw(`ws://127.0.0.1:${wsPort}/tether`);
    await closeOf(socket);
    expect(frames.map((f) => f.type)).toEqual([FrameType.ERROR]);
    const error = frames[0] as Extract<Frame, { type: typeof FrameType.ERROR }>;
    expect(error.body.code).toBe(ErrorCode.TOO_MANY_CONNECTIONS);
    expect(server.stats().refusedConnections).toBe(1);
    expect(server.stats().connections).toBe(2);
  });

  it('websocket - attached to an HTTP server at a path; other paths are left to it', async () => {
    const httpServer = http.createServer();
    const otherUpgrades: string[] = [];
    httpServer.on('upgrade', (request, socket) => {
      if (request.url === '/tether') return;
      otherUpgrades.push(request.url ?? '');
      socket.end('HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => httpServer.close(resolve)));
    const httpPort = (httpServer.address() as AddressInfo).port;
    const { server } = await startServer({ webSocket: { server: httpServer } });
    expect(server.webSocketAddress).toBeUndefined();
    const c = client({ url: `ws://127.0.0.1:${httpPort}/tether` });
    await c.connect();
    expect((await c.send('hi')).id).toBeDefined();
    expect(await rawSocket(`ws://127.0.0.1:${httpPort}/elsewhere`)).toEqual({ status: 418 });
    expect(otherUpgrades).toEqual(['/elsewhere']);
  });

  it('websocket - the address is the socket’s; X-Forwarded-For counts only when trusted', async () => {
    const seen = async (trustForwardedFor: boolean): Promise<string> => {
      const { server, wsPort } = await startServer({ webSocket: { trustForwardedFor } });
      const connected = new Promise<string>((resolve) =>
        server.once('connection', (peer) => resolve(peer.remoteAddress)),
      );
      const c = client({
        transport: () =>
          wsTransport(`ws://127.0.0.1:${wsPort}/tether`, {
            'X-Forwarded-For': '203.0.113.9, 198.51.100.7',
          }),
        port: 1,
      });
      await c.connect();
      return connected;
    };
    expect(await seen(false)).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await seen(true)).toBe('198.51.100.7');
  });

  it('websocket - a Blob uploads over WebSocket, verified by SHA-256', async () => {
    const uploadDir = await mkdtemp(join(tmpdir(), 'tether-ws-upload-'));
    cleanups.push(() => rm(uploadDir, { recursive: true, force: true }));
    const { server, wsPort } = await startServer({ uploadDir });
    const stored = new Promise<string>((resolve) =>
      server.once('file', (file) => resolve(file.path)),
    );
    const c = client({ url: `ws://127.0.0.1:${wsPort}/tether` });
    await c.connect();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const transfer = c.sendFile(new Blob([data]), { name: 'from-memory.bin' });
    const result = await transfer.done;
    expect(result.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect((await readFile(await stored)).equals(data)).toBe(true);
  });

  it('websocket - a refused connect is retried, and so is a WebSocket server that is not Tether', async () => {
    const { wsPort } = await startServer();
    // Nothing listens on the port yet: the client retries until the server is there.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const freePort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const refused = client({ url: `ws://127.0.0.1:${freePort}/tether`, retries: 2 });
    const reasons: string[] = [];
    refused.on('reconnecting', (info) => reasons.push(info.reason));
    await expect(refused.connect()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED });
    expect(reasons.length).toBe(2);
    // A WebSocket server that answers without the subprotocol: the WebSocket fails its handshake
    // (as a browser's does, saying no more), so the client cannot tell it from a refusal.
    const other = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => false });
    await new Promise((resolve) => other.once('listening', resolve));
    cleanups.push(() => new Promise((resolve) => other.close(resolve)));
    const otherPort = (other.address() as AddressInfo).port;
    const wrong = client({ url: `ws://127.0.0.1:${otherPort}/`, retries: 1 });
    const wrongReasons: string[] = [];
    wrong.on('reconnecting', (info) => wrongReasons.push(info.reason));
    await expect(wrong.connect()).rejects.toMatchObject({ code: ErrorCode.RETRIES_EXHAUSTED });
    expect(wrongReasons[0]).toMatch(/cannot connect/);
    // And the real endpoint is reachable all along.
    await client({ url: `ws://127.0.0.1:${wsPort}/tether` }).connect();
  });

  it('websocket - a peer that floods PINGs and never reads is pushed back through TCP, then closed', async () => {
    const { server, wsPort } = await startServer({ pingIntervalMs: 200, evictAfterMs: 1000 });
    const disconnected = new Promise<DisconnectInfo>((resolve) =>
      server.once('disconnect', (_peer, info) => resolve(info)),
    );
    const { socket, frames } = await openRaw(`ws://127.0.0.1:${wsPort}/tether`);
    socket.send(Buffer.concat([PREFACE, encodeHello(hello('flooder'))]));
    await expect.poll(() => frames.some((f) => f.type === FrameType.WELCOME)).toBe(true);
    // Reads nothing from now on: the server's PONGs pile up on its side.
    (socket as unknown as { pause(): void }).pause();
    // 140 KB a burst, in messages under the 16 KiB cap: the flooder outruns the server however
    // busy the machine is.
    const message = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodePing(i)));
    let mostWaiting = 0;
    let closed = false;
    socket.once('close', () => {
      closed = true;
    });
    const until = performance.now() + 3000;
    while (!closed && performance.now() < until) {
      if (socket.bufferedAmount < 32 * 1024 * 1024) {
        for (let i = 0; i < 10; i++) socket.send(message);
      }
      mostWaiting = Math.max(mostWaiting, socket.bufferedAmount);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const info = await disconnected;
    expect(info.code).toBe(ErrorCode.SLOW_CONSUMER);
    // The server stopped reading it (ws paused its TCP socket): our bytes waited on our side.
    expect(mostWaiting).toBeGreaterThan(2 * 1024 * 1024);
    expect(server.stats().inboundBufferedBytes).toBe(0);
  });

  it('websocket - close() tells WebSocket clients GOAWAY and stops the endpoint', async () => {
    const { server, wsPort } = await startServer();
    const c = client({ url: `ws://127.0.0.1:${wsPort}/tether` });
    await c.connect();
    const reconnecting = new Promise<string>((resolve) =>
      c.once('reconnecting', (info) => resolve(info.reason)),
    );
    await server.close({ retryAfterMs: 50, drainTimeoutMs: 0 });
    expect(await reconnecting).toBeDefined();
    await expect(fetch(`http://127.0.0.1:${wsPort}/tether`)).rejects.toThrow();
  });
});

async function wsTransport(url: string, headers: Record<string, string> = {}): Promise<Transport> {
  const { systemScheduler } = await import('@tether/core');
  const socket = new WebSocket(url, [WEBSOCKET_SUBPROTOCOL], { headers });
  // Made in the open event: messages that come with the upgrade then wait for its reader.
  return new Promise((resolve, reject) => {
    socket.once('open', () =>
      resolve(
        new WebSocketTransport(socket as never, {
          scheduler: systemScheduler,
          maxPausedBytes: 1 << 20,
        }),
      ),
    );
    socket.once('error', reject);
  });
}

async function tcp(port: number): Promise<Transport> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => resolve(socket));
    socket.once('error', reject);
  });
}
