import { ChaosProxy } from '@tether/chaos';
import { TetherClient } from '@tether/client';
import { type Peer, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const MESSAGES = 10_000;
const CUTS = 20;

/** Asserts `received` is exactly 0..count-1 in order; returns a readable summary on failure. */
function expectExactlyOnceInOrder(received: number[], count: number): void {
  const duplicates = received.length - new Set(received).size;
  const reordered = received.filter((v, i) => i > 0 && v < (received[i - 1] as number)).length;
  const lost = count - new Set(received).size;
  expect({ lost, duplicates, reordered }).toEqual({ lost: 0, duplicates: 0, reordered: 0 });
  expect(received).toEqual(Array.from({ length: count }, (_, i) => i));
}

describe('resilience - link cuts', () => {
  it('delivers 10,000 messages each way exactly once, in order, across 20 mid-burst cuts', async () => {
    // The server's deadline is the longer one, so the client's heartbeat is what finds black holes
    // (were the server first, its eviction's reset would reach the client past the black hole).
    const server = new TetherServer({ pingIntervalMs: 100, evictAfterMs: 1000 });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    const { port } = await server.listen();
    const proxy = new ChaosProxy({ target: { port } });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const client = new TetherClient({
      port: proxy.port,
      pingIntervalMs: 100,
      deadAfterMs: 400,
      backoff: { minDelayMs: 5, maxDelayMs: 50 },
      maxQueuedMessages: 1000,
      overflow: 'wait',
      // A small window keeps read bursts short, so the cuts spread over the whole run.
      maxInFlightBytes: 2048,
    });
    cleanups.push(() => client.close());
    // Cut kinds in rotation: the server destroys the socket, the proxy resets both sides (RST),
    // the proxy stops forwarding without closing (a black hole the heartbeat must find).
    const cutKinds = { destroy: 0, reset: 0, blackhole: 0 };
    const blackholeDetections: string[] = [];
    let blackhole: string | undefined;
    client.on('state', (change) => {
      if (change.state === 'reconnecting' && blackhole !== undefined) {
        blackholeDetections.push(change.error?.code ?? 'none');
        proxy.removeToxic(blackhole);
        blackhole = undefined;
      }
    });

    const atServer: number[] = [];
    const atClient: number[] = [];
    let cuts = 0;
    let lastCutAt = 0;
    // Each connection is cut at most once: a connection is known by its number.
    let connectionNumber = 0;
    let lastCutConnection = 0;
    let peer: Peer | undefined;
    server.on('connection', (p) => {
      peer = p;
      connectionNumber++;
    });
    server.on('message', (message, p) => {
      atServer.push(message.json<number>());
      // Cut the link in the middle of a read burst, spread evenly over the run. A burst may hold
      // hundreds of messages, and a proxy reset reaches the server later: cut each connection once.
      if (
        p.connected &&
        lastCutConnection < connectionNumber &&
        blackhole === undefined &&
        cuts < CUTS &&
        atServer.length - lastCutAt >= MESSAGES / (CUTS * 2)
      ) {
        cuts++;
        lastCutConnection = connectionNumber;
        lastCutAt = atServer.length;
        if (cuts % 3 === 0) {
          cutKinds.blackhole++;
          blackhole = proxy.addToxic({ type: 'blackhole', direction: 'both' });
        } else if (cuts % 3 === 1) {
          cutKinds.destroy++;
          p.disconnect();
        } else {
          cutKinds.reset++;
          proxy.resetAll();
        }
      }
    });
    client.on('message', (message) => atClient.push(message.json<number>()));
    const states: string[] = [];
    client.on('state', (change) => states.push(change.state));

    await client.connect();
    await expect.poll(() => peer).toBeDefined();
    const serverSends: Promise<unknown>[] = [];
    const clientSends: Promise<unknown>[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      clientSends.push(client.sendJson(i));
      serverSends.push((peer as Peer).sendJson(i));
      if (i % 250 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([...clientSends, ...serverSends]);

    expect(cuts).toBe(CUTS);
    expect(cutKinds).toEqual({ destroy: 7, reset: 7, blackhole: 6 });
    // A black hole closes nothing: only the heartbeat can have found it.
    expect(blackholeDetections).toEqual(Array(6).fill('HEARTBEAT_TIMEOUT'));
    expectExactlyOnceInOrder(atServer, MESSAGES);
    await expect.poll(() => atClient.length).toBe(MESSAGES);
    expectExactlyOnceInOrder(atClient, MESSAGES);
    expect(client.stats().reconnects).toBeGreaterThanOrEqual(CUTS);
    expect(states.filter((s) => s === 'reconnecting').length).toBeGreaterThanOrEqual(CUTS);
    expect(server.peers).toHaveLength(1);
  });
});

describe('resilience - server restarts', () => {
  it('re-sends unacknowledged messages in a new session after a restart, with stable ids', async () => {
    const received: { id: string; value: number }[] = [];
    const sessionsLost: number[] = [];
    let server = new TetherServer({ pingIntervalMs: 100, evictAfterMs: 1000 });
    const { port } = await server.listen();
    const start = (s: TetherServer): void => {
      s.on('message', (message) =>
        received.push({ id: message.id, value: message.json<number>() }),
      );
    };
    start(server);
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    const client = new TetherClient({
      port,
      pingIntervalMs: 100,
      deadAfterMs: 1000,
      backoff: { minDelayMs: 5, maxDelayMs: 50 },
      maxInFlightBytes: 2048,
    });
    cleanups.push(() => client.close());
    client.on('session', (info) => {
      if (info.lost) sessionsLost.push(info.resent);
    });
    await client.connect();

    const total = 3000;
    const receipts: Promise<{ id: string }>[] = [];
    for (let i = 0; i < total; i++) {
      receipts.push(client.sendJson(i));
      if (i % 1000 === 999) {
        // Restart mid-stream: a crash-like close (no drain), then a new server on the same port.
        await new Promise((resolve) => setImmediate(resolve));
        await server.close({ drainTimeoutMs: 0, retryAfterMs: 20 });
        server = new TetherServer({ port, pingIntervalMs: 100, evictAfterMs: 1000 });
        start(server);
        await server.listen();
        const lostBefore = sessionsLost.length;
        await expect.poll(() => sessionsLost.length).toBe(lostBefore + 1);
      }
    }
    const ids = (await Promise.all(receipts)).map((r) => r.id);

    expect(sessionsLost.length).toBe(3);
    // The restarts hit messages in flight: some were re-sent in the new sessions.
    expect(sessionsLost.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // Every acknowledged message arrived; duplicates only of re-sent ones, and ids dedupe them.
    const byId = new Map<string, number>();
    for (const { id, value } of received) byId.set(id, value);
    expect(ids.every((id) => byId.has(id))).toBe(true);
    expect(new Set(ids).size).toBe(total);
    const deduped = [...byId.values()];
    expect(deduped).toEqual(Array.from({ length: total }, (_, i) => i));
    const duplicates = received.length - byId.size;
    expect(duplicates).toBeLessThanOrEqual(sessionsLost.reduce((a, b) => a + b, 0));
  });
});
