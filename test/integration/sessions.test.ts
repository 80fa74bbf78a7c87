import { TetherClient } from '@tether/client';
import { ErrorCode, FrameType, MIN_MAX_FRAME } from '@tether/protocol';
import { type DisconnectInfo, type Peer, type TetherError, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import { ofType, RawClient } from '../helpers/raw-client.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(options: ConstructorParameters<typeof TetherServer>[0] = {}): Promise<{
  server: TetherServer;
  port: number;
}> {
  const server = new TetherServer(options);
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  return { server, port };
}

async function raw(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  cleanups.push(() => client.destroy());
  return client;
}

describe('server - eviction and session lifetime', () => {
  it('evicts a silent peer within the deadline and keeps its session until the TTL', async () => {
    const { server, port } = await startServer({
      pingIntervalMs: 100,
      evictAfterMs: 400,
      sessionTtlMs: 300,
    });
    const evicted = new Promise<{ peer: Peer; info: DisconnectInfo; at: number }>((resolve) =>
      server.on('evict', (peer, info) => resolve({ peer, info, at: performance.now() })),
    );
    const expired = new Promise<number>((resolve) =>
      server.on('expire', () => resolve(performance.now())),
    );
    const client = await raw(port);
    client.hello({ clientId: 'silent' });
    await client.next(ofType(FrameType.WELCOME));
    const welcomedAt = performance.now();

    const { peer, info, at } = await evicted;
    expect(info.code).toBe(ErrorCode.EVICTED);
    expect(info.silentMs).toBeGreaterThanOrEqual(400);
    expect(info.silentMs).toBeLessThan(400 + 100);
    expect(at - welcomedAt).toBeLessThan(400 + 200);
    await client.waitClosed();
    // The session survives the eviction, for resume, until its TTL.
    expect(server.peers).toContain(peer);
    expect(peer.connected).toBe(false);
    const expiredAt = await expired;
    expect(expiredAt - at).toBeGreaterThanOrEqual(290);
    expect(server.peers).toHaveLength(0);
    expect(server.stats().evictions).toBe(1);
  });

  it('a second connection resuming the session takes it over and closes the first', async () => {
    const { server, port } = await startServer();
    const disconnects: string[] = [];
    server.on('disconnect', (_peer, info) => disconnects.push(info.code));
    const first = await raw(port);
    first.hello({ clientId: 'shared' });
    const welcome = await first.next(ofType(FrameType.WELCOME));
    expect(welcome.body.resumed).toBe(false);

    const second = await raw(port);
    second.hello({ clientId: 'shared', resumeToken: welcome.body.resumeToken });
    const resumed = await second.next(ofType(FrameType.WELCOME));
    expect(resumed.body.resumed).toBe(true);
    expect(resumed.body.sessionId).toBe(welcome.body.sessionId);

    const error = await first.next(ofType(FrameType.ERROR));
    expect(error.body.code).toBe(ErrorCode.SESSION_TAKEN_OVER);
    await first.waitClosed();
    expect(server.peers).toHaveLength(1);
    expect(server.peers[0]?.connected).toBe(true);
    expect(disconnects).toEqual([]);
  });

  it('a resume token presented with another client id gets a fresh session', async () => {
    const { server, port } = await startServer();
    const first = await raw(port);
    first.hello({ clientId: 'owner' });
    const welcome = await first.next(ofType(FrameType.WELCOME));
    const thief = await raw(port);
    thief.hello({ clientId: 'thief', resumeToken: welcome.body.resumeToken });
    const other = await thief.next(ofType(FrameType.WELCOME));
    expect(other.body.resumed).toBe(false);
    expect(other.body.sessionId).not.toBe(welcome.body.sessionId);
    expect(server.peers).toHaveLength(2);
  });

  it('after the TTL a resume gets a new session, and everything is freed', async () => {
    const { server, port } = await startServer({ sessionTtlMs: 100 });
    const first = await raw(port);
    first.hello({ clientId: 'c' });
    const welcome = await first.next(ofType(FrameType.WELCOME));
    const expired = new Promise<string>((resolve) =>
      server.on('expire', (_p, reason) => resolve(reason)),
    );
    first.destroy();
    expect(await expired).toMatch(/TTL/);
    expect(server.stats()).toMatchObject({ sessions: 0, connections: 0 });
    const again = await raw(port);
    again.hello({ clientId: 'c', resumeToken: welcome.body.resumeToken });
    expect((await again.next(ofType(FrameType.WELCOME))).body.resumed).toBe(false);
  });

  it('a handshake that never comes is cut at the HELLO deadline with a code', async () => {
    const { server, port } = await startServer({ helloTimeoutMs: 150 });
    const errors: string[] = [];
    server.on('error', (error) => errors.push(error.code));
    const client = await raw(port);
    const error = await client.next(ofType(FrameType.ERROR));
    expect(error.body.code).toBe(ErrorCode.HANDSHAKE_TIMEOUT);
    await client.waitClosed();
    expect(errors).toEqual([ErrorCode.HANDSHAKE_TIMEOUT]);
  });

  it('stray traffic gets an error with the right code and a close', async () => {
    const { server, port } = await startServer();
    const errors: string[] = [];
    server.on('error', (error) => errors.push(error.code));
    const http = await raw(port);
    http.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await http.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.PREFACE_HTTP);
    await http.waitClosed();
    const tls = await raw(port);
    tls.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1]));
    expect((await tls.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.PREFACE_TLS);
    expect(errors).toEqual([ErrorCode.PREFACE_HTTP, ErrorCode.PREFACE_TLS]);
  });
});

