// Run in a child process by pretenuring.test.ts, with V8's allocation-site pretenuring traced and
// the new space fixed at its maximum: queues messages to a connected client in bursts (every one
// stays alive across the scavenge that follows, as messages in flight do under load) and lets V8
// decide whether to pretenure the allocation sites that made them.
import { TetherClient } from '@tether/client';
import { TetherServer } from '@tether/server';

const gc = (globalThis as { gc?: (options?: { type: 'minor' }) => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const server = new TetherServer({ port: 0, host: '127.0.0.1' });
server.on('error', () => {});
const { port } = await server.listen();
const client = new TetherClient({ host: '127.0.0.1', port, clientId: 'probe' });
client.on('error', () => {});
let received = 0;
const all = new Promise<void>((resolve) => {
  client.on('message', () => {
    if (++received === 20_000) resolve();
  });
});
await client.connect();
const payload = Buffer.alloc(16);
for (let round = 0; round < 4; round++) {
  for (let i = 0; i < 5_000; i++) server.sendTo('probe', payload).catch(() => {});
  gc({ type: 'minor' });
}
await all;
await client.close();
await server.close();
console.log('probe done');
