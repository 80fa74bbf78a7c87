import { TetherClient } from '@tether/client';
import { ErrorCode, type Message, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import { requireBinaries, startRedis, switchable } from './helpers.js';

const enabled = requireBinaries('redis-server');
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function setup(timeoutMs: number, instances = 1) {
  const redis = await startRedis();
  cleanups.push(() => redis.cleanup());
  const servers: TetherServer[] = [];
  const received: Message[] = [];
  for (let i = 0; i < instances; i++) {
    const server = new TetherServer({
      redis: { url: redis.url, timeoutMs },
      pingIntervalMs: 200,
      evictAfterMs: 1000,
    });
    server.on('message', (m) => received.push(m));
    await server.listen();
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    servers.push(server);
  }
  let target = servers[0]?.address?.port ?? 0;
  const client = new TetherClient({
    port: 0,
    transport: switchable(() => target),
    clientId: 'outage',
    pingIntervalMs: 200,
    deadAfterMs: 1000,
    backoff: { minDelayMs: 20, maxDelayMs: 100 },
  });
  cleanups.push(() => client.close());
  const fromServer: string[] = [];
  const sessions: { resumed: boolean; lost: boolean }[] = [];
  client.on('message', (m) => fromServer.push(m.text()));
  client.on('session', (info) => sessions.push({ resumed: info.resumed, lost: info.lost }));
  // Codes of connections the servers failed before their session opened (HELLO refusals).
  const codes: string[] = [];
  for (const server of servers) server.on('error', (error) => codes.push(error.code));
  await client.connect();
  const moveTo = (i: number): void => {
    target = servers[i]?.address?.port ?? 0;
  };
  return { redis, servers, received, client, fromServer, sessions, moveTo, codes };
}

const texts = (messages: Message[]): string[] => messages.map((m) => m.text());

describe.skipIf(!enabled)('Redis outage', () => {
  it('Redis outage - sends wait while Redis is away and complete once it is back: none lost, none twice', async () => {
    const { redis, servers, received, client, fromServer, sessions } = await setup(5000);
    await client.send('before');
    const peer = servers[0]?.peers[0];
    await redis.stop(true);
    const clientSends = [1, 2, 3].map((i) => client.send(`c${i}`));
    const serverSends = [1, 2, 3].map((i) => peer?.send(`s${i}`));
    await sleep(400);
    // Nothing is acknowledged while the store cannot record it.
    expect(texts(received)).toEqual(['before']);
    await redis.restart();
    await Promise.all([...clientSends, ...serverSends]);
    expect(texts(received)).toEqual(['before', 'c1', 'c2', 'c3']);
    expect(fromServer).toEqual(['s1', 's2', 's3']);
    expect(received.filter((m) => m.redelivered)).toEqual([]);
    expect(sessions.filter((s) => s.lost)).toEqual([]);
  });

  it('Redis outage - past timeoutMs a server send rejects with STORE_UNAVAILABLE and is never delivered; clients resume once Redis is back', async () => {
    const { redis, servers, received, client, fromServer, sessions, codes } = await setup(400);
    await client.send('before');
    const peer = servers[0]?.peers[0];
    await redis.stop(true);
    // Once the server saw its connection to Redis close, a send never reaches Redis: it fails at
    // the deadline. (One written just before Redis died may have been applied: it waits for Redis
    // to come back, whose answer tells.)
    await sleep(200);
    const refused = peer?.send('never');
    const pending = client.send('during');
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
    // The client's link ended (its ACK could not be recorded) and its HELLOs are refused with
    // STORE_UNAVAILABLE until Redis is back; the session is intact then.
    await sleep(800);
    await redis.restart();
    await pending;
    await client.send('after');
    await peer?.send('later');
    expect(texts(received)).toEqual(['before', 'during', 'after']);
    expect(fromServer).toEqual(['later']);
    expect(codes).toContain(ErrorCode.STORE_UNAVAILABLE);
    expect(sessions.at(-1)).toEqual({ resumed: true, lost: false });
    expect(sessions.filter((s) => s.lost)).toEqual([]);
  });

  it('Redis outage - a Redis that stops answering (SIGSTOP) shorter than timeoutMs only delays', async () => {
    const { redis, received, client } = await setup(3000);
    await client.send('before');
    const pid = redis.pid as number;
    process.kill(pid, 'SIGSTOP');
    try {
      const pending = [1, 2, 3].map((i) => client.send(`c${i}`));
      await sleep(500);
      expect(texts(received)).toEqual(['before']);
      process.kill(pid, 'SIGCONT');
      await Promise.all(pending);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(texts(received)).toEqual(['before', 'c1', 'c2', 'c3']);
  });

  it('Redis outage - a crash and restart of Redis (AOF, fsync always) keeps the sessions: the client resumes on another instance', async () => {
    const { redis, servers, received, client, fromServer, sessions, moveTo } = await setup(5000, 2);
    for (let i = 0; i < 5; i++) await client.send(`a${i}`);
    await servers[0]?.peers[0]?.send('s0');
    await redis.stop(true);
    await redis.restart();
    moveTo(1);
    servers[0]?.peers[0]?.disconnect();
    for (let i = 0; i < 5; i++) await client.send(`b${i}`);
    await servers[1]?.sendTo('outage', 's1');
    expect(servers[1]?.peers.length).toBe(1);
    expect(texts(received)).toEqual([
      ...[0, 1, 2, 3, 4].map((i) => `a${i}`),
      ...[0, 1, 2, 3, 4].map((i) => `b${i}`),
    ]);
    expect(fromServer).toEqual(['s0', 's1']);
    expect(sessions.at(-1)).toEqual({ resumed: true, lost: false });
  });
});
