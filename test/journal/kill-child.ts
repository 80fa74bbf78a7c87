// One incarnation of the client in the kill -9 test (journal-kill.test.ts), run as a child
// process: `node --import tsx --conditions=@tether/source kill-child.ts <port> <store> <n> <log>`.
//
// It opens the client on the store, logs every message from the server as its handler's effect
// (one line, written when the handler starts: `seq redelivered id`), and streams its own
// numbered messages `${n}:${k}` to the server. After each burst it waits for `journaled()` and
// tells the parent how many of its messages are journaled, so the parent knows which ones must
// arrive whatever happens next. On 'stop' it sends no more, waits until everything it holds is
// acknowledged, closes, and says 'done'.
import * as fs from 'node:fs';
import { TetherClient } from '@tether/client';

const [portArg, dir, incarnationArg, log] = process.argv.slice(2);
const port = Number(portArg);
const incarnation = Number(incarnationArg);
const send = (message: unknown): void => {
  process.send?.(message);
};

const client = new TetherClient({
  port,
  store: { dir: dir as string },
  backoff: { minDelayMs: 10, maxDelayMs: 50 },
  pingIntervalMs: 1000,
  deadAfterMs: 3000,
});
const logFd = fs.openSync(log as string, 'a');
client.on('message', (m) => {
  fs.writeSync(logFd, `${m.seq} ${m.redelivered ? 1 : 0} ${m.id}\n`);
  // The application works a little on each message, so that some kills fall inside a handler.
  const until = performance.now() + 0.15;
  while (performance.now() < until) {}
});
const damage: string[] = [];
client.on('damage', (d) => damage.push(`${d.file}:${d.reason}`));
client.on('error', (error) => send({ kind: 'error', code: error.code, message: error.message }));
send({ kind: 'restored', count: client.restored.length, clientId: client.clientId });

let stopped = false;
process.on('message', (message) => {
  if (message === 'stop') stopped = true;
});

await client.connect();
send({ kind: 'ready', damage });

let k = 0;
const pending = new Set<Promise<unknown>>();
while (!stopped) {
  // Stay well inside the outbox: a send is never refused, so every one counted was queued.
  if (client.stats().outbox.depth < 5000) {
    for (let i = 0; i < 10; i++) {
      const receipt = client.send(`${incarnation}:${k++}`);
      pending.add(receipt);
      receipt.then(
        () => pending.delete(receipt),
        (error: { code?: string }) => send({ kind: 'error', code: error.code }),
      );
    }
    await client.journaled();
    send({ kind: 'journaled', incarnation, count: k });
  }
  await new Promise((resolve) => setTimeout(resolve, 2));
}
await Promise.all([...pending, ...client.restored.map((m) => m.receipt)]);
await client.close();
fs.closeSync(logFd);
send({ kind: 'done', sent: k });
process.disconnect?.();
