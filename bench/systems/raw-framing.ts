// The framing of the raw systems (raw-net, raw-tls): u32 BE length + payload, with coalesced
// writes. No acknowledgements, no heartbeats, no reconnect: the practical limit of a Node socket.
import type net from 'node:net';
import type { ClientSide, Handler } from './types.js';

const STAGE = 64 * 1024;

/** Splits a byte stream into frames; a frame spread over many chunks is copied once. */
export class FrameReader {
  #chunks: Buffer[] = [];
  #have = 0;
  #need = -1;
  constructor(readonly onFrame: (frame: Buffer) => void) {}
  push(chunk: Buffer): void {
    if (this.#have === 0) {
      // Fast path: parse frames straight out of the chunk.
      let off = 0;
      while (chunk.length - off >= 4) {
        const len = chunk.readUInt32BE(off);
        if (chunk.length - off - 4 < len) break;
        this.onFrame(chunk.subarray(off + 4, off + 4 + len));
        off += 4 + len;
      }
      if (off < chunk.length) {
        const rest = chunk.subarray(off);
        this.#chunks.push(rest);
        this.#have = rest.length;
        this.#need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : -1;
      }
      return;
    }
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    if (this.#need < 0 && this.#have >= 4) {
      const head = Buffer.concat(this.#chunks);
      this.#chunks = [head];
      this.#need = 4 + head.readUInt32BE(0);
    }
    if (this.#need >= 0 && this.#have >= this.#need) {
      const all = Buffer.concat(this.#chunks, this.#have);
      this.#chunks = [];
      this.#have = 0;
      this.#need = -1;
      this.push(all);
    }
  }
}

/**
 * Writes frames through a 64 KiB staging buffer, flushed when full or in a microtask: everything
 * sent in one synchronous burst goes out in one write, and a lone message is not held back.
 */
class FrameWriter {
  #stage = Buffer.allocUnsafe(STAGE);
  #used = 0;
  #scheduled = false;
  constructor(readonly socket: net.Socket) {}
  write(data: Buffer): boolean {
    let ok = true;
    if (this.#used + 4 + data.length > STAGE) ok = this.flush();
    if (4 + data.length > STAGE) {
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(data.length, 0);
      this.socket.cork();
      this.socket.write(head);
      ok = this.socket.write(data) && ok;
      this.socket.uncork();
      return ok;
    }
    this.#stage.writeUInt32BE(data.length, this.#used);
    data.copy(this.#stage, this.#used + 4);
    this.#used += 4 + data.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
    return ok;
  }
  flush(): boolean {
    if (this.#used === 0) return true;
    const out = Buffer.from(this.#stage.subarray(0, this.#used));
    this.#used = 0;
    return this.socket.write(out);
  }
}

/** The server side of one connection: frames in go to the handler, replies go out framed. */
export function serveFrames(socket: net.Socket, handler: Handler): void {
  socket.setNoDelay(true);
  const writer = new FrameWriter(socket);
  const reply = (d: Buffer) => {
    writer.write(d);
  };
  const reader = new FrameReader((frame) => handler(frame, reply));
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  socket.on('error', () => {});
}

/** The client side over a connected socket (plain or TLS). */
export function framedClient(socket: net.Socket): ClientSide {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const writer = new FrameWriter(socket);
  const drain = () => new Promise<void>((resolve) => socket.once('drain', resolve));
  return {
    send(data) {
      return writer.write(data) ? undefined : drain();
    },
    async flush() {
      if (!writer.flush()) await drain();
    },
    onMessage(cb) {
      const reader = new FrameReader(cb);
      socket.on('data', (chunk: Buffer) => reader.push(chunk));
    },
    onDead(cb) {
      socket.on('close', () => cb('socket closed'));
    },
    close: async () => {
      socket.destroy();
    },
  };
}

/** Listens on 127.0.0.1 port 0 with `server` and closes it with every open socket. */
export async function listenFramed(
  server: net.Server,
  sockets: Set<net.Socket>,
): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
