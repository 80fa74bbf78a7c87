import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ChaosProxy } from '../src/index.js';
import { connectClient, pattern, startProxy, startServer, until } from './helpers.js';

const MiB = 1024 * 1024;

describe('forwarding', () => {
  it('forwarding - 1 MiB round-trips byte-identical through an echo server', async () => {
    const echo = await startServer('echo');
    const proxy = await startProxy(echo.port);
    const client = await connectClient(proxy.port);
    const data = pattern(MiB);
    client.socket.write(data);
    const back = await client.waitFor(MiB);
    expect(back.length).toBe(MiB);
    expect(back.equals(data)).toBe(true);
    expect(proxy.stats()).toEqual({
      connections: 1,
      active: 1,
      bytes: { upstream: MiB, downstream: MiB },
      dropped: { upstream: 0, downstream: 0 },
    });
    expect(proxy.links[0]?.bytes).toEqual({ upstream: MiB, downstream: MiB });
  });

  it('forwarding - 1 MiB each way at once, independently', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const client = await connectClient(proxy.port);
    const up = pattern(MiB, 1);
    const down = pattern(MiB, 2);
    const peer = await sink.peer(0);
    client.socket.end(up);
    peer.socket.end(down);
    await Promise.all([peer.ended, client.ended]);
    expect(peer.received().equals(up)).toBe(true);
    expect(client.received().equals(down)).toBe(true);
  });

  it('forwarding - a half-close passes through and the other direction keeps flowing', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const client = await connectClient(proxy.port);
    client.socket.end(Buffer.from('request'));
    const peer = await sink.peer(0);
    await peer.ended;
    expect(peer.received().toString()).toBe('request');
    peer.socket.end(Buffer.from('response after FIN'));
    await client.ended;
    expect(client.received().toString()).toBe('response after FIN');
    await client.closed;
    await until(() => proxy.stats().active === 0);
  });

  it('forwarding - a client reset reaches the target as ECONNRESET', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const errors: Error[] = [];
    proxy.on('error', (error) => errors.push(error));
    const client = await connectClient(proxy.port);
    client.socket.write('x');
    const peer = await sink.peer(0);
    await until(() => peer.chunks.length > 0);
    client.socket.resetAndDestroy();
    await peer.closed;
    expect(peer.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toContain('ECONNRESET');
  });

  it('forwarding - an unreachable target resets the client and the proxy keeps running', async () => {
    const spare = createServer();
    spare.listen(0, '127.0.0.1');
    await once(spare, 'listening');
    const deadPort = (spare.address() as { port: number }).port;
    await new Promise((resolve) => spare.close(resolve));
    const proxy = await startProxy(deadPort);
    const errors: string[] = [];
    proxy.on('error', (error) => errors.push(String((error as NodeJS.ErrnoException).code)));
    const client = await connectClient(proxy.port);
    await client.closed;
    expect(client.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(errors).toEqual(['ECONNREFUSED']);
    expect(proxy.stats()).toMatchObject({ connections: 1, active: 0 });
  });

  it('options - bad options throw TypeErrors', () => {
    expect(() => new ChaosProxy({ target: { port: 70000 } })).toThrow(TypeError);
    expect(() => new ChaosProxy({ target: { port: 1 }, seed: -1 })).toThrow(/seed/);
    expect(() => new ChaosProxy({ target: { port: 1 }, seed: 1.5 })).toThrow(TypeError);
    expect(() => new ChaosProxy({ target: { port: 1 }, highWaterMark: 0 })).toThrow(
      /highWaterMark/,
    );
    expect(new ChaosProxy({ target: { port: 1 }, seed: 7 }).seed).toBe(7);
    const seed = new ChaosProxy({ target: { port: 1 } }).seed;
    expect(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff).toBe(true);
  });
});
