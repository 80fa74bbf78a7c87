import * as net from 'node:net';
import { TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClientState,
  ErrorCode,
  type ReconnectInfo,
  TetherClient,
  type TetherError,
} from '../src/index.js';

// In a file of its own, so handles of other tests cannot blur the counts.
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function unusedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const KINDS = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'] as const;
function countResources(): Record<(typeof KINDS)[number], number> {
  const all = process.getActiveResourcesInfo();
  return {
    TCPSocketWrap: all.filter((r) => r === 'TCPSocketWrap').length,
    TCPServerWrap: all.filter((r) => r === 'TCPServerWrap').length,
    Timeout: all.filter((r) => r === 'Timeout').length,
  };
}

/**
 * Counts taken once the test runner's own timer has run: vitest throttles its task updates with
 * a 100 ms timer armed as each test starts, which would otherwise be counted as ours.
 */
async function baseline(): Promise<ReturnType<typeof countResources>> {
  await new Promise((resolve) => setTimeout(resolve, 120));
  return countResources();
}

describe('client - resources', () => {
  it('client - close() during a backoff wait stops the loop at once and leaves no timer', async () => {
    const port = await unusedPort();
    const client = new TetherClient({
      host: '127.0.0.1',
      port,
      backoff: { minDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    cleanups.push(() => client.close());
    const timeoutsBefore = (await baseline()).Timeout;
    const waiting = new Promise<ReconnectInfo>((resolve) => client.once('reconnecting', resolve));
    const connected = client.connect().then(
      () => 'connected',
      (error: TetherError) => error.code,
    );
    const info = await waiting;
    expect(info.delayMs).toBeGreaterThanOrEqual(30_000);
    expect(countResources().Timeout).toBe(timeoutsBefore + 1); // the backoff wait
    await client.close();
    expect(await connected).toBe(ErrorCode.CLOSED);
    expect(client.state).toBe(ClientState.CLOSED);
    expect(countResources().Timeout).toBe(timeoutsBefore);
  });

  it('client - after close() no socket, server handle or timer is left', async () => {
    const before = await baseline();
    const server = new TetherServer({ host: '127.0.0.1', onRequest: (p) => p });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    const { port } = await server.listen();
    const client = new TetherClient({ host: '127.0.0.1', port, pingIntervalMs: 1000 });
    cleanups.push(() => client.close());
    await client.connect();
    await client.send('plain');
    await client.send('with a TTL', { ttlMs: 60_000 });
    expect((await client.request('echo')).toString()).toBe('echo');
    const during = countResources();
    expect(during.TCPSocketWrap).toBeGreaterThanOrEqual(before.TCPSocketWrap + 2);
    expect(during.TCPServerWrap).toBe(before.TCPServerWrap + 1);
    expect(during.Timeout).toBeGreaterThan(before.Timeout);

    await client.close();
    await server.close({ drainTimeoutMs: 0 });
    for (let i = 0; i < 50; i++) {
      const now = countResources();
      if (KINDS.every((kind) => now[kind] === before[kind])) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(countResources()).toEqual(before);
  });
});
