import { TetherClient } from '@tether/client';
import { type Message, TetherServer } from '@tether/server';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireBinaries, startRedis, switchable } from './helpers.js';

const enabled = requireBinaries('redis-server');
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let prefixCounter = 0;

async function cluster(count: number) {
  const redis = await startRedis();
  cleanups.push(() => redis.cleanup());
  const prefix = `t${process.pid}-${++prefixCounter}:`;
  const servers: TetherServer[] = [];
  const received: { server: number; message: Message }[] = [];
  for (let i = 0; i < count; i++) {
    const server = new TetherServer({ redis: { url: redis.url, prefix }, sessionTtlMs: 30_000 });
    server.on('message', (message) => received.push({ server: i, message }));
    await server.listen();
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    servers.push(server);
  }
  return { redis, servers, received, prefix };
}

describe.skipIf(!enabled)('Redis store', () => {
  beforeAll(() => {});

  it('Redis store - a session resumes on another instance with nothing lost or repeated', async () => {
    const { servers, received } = await cluster(2);
    let target = servers[0]?.address?.port ?? 0;
    const client = new TetherClient({
      port: 0,
      transport: switchable(() => target),
      clientId: 'c1',
      backoff: { minDelayMs: 10, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const fromServer: Message[] = [];
    client.on('message', (m) => fromServer.push(m));
    await client.connect();
    for (let i = 0; i < 20; i++) await client.send(`a${i}`);
    const peer = servers[0]?.peers[0];
    expect(peer).toBeDefined();
    await peer?.send('s0');
    // Move: the client now reaches instance 1.
    target = servers[1]?.address?.port ?? 0;
    peer?.disconnect();
    const sends = [];
    for (let i = 0; i < 20; i++) sends.push(client.send(`b${i}`));
    await Promise.all(sends);
    expect(servers[1]?.peers.length).toBe(1);
    expect(servers[0]?.peers.length).toBe(0);
    await servers[1]?.peers[0]?.send('s1');
    expect(received.map((r) => r.message.text())).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `a${i}`),
      ...Array.from({ length: 20 }, (_, i) => `b${i}`),
    ]);
    expect(received.filter((r) => r.message.redelivered).length).toBe(0);
    expect(fromServer.map((m) => m.text())).toEqual(['s0', 's1']);
  });
});

describe.skipIf(!enabled)('Redis store routing', () => {
  // Regression: append ids restarted at 1 in a new process; a restarted instance that kept its
  // instance id had its first append taken for the dead process's last one (never delivered).
  it('Redis store - a process that reuses an instance id still has its sends delivered', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.cleanup());
    const options = { redis: { url: redis.url, prefix: 'reuse:', instanceId: 'same' } };
    const first = new TetherServer(options);
    await first.listen();
    let target = first.address?.port ?? 0;
    const client = new TetherClient({
      port: 0,
      transport: switchable(() => target),
      clientId: 'c4',
      backoff: { minDelayMs: 10, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const fromServer: string[] = [];
    client.on('message', (m) => fromServer.push(m.text()));
    await client.connect();
    await first.peers[0]?.send('one');
    // The first process is gone before the second starts with the same id.
    await first.close({ retryAfterMs: 10, drainTimeoutMs: 0 });
    const second = new TetherServer(options);
    await second.listen();
    cleanups.push(() => second.close({ drainTimeoutMs: 0 }));
    target = second.address?.port ?? 0;
    await client.send('moved');
    await second.peers[0]?.send('two');
    expect(fromServer).toEqual(['one', 'two']);
  });

  // Regression: appends were numbered per session queue, so a send after the queue emptied
  // reused id 1 and the store answered it as the first send, already queued: never delivered.
  it('Redis store - sends one after another, each after the last was acknowledged, all arrive', async () => {
    const { servers } = await cluster(1);
    const client = new TetherClient({ port: servers[0]?.address?.port ?? 0, clientId: 'c3' });
    cleanups.push(() => client.close());
    const fromServer: string[] = [];
    client.on('message', (m) => fromServer.push(m.text()));
    await client.connect();
    const peer = servers[0]?.peers[0];
    for (let i = 0; i < 5; i++) {
      await client.send(`x${i}`);
      await peer?.send(`s${i}`);
    }
    expect(fromServer).toEqual(['s0', 's1', 's2', 's3', 's4']);
  });

  it('Redis store - sendTo from another instance reaches the client exactly once, in order', async () => {
    const { servers } = await cluster(2);
    const client = new TetherClient({ port: servers[0]?.address?.port ?? 0, clientId: 'c2' });
    cleanups.push(() => client.close());
    const fromServer: string[] = [];
    client.on('message', (m) => fromServer.push(m.text()));
    await client.connect();
    const sends = [];
    for (let i = 0; i < 10; i++) {
      sends.push(servers[1]?.sendTo('c2', `r${i}`));
      sends.push(servers[0]?.peers[0]?.send(`l${i}`));
    }
    await Promise.all(sends);
    expect(fromServer.filter((v) => v.startsWith('r'))).toEqual(
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
    expect(fromServer.filter((v) => v.startsWith('l'))).toEqual(
      Array.from({ length: 10 }, (_, i) => `l${i}`),
    );
    expect(fromServer.length).toBe(20);
  });
});
