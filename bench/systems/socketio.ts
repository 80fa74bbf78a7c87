// socket.io: binary events over the WebSocket transport (clients skip long-polling).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { io } from 'socket.io-client';
import { type ClientOptions, type ServerOptions, type System, Window } from './types.js';

export const socketIo: System = {
  async startServer(options: ServerOptions) {
    const http = createServer();
    // maxHttpBufferSize defaults to 1e6 bytes: a 1 MiB payload would close the connection.
    const server = new Server(http, { maxHttpBufferSize: 4e6, serveClient: false });
    server.on('connection', (socket) => {
      const reply = (d: Buffer) => {
        socket.emit('m', d);
      };
      socket.on('m', (data: Buffer) => options.handler(data, reply));
      socket.on('sync', (ack: () => void) => ack());
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    return {
      port,
      memoryPid: process.pid,
      helpers: [],
      close: async () => {
        server.disconnectSockets(true);
        await server.close();
      },
    };
  },
  async connect(options: ClientOptions) {
    const socket = io(`http://127.0.0.1:${options.port}`, {
      transports: ['websocket'],
      forceNew: true,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const window = new Window();
    return {
      send(data) {
        socket.emit('m', data);
        return window.due(data.length) ? window.push(socket.emitWithAck('sync')) : undefined;
      },
      async flush() {
        await socket.emitWithAck('sync');
        await window.drain();
      },
      onMessage(cb) {
        socket.on('m', (data: Buffer) => cb(data));
      },
      onDead(cb) {
        socket.on('disconnect', (reason) => cb(reason));
      },
      close: async () => {
        socket.disconnect();
      },
    };
  },
};
