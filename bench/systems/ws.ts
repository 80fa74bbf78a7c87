// ws: binary WebSocket messages, no compression (the ws server's default).
import { WebSocket, WebSocketServer } from 'ws';
import { type ClientOptions, type ServerOptions, type System, Window } from './types.js';

export const ws: System = {
  async startServer(options: ServerOptions) {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    server.on('connection', (socket) => {
      const reply = (d: Buffer) => socket.send(d);
      socket.on('message', (data: Buffer) => options.handler(data, reply));
      socket.on('error', () => {});
    });
    const port = (server.address() as { port: number }).port;
    return {
      port,
      memoryPid: process.pid,
      helpers: [],
      close: () =>
        new Promise<void>((resolve) => {
          for (const c of server.clients) c.terminate();
          server.close(() => resolve());
        }),
    };
  },
  async connect(options: ClientOptions) {
    const socket = new WebSocket(`ws://127.0.0.1:${options.port}`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    const window = new Window();
    return {
      send(data) {
        if (!window.due(data.length)) {
          socket.send(data);
          return undefined;
        }
        return window.push(new Promise<void>((resolve) => socket.send(data, () => resolve())));
      },
      async flush() {
        await new Promise<void>((resolve) => socket.send(Buffer.alloc(0), () => resolve()));
        await window.drain();
      },
      onMessage(cb) {
        socket.on('message', (data: Buffer) => {
          if (data.length > 0) cb(data);
        });
      },
      onDead(cb) {
        socket.on('close', () => cb('close'));
      },
      close: async () => socket.terminate(),
    };
  },
};
