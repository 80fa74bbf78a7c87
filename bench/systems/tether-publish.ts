// Tether with `publish()`: the same server, the same exactly-once acknowledged delivery as
// `tether`, but no promise per message. Paced like nats (the same checkpoint window): every
// 1,024 messages or 1 MiB a `flush()` (resolves once the server acknowledged everything published
// before it), at most 8 outstanding, which keeps the outbox below its 10,000-message cap (a full
// outbox makes publish() throw QUEUE_FULL: it never waits).
import { TetherClient } from '@tether/client';
import { tether } from './tether.js';
import { type ClientOptions, type System, Window } from './types.js';

const MAX_FRAME = 2 * 1024 * 1024;

const server = tether({ tls: false, watched: false, webSocket: false });

export const tetherPublish: System = {
  startServer: (options) => server.startServer(options),
  async connect(options: ClientOptions) {
    const client = new TetherClient({
      host: '127.0.0.1',
      port: options.port,
      maxFrame: MAX_FRAME,
    });
    client.on('error', () => {});
    // A message that failed would make the figures wrong: the next send or flush throws.
    let failed: Error | undefined;
    client.on('publishFailed', (failure) => {
      failed ??= new Error(`tether-publish: message ${failure.id} failed: ${failure.code}`);
    });
    await client.connect();
    const window = new Window(1024, 1024 * 1024, 8);
    return {
      send(data) {
        if (failed !== undefined) throw failed;
        client.publish(data);
        return window.due(data.length) ? window.push(client.flush()) : undefined;
      },
      async flush() {
        await client.flush();
        await window.drain();
        if (failed !== undefined) throw failed;
      },
      onMessage(cb) {
        client.on('message', (m) => cb(m.data));
      },
      onDead(cb) {
        client.on('state', (c) => {
          if (c.state === 'reconnecting') cb(c.reason);
        });
      },
      close: () => client.close(),
    };
  },
};