describe('server - session caps', () => {
  it("past maxSessionsPerIdentity the identity's longest-disconnected session ends; with all connected the HELLO is refused", async () => {
    const { server, port } = await startServer({ maxSessionsPerIdentity: 3 });
    const expired: string[] = [];
    server.on('expire', (_peer, reason) => expired.push(reason));
    const clients: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await raw(port);
      client.hello({ clientId: 'same' });
      await client.next(ofType(FrameType.WELCOME));
      clients.push(client);
    }
    // Another identity is not affected by this one's cap.
    const other = await raw(port);
    other.hello({ clientId: 'other' });
    await other.next(ofType(FrameType.WELCOME));

    const refused = await raw(port);
    refused.hello({ clientId: 'same' });
    const error = await refused.next(ofType(FrameType.ERROR));
    expect(error.body.code).toBe(ErrorCode.TOO_MANY_SESSIONS);
    expect(error.body.retryAfterMs).toBeGreaterThan(0);
    await refused.waitClosed();
    expect(server.stats().sessions).toBe(4);

    // One of them drops: its session waits for a resume, and is the one to make room.
    const [first] = server.peers.filter((p) => p.clientId === 'same');
    const pending = (first as Peer).send('never delivered').catch((error: TetherError) => error);
    const gone = new Promise((resolve) => server.once('disconnect', resolve));
    (clients[0] as RawClient).destroy();
    await gone;
    const fresh = await raw(port);
    fresh.hello({ clientId: 'same' });
    await fresh.next(ofType(FrameType.WELCOME));
    expect(expired).toEqual(['session limit of its identity reached']);
    expect(server.peers).not.toContain(first);
    expect(server.peers.filter((p) => p.clientId === 'same')).toHaveLength(3);
    expect(await pending).toMatchObject({ code: ErrorCode.TOO_MANY_SESSIONS });
  });

  it('past maxSessions the longest-disconnected session of anyone ends; with all connected the HELLO is refused', async () => {
    const { server, port } = await startServer({ maxSessions: 2 });
    const a = await raw(port);
    a.hello({ clientId: 'a' });
    await a.next(ofType(FrameType.WELCOME));
    const b = await raw(port);
    b.hello({ clientId: 'b' });
    await b.next(ofType(FrameType.WELCOME));
    const c = await raw(port);
    c.hello({ clientId: 'c' });
    expect((await c.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.TOO_MANY_SESSIONS);

    for (const client of [b, a]) {
      const gone = new Promise((resolve) => server.once('disconnect', resolve));
      client.destroy();
      await gone;
    }
    // b disconnected first: its session ends for c's.
    const retry = await raw(port);
    retry.hello({ clientId: 'c' });
    await retry.next(ofType(FrameType.WELCOME));
    expect(server.peers.map((p) => p.clientId).sort()).toEqual(['a', 'c']);
  });
});

