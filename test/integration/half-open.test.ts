import { ChaosProxy } from '@tether/chaos';
import { TetherClient } from '@tether/client';
import { ErrorCode } from '@tether/protocol';
import { type DisconnectInfo, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const PING_MS = 150;
const DEAD_MS = 600;
// Timers are real here (real sockets): allow the timer granularity and a loaded CI machine.
const MARGIN_MS = 150;

async function setup(
  evictAfterMs = DEAD_MS,
): Promise<{ server: TetherServer; proxy: ChaosProxy; client: TetherClient }> {
  const server = new TetherServer({ pingIntervalMs: PING_MS, evictAfterMs });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  const proxy = new ChaosProxy({ target: { port } });
  await proxy.start();
  cleanups.push(() => proxy.stop());
  const client = new TetherClient({
    port: proxy.port,
    pingIntervalMs: PING_MS,
    deadAfterMs: DEAD_MS,
    backoff: { minDelayMs: 10, maxDelayMs: 50 },
  });
  cleanups.push(() => client.close());
  await client.connect();
  return { server, proxy, client };
}

describe('heartbeat - half-open links', () => {
  it('both sides find a black-holed link dead within the deadline, despite steady sending', async () => {
    const { server, proxy, client } = await setup();
    const evicted = new Promise<{ info: DisconnectInfo; at: number }>((resolve) =>
      server.once('evict', (_peer, info) => resolve({ info, at: performance.now() })),
    );
    const clientLost = new Promise<{ code: string; at: number }>((resolve) =>
      client.on('state', (change) => {
        if (change.state === 'reconnecting')
          resolve({ code: change.error?.code ?? '', at: performance.now() });
      }),
    );
    // Steady outbound traffic from the client must not hide the dead link.
    const sender = setInterval(() => void client.send('tick').catch(() => {}), 20);
    cleanups.push(() => clearInterval(sender));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const cutAt = performance.now();
    proxy.addToxic({ type: 'blackhole', direction: 'both' });

    const lost = await clientLost;
    expect(lost.code).toBe(ErrorCode.HEARTBEAT_TIMEOUT);
    expect(lost.at - cutAt).toBeLessThan(DEAD_MS + MARGIN_MS);
    expect(client.stats().lastDeadLinkSilenceMs).toBeGreaterThanOrEqual(DEAD_MS);

    const evict = await evicted;
    expect(evict.info.code).toBe(ErrorCode.EVICTED);
    expect(evict.at - cutAt).toBeLessThan(DEAD_MS + MARGIN_MS);
    expect(evict.info.silentMs).toBeGreaterThanOrEqual(DEAD_MS);

    // After the link heals, the client resumes the same session and everything sent arrives.
    proxy.clearToxics();
    const delivered: string[] = [];
    server.on('message', (m) => delivered.push(m.text()));
    await expect(client.send('after')).resolves.toMatchObject({ id: expect.any(String) });
    expect(delivered).toContain('after');
  });

  it('a one-way cut (client to server dropped) is found by the client through missing ACKs', async () => {
    // The server's own deadline is long, so only the client's ACK rule can find this cut.
    const { server, proxy, client } = await setup(10 * DEAD_MS);
    let serverMessages = 0;
    server.on('message', () => serverMessages++);
    // The server keeps talking to the client, so inbound bytes alone would look alive.
    const peer = server.peers[0];
    const chatter = setInterval(() => void peer?.send('server tick').catch(() => {}), 20);
    cleanups.push(() => clearInterval(chatter));
    await new Promise((resolve) => setTimeout(resolve, 100));
    proxy.addToxic({ type: 'half_open', direction: 'upstream' });
    const cutAt = performance.now();
    const before = serverMessages;
    const lost = new Promise<{ code: string; at: number }>((resolve) =>
      client.on('state', (change) => {
        if (change.state === 'reconnecting')
          resolve({ code: change.error?.code ?? '', at: performance.now() });
      }),
    );
    const pending = client.send('into the void');
    pending.catch(() => {});
    const result = await lost;
    expect(result.code).toBe(ErrorCode.HEARTBEAT_TIMEOUT);
    expect(result.at - cutAt).toBeLessThan(DEAD_MS + MARGIN_MS);
    expect(serverMessages).toBe(before);
    proxy.clearToxics();
    await expect(pending).resolves.toMatchObject({ seq: expect.any(Number) });
  });
});
