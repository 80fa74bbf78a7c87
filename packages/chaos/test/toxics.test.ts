import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { connectClient, pattern, sleep, startProxy, startServer, until } from './helpers.js';

function code(error: Error | undefined): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

describe('toxics', () => {
  it('latency - a round trip takes at least the configured delay', async () => {
    const echo = await startServer('echo');
    const proxy = await startProxy(echo.port, { seed: 1 });
    proxy.addToxic({ type: 'latency', direction: 'downstream', latency: 150 });
    const client = await connectClient(proxy.port);
    const started = performance.now();
    client.socket.write('ping');
    await client.waitFor(4);
    const elapsed = performance.now() - started;
    expect(client.received().toString()).toBe('ping');
    expect(elapsed).toBeGreaterThanOrEqual(149);
    expect(elapsed).toBeLessThan(1000);
  });

  it('latency - jitter never reorders bytes', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port, { seed: 2 });
    proxy.addToxic({ type: 'latency', direction: 'upstream', latency: 30, jitter: 25 });
    const client = await connectClient(proxy.port);
    const data = pattern(40 * 100, 3);
    const started = performance.now();
    for (let i = 0; i < 40; i++) {
      client.socket.write(data.subarray(i * 100, (i + 1) * 100));
      await sleep(2);
    }
    const peer = await sink.peer(0);
    await until(() => peer.received().length === data.length);
    expect(peer.received().equals(data)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(5);
  });

  it('bandwidth - 50 KB at 100 KB/s takes about half a second', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'bandwidth', direction: 'upstream', rate: 100 });
    const client = await connectClient(proxy.port);
    const data = pattern(50_000, 4);
    const started = performance.now();
    client.socket.end(data);
    const peer = await sink.peer(0);
    await peer.ended;
    const elapsed = performance.now() - started;
    expect(peer.received().equals(data)).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(1500);
    // Released in pieces of at most 100 ms worth (10,000 bytes at 100 KB/s).
    expect(Math.max(...peer.chunks.map((c) => c.length))).toBeLessThanOrEqual(10_000);
  });

  it('slicer - delivers the same bytes in many more chunks', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port, { seed: 5 });
    proxy.addToxic({
      type: 'slicer',
      direction: 'upstream',
      average_size: 32,
      size_variation: 8,
      delay: 1000,
    });
    const pieces: number[] = [];
    proxy.on('forward', (info) => pieces.push(info.bytes));
    const client = await connectClient(proxy.port);
    const data = pattern(2000, 6);
    client.socket.end(data);
    const peer = await sink.peer(0);
    await peer.ended;
    expect(peer.received().equals(data)).toBe(true);
    expect(pieces.reduce((a, b) => a + b, 0)).toBe(2000);
    expect(pieces.length).toBeGreaterThanOrEqual(2000 / 40);
    // Sizes are 32 ± 8, except the tail of each chunk read from the socket.
    expect(pieces.every((n) => n <= 40)).toBe(true);
    expect(pieces.filter((n) => n < 24).length).toBeLessThanOrEqual(2);
    expect(peer.chunks.length).toBeGreaterThan(10);
  });

  it('limit_data - closes the link after exactly N bytes', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'limit_data', direction: 'upstream', bytes: 1000 });
    const client = await connectClient(proxy.port);
    const data = pattern(5000, 7);
    client.socket.write(data.subarray(0, 600));
    const peer = await sink.peer(0);
    await until(() => peer.received().length === 600);
    client.socket.write(data.subarray(600));
    // The proxy closes both sides with a FIN (these test sockets allow half-open, so they answer).
    await Promise.all([peer.ended, client.ended]);
    expect(peer.received().length).toBe(1000);
    expect(peer.received().equals(data.subarray(0, 1000))).toBe(true);
    expect(proxy.stats().bytes.upstream).toBe(1000);
    client.socket.end();
    peer.socket.end();
    await until(() => proxy.stats().active === 0);
  });

  it('blackhole - data stops, sockets stay open, removal resumes new data', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const client = await connectClient(proxy.port);
    client.socket.write('before|');
    const peer = await sink.peer(0);
    await until(() => peer.received().length === 7);

    const id = proxy.addToxic({ type: 'blackhole', direction: 'both' });
    expect(id).toBe('blackhole-1');
    client.socket.write('lost-up|');
    peer.socket.write('lost-down|');
    // Read and thrown away, not held: a black hole that only delayed would still hold them.
    await until(() => {
      const dropped = proxy.links[0]?.dropped;
      return dropped?.upstream === 8 && dropped.downstream === 10;
    });
    expect(proxy.links[0]?.held).toEqual({ upstream: 0, downstream: 0 });
    expect(peer.received().toString()).toBe('before|');
    expect(client.received().length).toBe(0);
    expect(client.socket.destroyed || peer.socket.destroyed).toBe(false);
    expect(proxy.stats().active).toBe(1);

    expect(proxy.removeToxic(id)).toBe(true);
    expect(proxy.removeToxic(id)).toBe(false);
    // The FIN after the new data proves nothing else is still on its way.
    client.socket.end('after');
    peer.socket.end('back');
    await Promise.all([peer.ended, client.ended]);
    expect(peer.received().toString()).toBe('before|after');
    expect(client.received().toString()).toBe('back');
  });

  it('half_open - drops one direction while the other flows', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'half_open', direction: 'upstream' });
    const client = await connectClient(proxy.port);
    client.socket.write('into the void');
    const peer = await sink.peer(0);
    peer.socket.write('still flowing');
    await client.waitFor(13);
    await sleep(50);
    expect(client.received().toString()).toBe('still flowing');
    expect(peer.received().length).toBe(0);
    expect(proxy.stats().bytes).toEqual({ upstream: 0, downstream: 13 });
  });

  it('reset_peer - the client sees ECONNRESET after the timeout', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'reset_peer', direction: 'both', timeout: 100 });
    const started = performance.now();
    const client = await connectClient(proxy.port);
    client.socket.write('early data passes');
    const peer = await sink.peer(0);
    await client.closed;
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(code(client.errors[0])).toBe('ECONNRESET');
    await peer.closed;
    expect(peer.received().toString()).toBe('early data passes');
    expect(code(peer.errors[0])).toBe('ECONNRESET');
  });

  it('timeout - drops data, then closes the link after the timeout', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'timeout', direction: 'upstream', timeout: 150 });
    const started = performance.now();
    const client = await connectClient(proxy.port);
    client.socket.write('dropped');
    const peer = await sink.peer(0);
    await Promise.all([client.ended, peer.ended]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    expect(peer.received().length).toBe(0);
    expect(client.errors).toEqual([]);
  });

  it('timeout - 0 keeps the link open and silent until removed', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const id = proxy.addToxic({ type: 'timeout', direction: 'both', timeout: 0, name: 'hang' });
    expect(id).toBe('hang');
    const client = await connectClient(proxy.port);
    client.socket.write('dropped');
    const peer = await sink.peer(0);
    await sleep(100);
    expect(peer.received().length).toBe(0);
    expect(proxy.stats().active).toBe(1);
    proxy.removeToxic(id);
    client.socket.write('kept');
    await until(() => peer.received().toString() === 'kept');
  });

  it('slow_close - the FIN arrives late, the data before it does not', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'slow_close', direction: 'upstream', delay: 200 });
    const client = await connectClient(proxy.port);
    const started = performance.now();
    client.socket.end('bye');
    const peer = await sink.peer(0);
    await until(() => peer.received().length === 3);
    expect(performance.now() - started).toBeLessThan(150);
    await peer.ended;
    expect(performance.now() - started).toBeGreaterThanOrEqual(195);
  });

  it('toxics - several chain in order and apply to links already open', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port, { seed: 9 });
    const client = await connectClient(proxy.port);
    proxy.addToxic({ type: 'slicer', direction: 'upstream', average_size: 10, delay: 0 });
    proxy.addToxic({ type: 'latency', direction: 'upstream', latency: 80 });
    expect(proxy.toxics.map((t) => t.id)).toEqual(['slicer-1', 'latency-2']);
    expect(proxy.toxics[0]).toMatchObject({ size_variation: 0, toxicity: 1 });
    expect(proxy.links[0]?.toxics).toEqual(['slicer-1', 'latency-2']);
    const data = pattern(1000, 8);
    const started = performance.now();
    client.socket.end(data);
    const peer = await sink.peer(0);
    await peer.ended;
    expect(performance.now() - started).toBeGreaterThanOrEqual(79);
    expect(peer.received().equals(data)).toBe(true);
  });
});
