// Tether: acknowledged, exactly-once sends (send() resolves on the server application's receipt).
// `tether-tls` is the same over TLS; `tether-watched` is the same with the server's dashboard on
// and someone watching it (systems/dashboard-watcher.ts): what the dashboard costs; `tether-ws` is
// the same over WebSocket (the server's endpoint on a port of its own, the client's `url`, ws).
import { TetherClient } from '@tether/client';
import { TetherServer } from '@tether/server';
import { type DashboardWatcher, watchDashboard } from './dashboard-watcher.js';
import { type ClientOptions, type ServerOptions, type System, Window } from './types.js';

const MAX_FRAME = 2 * 1024 * 1024;
const HEARTBEAT_FRAME_BYTES = 14;

export interface TetherVariant {
  tls: boolean;
  /** The dashboard on (port 0), its live page open and /metrics scraped every second. */
  watched: boolean;
  /** Over WebSocket: the client connects to the server's `webSocket` endpoint. */
  webSocket: boolean;
}

export function tether({ tls: useTls, watched, webSocket }: TetherVariant): System {
  return {
    async startServer(options: ServerOptions) {
      const server = new TetherServer({
        port: 0,
        ...(useTls && options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
        // Its defaults otherwise: the live page every 1 s, no prom-client process metrics.
        ...(watched || options.dashboard ? { dashboard: { port: 0 } } : {}),
        ...(options.uploadDir ? { uploadDir: options.uploadDir } : {}),
        // The defaults (10,000 total, 256 per address) would refuse the idle-connections scenario,
        // where every client comes from 127.0.0.1.
        maxConnections: 20_000,
        maxConnectionsPerAddress: 20_000,
        // The default 1 MiB frame limit counts the frame header, so a 1 MiB payload is refused.
        maxFrame: MAX_FRAME,
        ...(webSocket ? { webSocket: { port: 0 } } : {}),
      });
      server.on('message', (m, peer) => {
        options.handler(m.data, (d) => {
          peer.send(d).catch(() => {});
        });
      });
      server.on('error', () => {});
      const address = await server.listen();
      let watcher: DashboardWatcher | undefined;
      if (watched) {
        const dashboard = server.dashboardAddress;
        if (dashboard === undefined) throw new Error('tether-watched: the dashboard is not up');
        try {
          watcher = await watchDashboard({
            port: dashboard.port,
            onFailure: (error) => {
              // A dashboard nobody watches costs less: figures measured so would be wrong.
              if (options.onFailure) options.onFailure(error);
              else throw error;
            },
          });
        } catch (error) {
          await server.close();
          throw error;
        }
      }
      return {
        port: webSocket ? (server.webSocketAddress?.port ?? 0) : address.port,
        memoryPid: process.pid,
        helpers: [],
        // Idle, every inbound byte is a PING or a PONG (14 bytes each).
        heartbeatFrames: () => {
          let bytes = 0;
          for (const peer of server.peers) bytes += peer.stats().bytesIn;
          return bytes / HEARTBEAT_FRAME_BYTES;
        },
        dashboardPort: server.dashboardAddress?.port,
        close: async () => {
          watcher?.close();
          await server.close();
        },
      };
    },
    async connect(options: ClientOptions) {
      const client = new TetherClient({
        host: '127.0.0.1',
        port: options.port,
        ...(webSocket ? { url: `ws://127.0.0.1:${options.port}/tether` } : {}),
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
