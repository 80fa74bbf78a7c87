// raw-net-heartbeat: the floor of Tether's idle heartbeat traffic, for idle-connections only. The
// plainest ping and echo on node:net at Tether's default rates and sizes: each client sends a
// 14-byte PING (u32 length 10 | u8 type | u8 flags | u64 stamp, Tether's PING) every 5 s; the
// server answers each with a 14-byte PONG written at once, and every 6th PONG carries a PING of
// the server's own in the same write (Tether's server RTT sample, once per 6 ping intervals),
// which the client answers at once. No decoder state machine, no deadlines, no batching: the
// kernel's work per packet and Node's per write, with nothing of Tether's on top. Nagle off.
import net from 'node:net';
import { FrameReader, listenFramed } from './raw-framing.js';
import type { ClientOptions, ServerOptions, System } from './types.js';

const PING = 0x10;
const PONG = 0x11;
const FRAME = 14;
const PING_INTERVAL_MS = 5000;
const SERVER_PING_EVERY = 6;

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
    // Heartbeat frames received (PINGs answered, PONGs to the server's PINGs): one per exchange.
    let frames = 0;
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.setNoDelay(true);
      socket.on('error', () => {});
      let pongs = 0;
      const reader = new FrameReader((body) => {
        frames++;
        if (body[0] !== PING) return;
        const pong = frame(PONG, body);
        if (++pongs % SERVER_PING_EVERY !== 0) {
          socket.write(pong);
          return;
        }
        const both = Buffer.allocUnsafe(2 * FRAME);
        pong.copy(both, 0);
        both.writeUInt32BE(FRAME - 4, FRAME);
        both[FRAME + 4] = PING;
        both[FRAME + 5] = 0;
        both.writeDoubleBE(performance.now(), FRAME + 6);
        socket.write(both);
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
    const reader = new FrameReader((body) => {
      if (body[0] === PING) socket.write(frame(PONG, body));
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
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
