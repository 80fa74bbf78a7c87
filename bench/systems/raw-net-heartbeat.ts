// raw-net-heartbeat: the floor of Tether's idle heartbeat traffic, for idle-connections only. The
// plainest ping and echo on node:net at Tether's default rate and sizes: each client sends a
// 14-byte PING (u32 length 10 | u8 type | u8 flags | u64 stamp, Tether's PING) every 5 s and the
// server answers each with a 14-byte PONG written at once. One exchange per connection per 5 s,
// as Tether's idle link: its client pings after 5 s of inbound silence, and the server's own PING
// for its RTT (once per 6 intervals) resets the client's clock, so it takes the place of a client
// PING. No decoder state machine, no deadlines, no batching: the kernel's work per packet and
// Node's per write, with nothing of Tether's on top. Nagle off.
import net from 'node:net';
import { FrameReader, listenFramed } from './raw-framing.js';
import type { ClientOptions, ServerOptions, System } from './types.js';

const PING = 0x10;
const PONG = 0x11;
const FRAME = 14;
const PING_INTERVAL_MS = 5000;

function frame(type: number, stamp: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME);
  out.writeUInt32BE(FRAME - 4, 0);
  out[4] = type;
  out[5] = 0;
  stamp.copy(out, 6, 2, 10);
  return out;
}

export const rawNetHeartbeat: System = {
  async startServer(_options: ServerOptions) {
    const sockets = new Set<net.Socket>();
    // Heartbeat frames received (PINGs answered): one per exchange.
    let frames = 0;
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.setNoDelay(true);
      socket.on('error', () => {});
      const reader = new FrameReader((body) => {
        frames++;
        if (body[0] === PING) socket.write(frame(PONG, body));
      });
      socket.on('data', (chunk: Buffer) => reader.push(chunk));
    });
    const { port, close } = await listenFramed(server, sockets);
    return { port, memoryPid: process.pid, helpers: [], close, heartbeatFrames: () => frames };
  },
  async connect(options: ClientOptions) {
    const socket = net.connect({ host: '127.0.0.1', port: options.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    socket.on('error', () => {});
    // PONGs are read and dropped (the server never pings: nothing to answer).
    socket.on('data', () => {});
    const stamp = Buffer.alloc(10);
    const timer = setInterval(() => {
      stamp.writeDoubleBE(performance.now(), 2);
      socket.write(frame(PING, stamp));
    }, PING_INTERVAL_MS);
    const unsupported = () => {
      throw new Error('raw-net-heartbeat only idles (idle-connections)');
    };
    return {
      send: unsupported,
      flush: async () => unsupported(),
      onMessage: () => {},
      onDead(cb) {
        socket.on('close', () => cb('socket closed'));
      },
      close: async () => {
        clearInterval(timer);
        socket.destroy();
      },
    };
  },
};
