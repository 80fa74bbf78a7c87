import { TetherClient } from '@tether/client';
import { TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('session - smoke', () => {
  it('exchanges messages and requests both ways', async () => {
    const server = new TetherServer({ onRequest: (p) => `re:${p.toString()}` });
    cleanups.push(() => server.close({ drainTimeoutMs: 100 }));
    const { port } = await server.listen();
    const received: string[] = [];
    server.on('message', (m, peer) => {
      received.push(m.text());
      void peer.send(`echo:${m.text()}`);
    });
    const client = new TetherClient({ port });
    cleanups.push(() => client.close());
    const echoes: string[] = [];
    client.on('message', (m) => echoes.push(m.text()));
    await client.connect();
    const receipts = await Promise.all(Array.from({ length: 100 }, (_, i) => client.send(`m${i}`)));
    expect(receipts.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect((await client.request('x')).toString()).toBe('re:x');
    await expect.poll(() => echoes.length).toBe(100);
    expect(echoes[99]).toBe('echo:m99');
  });
});
