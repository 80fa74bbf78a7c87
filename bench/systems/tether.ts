// Tether: acknowledged, exactly-once sends (send() resolves on the server application's receipt).
import { TetherClient } from '@tether/client';
import { TetherServer } from '@tether/server';
import { type ClientOptions, type ServerOptions, type System, Window } from './types.js';

const MAX_FRAME = 2 * 1024 * 1024;

export function tether(useTls: boolean): System {
  return {
    async startServer(options: ServerOptions) {
      const server = new TetherServer({
        port: 0,
        ...(useTls && options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
        ...(options.uploadDir ? { uploadDir: options.uploadDir } : {}),
        // The defaults (10,000 total, 256 per address) would refuse the idle-connections scenario,
        // where every client comes from 127.0.0.1.
        maxConnections: 20_000,
        maxConnectionsPerAddress: 20_000,
        // The default 1 MiB frame limit counts the frame header, so a 1 MiB payload is refused.
        maxFrame: MAX_FRAME,
      });
      server.on('message', (m, peer) => {
        options.handler(m.data, (d) => {
          peer.send(d).catch(() => {});
        });
      });
      server.on('error', () => {});
      const address = await server.listen();
      return {
        port: address.port,
        memoryPid: process.pid,
        helpers: [],
        close: () => server.close(),
      };
    },
    async connect(options: ClientOptions) {
      const client = new TetherClient({
        host: '127.0.0.1',
        port: options.port,
        overflow: 'wait',
        maxFrame: MAX_FRAME,
        ...(useTls && options.tls ? { tls: { ca: options.tls.cert } } : {}),
      });
      client.on('error', () => {});
      await client.connect();
      const window = new Window(1024, 1024 * 1024, 8);
      let last: Promise<unknown> = Promise.resolve();
      return {
        send(data) {
          const p = client.send(data);
          last = p;
          return window.due(data.length) ? window.push(p) : undefined;
        },
        async flush() {
          await last;
          await window.drain();
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
}
