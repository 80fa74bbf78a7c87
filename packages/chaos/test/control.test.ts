import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectClient, pattern, sleep, startProxy, startServer, until } from './helpers.js';

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
}

/** Slicer piece sizes the proxy writes for `data` sent on one fresh link. */
async function slicedSizes(targetPort: number, seed: number, data: Buffer): Promise<number[]> {
  const proxy = await startProxy(targetPort, { seed });
  proxy.addToxic({ type: 'slicer', direction: 'upstream', average_size: 16, size_variation: 12 });
  const sizes: number[] = [];
  proxy.on('forward', (info) => sizes.push(info.bytes));
  const client = await connectClient(proxy.port);
  client.socket.end(data);
  await until(() => sizes.reduce((a, b) => a + b, 0) === data.length);
  await proxy.stop();
  return sizes;
}

describe('control', () => {
  it('down - closes links and refuses connections; up accepts again on the same port', async () => {
    const echo = await startServer('echo');
    const proxy = await startProxy(echo.port);
    const port = proxy.port;
    const client = await connectClient(port);
    client.socket.write('hi');
    await client.waitFor(2);

    await proxy.setDown(true);
    expect(proxy.down).toBe(true);
    await client.ended;
    expect(proxy.stats().active).toBe(0);
    expect(await connectError(port)).toBe('ECONNREFUSED');

    await proxy.setDown(false);
    expect(proxy.down).toBe(false);
    expect(proxy.port).toBe(port);
    const again = await connectClient(port);
    again.socket.write('back');
    expect((await again.waitFor(4)).toString()).toBe('back');
    expect(proxy.stats().connections).toBe(2);
  });

  it('resetAll - every client sees ECONNRESET', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const a = await connectClient(proxy.port);
    const b = await connectClient(proxy.port);
    await until(() => proxy.stats().active === 2 && sink.peers.length === 2);
    proxy.resetAll();
    await Promise.all([a.closed, b.closed]);
    expect(a.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(b.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
  });

  it('toxicity - 0 never applies, 1 always, in between is decided by the seed', async () => {
    const sink = await startServer('sink');
    const links = async (seed: number): Promise<string[][]> => {
      const proxy = await startProxy(sink.port, { seed });
      proxy.addToxic({
        type: 'latency',
        direction: 'both',
        latency: 1,
        toxicity: 0,
        name: 'never',
      });
      proxy.addToxic({
        type: 'latency',
        direction: 'both',
        latency: 1,
        toxicity: 1,
        name: 'always',
      });
      proxy.addToxic({
        type: 'latency',
        direction: 'both',
        latency: 1,
        toxicity: 0.5,
        name: 'half',
      });
      for (let i = 0; i < 16; i++) await connectClient(proxy.port);
      await until(() => proxy.stats().active === 16);
      const result = proxy.links.map((link) => link.toxics);
      await proxy.stop();
      return result;
    };
    const first = await links(1234);
    expect(first.every((toxics) => !toxics.includes('never'))).toBe(true);
    expect(first.every((toxics) => toxics.includes('always'))).toBe(true);
    const half = first.filter((toxics) => toxics.includes('half')).length;
    expect(half).toBeGreaterThan(0);
    expect(half).toBeLessThan(16);
    expect(await links(1234)).toEqual(first);
  });

  it('toxicity - a toxic added at run time draws for the links already open', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port, { seed: 77 });
    for (let i = 0; i < 3; i++) await connectClient(proxy.port);
    await until(() => proxy.stats().active === 3);
    proxy.addToxic({ type: 'blackhole', direction: 'upstream' });
    expect(proxy.links.map((link) => link.toxics)).toEqual([
      ['blackhole-1'],
      ['blackhole-1'],
      ['blackhole-1'],
    ]);
    proxy.clearToxics();
    expect(proxy.toxics).toEqual([]);
    expect(proxy.links.map((link) => link.toxics)).toEqual([[], [], []]);
  });

  it('seed - the same seed gives the same slicer pieces, another seed others', async () => {
    const sink = await startServer('sink');
    const data = pattern(400, 10);
    const first = await slicedSizes(sink.port, 42, data);
    const second = await slicedSizes(sink.port, 42, data);
    const other = await slicedSizes(sink.port, 43, data);
    expect(first.length).toBeGreaterThan(10);
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('backpressure - a peer that does not read stalls the sender, not the proxy memory', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port, { highWaterMark: 64 * 1024 });
    const id = proxy.addToxic({ type: 'latency', direction: 'upstream', latency: 10 });
    const client = await connectClient(proxy.port);
    const peer = await sink.peer(0);
    peer.socket.pause();
    const data = pattern(16 * 1024 * 1024, 11);
    client.socket.write(data);
    // Wait until the proxy stops forwarding: the peer's kernel buffers are full.
    let forwarded = -1;
    for (let i = 0; i < 50 && proxy.stats().bytes.upstream !== forwarded; i++) {
      forwarded = proxy.stats().bytes.upstream;
      await sleep(100);
    }
    expect(proxy.stats().bytes.upstream).toBe(forwarded);
    expect(forwarded).toBeLessThan(data.length);
    // The proxy stopped reading because the write to the target did not drain: it holds that
    // queued write (at least a socket's write high-water mark, 16 KiB or more) and no more than
    // about twice its own mark; the rest waits in the sender.
    const held = proxy.links[0]?.held.upstream ?? -1;
    expect(held).toBeGreaterThanOrEqual(16 * 1024);
    expect(held).toBeLessThanOrEqual(256 * 1024);
    expect(client.socket.writableLength).toBeGreaterThan(0);
    proxy.removeToxic(id);
    peer.socket.resume();
    await until(() => peer.received().length === data.length, 5000);
    expect(peer.received().equals(data)).toBe(true);
  });
});
