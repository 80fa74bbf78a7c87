import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import { ChaosProxy, type ChaosProxyOptions } from '../src/index.js';

/** A connection accepted by a test server: what it received, and whether it saw the end. */
export interface Peer {
  socket: Socket;
  chunks: Buffer[];
  received(): Buffer;
  ended: Promise<void>;
  closed: Promise<void>;
  errors: Error[];
}

export interface TestServer {
  server: Server;
  port: number;
  peers: Peer[];
  /** Resolves with the nth accepted peer (from 0). */
  peer(index: number): Promise<Peer>;
}

/** Starts a TCP server on 127.0.0.1:0 that echoes (or only collects) what it gets; closed after the test. */
export async function startServer(mode: 'echo' | 'sink'): Promise<TestServer> {
  const peers: Peer[] = [];
  const waiters: Array<() => void> = [];
  const server = createServer({ allowHalfOpen: mode === 'sink' }, (socket) => {
    const chunks: Buffer[] = [];
    const errors: Error[] = [];
    socket.on('error', (error) => errors.push(error));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (mode === 'echo') socket.write(chunk);
    });
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    peers.push({ socket, chunks, received: () => Buffer.concat(chunks), ended, closed, errors });
    for (const wake of waiters.splice(0)) wake();
  });
  onTestFinished(async () => {
    for (const peer of peers) peer.socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const peer = async (index: number): Promise<Peer> => {
    while (peers.length <= index) await new Promise<void>((resolve) => waiters.push(resolve));
    return peers[index] as Peer;
  };
  return { server, port, peers, peer };
}

/** A started proxy in front of `targetPort`, stopped after the test. */
export async function startProxy(
  targetPort: number,
  options: Partial<ChaosProxyOptions> = {},
): Promise<ChaosProxy> {
  const proxy = new ChaosProxy({ target: { host: '127.0.0.1', port: targetPort }, ...options });
  onTestFinished(() => proxy.stop());
  await proxy.start();
  return proxy;
}

/** A client connected to `port`, with everything it receives collected; destroyed after the test. */
export interface Client {
  socket: Socket;
  chunks: Buffer[];
  received(): Buffer;
  errors: Error[];
  ended: Promise<void>;
  closed: Promise<void>;
  /** Resolves once at least `bytes` bytes have arrived. */
  waitFor(bytes: number): Promise<Buffer>;
}

export async function connectClient(port: number): Promise<Client> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  onTestFinished(async () => {
    if (!socket.closed) {
      socket.destroy();
      await once(socket, 'close');
    }
  });
  const chunks: Buffer[] = [];
  const errors: Error[] = [];
  let total = 0;
  let wake: (() => void) | undefined;
  socket.on('error', (error) => errors.push(error));
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    wake?.();
  });
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, 'connect');
  const received = (): Buffer => Buffer.concat(chunks);
  const waitFor = async (bytes: number): Promise<Buffer> => {
    while (total < bytes) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    return received();
  };
  return { socket, chunks, received, errors, ended, closed, waitFor };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Deterministic test bytes (not the proxy's PRNG: just a pattern that catches reordering). */
export function pattern(length: number, salt = 0): Buffer {
  const buffer = Buffer.alloc(length);
  let x = 0x12345678 ^ salt;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer[i] = x & 0xff;
  }
  return buffer;
}

/** Resolves when `check` is true, polling; rejects after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}
