import { once } from 'node:events';
import { type AddressInfo, connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ChaosProxy } from '../src/index.js';
import { until } from './helpers.js';

// In a file of its own: vitest runs each file in a fresh worker, so the baseline holds only
// vitest's own handles, not sockets of earlier tests still closing.
describe('stop', () => {
  it('stop - leaves no servers, sockets or timers behind', async () => {
    const count = (): Record<string, number> => {
      const counts: Record<string, number> = { TCPServerWrap: 0, TCPSocketWrap: 0, Timeout: 0 };
      for (const resource of process.getActiveResourcesInfo()) {
        if (resource in counts) counts[resource] = (counts[resource] ?? 0) + 1;
      }
      return counts;
    };
    const before = count();

    const echo = createServer((socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const proxy = new ChaosProxy({
      target: { port: (echo.address() as AddressInfo).port },
      seed: 3,
    });
    await proxy.start();
    proxy.addToxic({ type: 'latency', direction: 'downstream', latency: 5000 });
    proxy.addToxic({ type: 'reset_peer', direction: 'both', timeout: 10_000 });
    proxy.addToxic({ type: 'slow_close', direction: 'upstream', delay: 10_000 });
    proxy.addToxic({ type: 'timeout', direction: 'upstream', timeout: 10_000, toxicity: 0.5 });
    const clients = [connect(proxy.port, '127.0.0.1'), connect(proxy.port, '127.0.0.1')];
    for (const socket of clients) {
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.end('data held by the latency toxic');
    }
    await until(() => proxy.stats().bytes.upstream > 0);
    expect(count().Timeout).toBeGreaterThan(before.Timeout ?? 0);

    await proxy.stop();
    // stop() resolves only once the proxy's own handles are released.
    const afterStop = count();
    expect(afterStop.TCPServerWrap).toBe((before.TCPServerWrap ?? 0) + 1); // the echo server
    expect(afterStop.Timeout).toBeLessThanOrEqual(before.Timeout ?? 0);
    expect(proxy.stats().active).toBe(0);

    await Promise.all(clients.map((socket) => (socket.closed ? null : once(socket, 'close'))));
    await new Promise((resolve) => echo.close(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const after = count();
    expect(after.TCPServerWrap).toBe(before.TCPServerWrap);
    expect(after.TCPSocketWrap).toBe(before.TCPSocketWrap);
    // vitest's own timer may come and go; ours must all be gone.
    expect(after.Timeout).toBeLessThanOrEqual(before.Timeout ?? 0);
    await expect(proxy.start()).rejects.toThrow(/after stop/);
  });

  it('stop - while start() is still binding leaves no listener', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    const proxy = new ChaosProxy({ target: { port: 9 } });
    const started = proxy.start();
    await proxy.stop();
    await started;
    const after = process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    expect(after).toBe(before);
  });
});
