// raw-net: length-prefixed frames (systems/raw-framing.ts) over node:net, Nagle off.
import net from 'node:net';
import { framedClient, listenFramed, serveFrames } from './raw-framing.js';
import type { ClientOptions, ServerOptions, System } from './types.js';

export const rawNet: System = {
  async startServer(options: ServerOptions) {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      serveFrames(socket, options.handler);
    });
    const { port, close } = await listenFramed(server, sockets);
    return { port, memoryPid: process.pid, helpers: [], close };
  },
  async connect(options: ClientOptions) {
    const socket = net.connect({ host: '127.0.0.1', port: options.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return framedClient(socket);
  },
};