describe('server - shutdown', () => {
  it('close() sends GOAWAY to open sessions and ERROR SERVER_SHUTTING_DOWN to handshakes in progress', async () => {
    const { server, port } = await startServer();
    const open = await raw(port);
    open.hello({ clientId: 'open' });
    await open.next(ofType(FrameType.WELCOME));
    // Connected, CHALLENGE received, no HELLO yet.
    const early = await raw(port);
    await early.next(ofType(FrameType.CHALLENGE));

    const closing = server.close({ retryAfterMs: 1234, drainTimeoutMs: 200 });
    const goaway = await open.next(ofType(FrameType.GOAWAY));
    expect(goaway.body.retryAfterMs).toBe(1234);
    const error = await early.next(ofType(FrameType.ERROR));
    expect(error.body).toMatchObject({ code: ErrorCode.SERVER_SHUTTING_DOWN, retryAfterMs: 1234 });
    // Section 8: GOAWAY only after WELCOME.
    expect(early.frames.map((f) => f.type)).not.toContain(FrameType.GOAWAY);
    await early.waitClosed();
    await closing;
  });
});

describe('server - malformed HELLO and listener bugs', () => {
  it('a HELLO with an empty client id or a frame limit out of range gets BAD_HELLO and a close', async () => {
    const { server, port } = await startServer();
    const errors: string[] = [];
    server.on('error', (error) => errors.push(error.code));
    const bad = [
      { clientId: '' },
      { clientId: 'x'.repeat(129) },
      // 65 characters, 130 bytes: the limit counts UTF-8 bytes (PROTOCOL.md, HELLO).
      { clientId: 'é'.repeat(65) },
      { maxFrame: 10 },
      // Below a full control frame (PROTOCOL.md section 7, min max frame).
      { maxFrame: MIN_MAX_FRAME - 1 },
    ];
    for (const hello of bad) {
      const client = await raw(port);
      client.hello(hello);
      expect((await client.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.BAD_HELLO);
      await client.waitClosed();
    }
    expect(errors).toEqual(bad.map(() => ErrorCode.BAD_HELLO));
    expect(server.stats().sessions).toBe(0);
    // The limits themselves are accepted.
    const edge = await raw(port);
    edge.hello({ clientId: 'é'.repeat(64), maxFrame: MIN_MAX_FRAME });
    await edge.next(ofType(FrameType.WELCOME));
  });

  it('a HELLO whose clientId holds a lone surrogate is refused with BAD_CONTROL_BODY', async () => {
    // JSON's \ud800 escape makes a lone surrogate; it and U+FFFD would otherwise print, hash and
    // store alike, so two identities could share one session or partial folder.
    const { server, port } = await startServer();
    const errors: string[] = [];
    server.on('error', (error) => errors.push(error.code));
    for (const clientId of ['a\ud800', 'a\udfff']) {
      const client = await raw(port);
      client.hello({ clientId });
      expect((await client.next(ofType(FrameType.ERROR))).body.code).toBe(
        ErrorCode.BAD_CONTROL_BODY,
      );
      await client.waitClosed();
    }
    expect(errors).toEqual([ErrorCode.BAD_CONTROL_BODY, ErrorCode.BAD_CONTROL_BODY]);
    expect(server.stats().sessions).toBe(0);
  });

  it('a message listener that throws is reported as HANDLER_FAILED and costs no message', async () => {
    const { server, port } = await startServer();
    const errors: string[] = [];
    server.on('error', (error) => errors.push(error.code));
    const got: string[] = [];
    server.on('message', (m) => {
      got.push(m.text());
      if (m.text() === 'bad') throw new Error('listener bug');
    });
    const client = new TetherClient({ port });
    cleanups.push(() => client.close());
    const states: string[] = [];
    client.on('state', (change) => states.push(change.state));
    await client.connect();
    await client.send('bad');
    await client.send('after');
    expect(got).toEqual(['bad', 'after']);
    expect(errors).toEqual([ErrorCode.HANDLER_FAILED]);
    expect(states).toEqual(['connecting', 'connected']);
  });
});

describe('client - listener bugs', () => {
  it('a client message listener that throws is reported as HANDLER_FAILED and the link stays', async () => {
    const { server, port } = await startServer();
    const client = new TetherClient({ port });
    cleanups.push(() => client.close());
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.code));
    const got: string[] = [];
    client.on('message', (m) => {
      got.push(m.text());
      if (m.text() === 'bad') throw new Error('listener bug');
    });
    await client.connect();
    await expect.poll(() => server.peers.length).toBe(1);
    const peer = server.peers[0] as Peer;
    await peer.send('bad');
    await peer.send('after');
    expect(got).toEqual(['bad', 'after']);
    expect(errors).toEqual([ErrorCode.HANDLER_FAILED]);
    expect(client.state).toBe('connected');
  });
});
