// raw-tls: raw-net's framing (systems/raw-framing.ts) over node:tls, with the TLS settings Tether
// uses (Node's defaults, TLS 1.2 at least: TLS 1.3 is what both negotiate). The limit that
// tether-tls is compared with.
import type net from 'node:net';
import tls from 'node:tls';
import { framedClient, listenFramed, serveFrames } from './raw-framing.js';
import type { ClientOptions, ServerOptions, System } from './types.js';

export const rawTls: System = {
  async startServer(options: ServerOptions) {
    if (!options.tls) throw new Error('raw-tls needs a certificate');
    const sockets = new Set<net.Socket>();
    const server = tls.createServer(
      { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' },
      (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        serveFrames(socket, options.handler);
      },
    );
    server.on('tlsClientError', () => {});
    const { port, close } = await listenFramed(server, sockets);
    return { port, memoryPid: process.pid, helpers: [], close };
  },
  async connect(options: ClientOptions) {
    if (!options.tls) throw new Error('raw-tls needs the server certificate');
    const socket = tls.connect({
      host: '127.0.0.1',
      port: options.port,
      ca: options.tls.cert,
      minVersion: 'TLSv1.2',
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return framedClient(socket);
  },
};
