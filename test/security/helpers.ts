import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  encodeHello,
  type Frame,
  FrameDecoder,
  type HelloBody,
  PREFACE,
  PROTOCOL_VERSION,
  type ProtocolError,
  type TetherError,
} from '@tether/protocol';
import { type ServerOptions, TetherServer } from '@tether/server';
import { afterEach } from 'vitest';

/** Registers an afterEach that runs the returned list's cleanups, newest first. */
export function cleanupList(): (cleanup: () => unknown) => void {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => {
    cleanups.push(cleanup);
  };
}

export const delay = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** A started server, the errors it reported, and its port. */
export interface Started {
  server: TetherServer;
  port: number;
  errors: TetherError[];
}

/** Starts a server on port 0 with cleanup registered at once; records its `error` events. */
export async function startServer(
  defer: (cleanup: () => unknown) => void,
  options: ServerOptions = {},
): Promise<Started> {
  const server = new TetherServer(options);
  defer(() => server.close({ drainTimeoutMs: 0 }));
  const errors: TetherError[] = [];
  server.on('error', (error) => errors.push(error));
  const { port } = await server.listen();
  return { server, port, errors };
}

/**
 * A hand-driven protocol client over any socket, plain or TLS (test/helpers/raw-client.ts only
 * does plain TCP). It records every frame and when the socket closed.
 */
export class Wire {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly openedAt = performance.now();
  /** Every byte received, in order. */
  received: Buffer[] = [];
  error: ProtocolError | undefined;
  closed = false;
  closedAt: number | undefined;
  readonly #decoder = new FrameDecoder();
  #waiters: (() => void)[] = [];

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.error ??= this.#decoder.push(chunk, (frame) => this.frames.push(frame));
      this.#wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = performance.now();
      this.#wake();
    });
  }

  /** Plain TCP; `localAddress` picks the source address (any of 127/8 works on Linux). */
  static connect(
    port: number,
    defer?: (cleanup: () => unknown) => void,
    localAddress?: string,
  ): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const options: net.NetConnectOpts =
        localAddress === undefined
          ? { port, host: '127.0.0.1' }
          : { port, host: '127.0.0.1', localAddress };
      const socket = net.connect(options, () => {
        socket.off('error', reject);
        resolve(new Wire(socket));
      });
      defer?.(() => socket.destroy());
      socket.once('error', reject);
    });
  }

  static connectTls(
    port: number,
    options: tls.ConnectionOptions,
    defer?: (cleanup: () => unknown) => void,
  ): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ port, host: '127.0.0.1', ...options }, () => {
        socket.off('error', reject);
        resolve(new Wire(socket));
      });
      defer?.(() => socket.destroy());
      socket.once('error', reject);
    });
  }

  /** A HELLO with sensible defaults, overridden by `hello`. */
  static helloBody(hello: Partial<HelloBody> = {}): HelloBody {
    return {
      versions: [PROTOCOL_VERSION],
      clientId: 'raw',
      delivered: 0,
      acked: 0,
      maxFrame: 1 << 20,
      ...hello,
    };
  }

  /** Sends the preface and a HELLO. */
  hello(hello: Partial<HelloBody> = {}): void {
    this.socket.write(Buffer.concat([PREFACE, encodeHello(Wire.helloBody(hello))]));
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves with the first received frame matching `predicate`. */
  async next<T extends Frame>(
    predicate: (frame: Frame) => frame is T,
    timeoutMs = 5000,
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(predicate);
      if (found !== undefined) return found;
      if (this.closed) throw new Error('connection closed before the expected frame');
      if (performance.now() > deadline) throw new Error('timed out waiting for a frame');
      await this.#wait(50);
    }
  }

  /** Resolves once the socket has closed; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed) {
      if (performance.now() > deadline) throw new Error(`socket still open after ${timeoutMs} ms`);
      await this.#wait(20);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Type guard builder for `Wire.next`. */
export function ofType<T extends Frame['type']>(type: T) {
  return (frame: Frame): frame is Extract<Frame, { type: T }> => frame.type === type;
}

/** The bytes one forwarded connection carried each way. */
export interface RecordedLink {
  /** Client to server. */
  upstream: Buffer[];
  /** Server to client. */
  downstream: Buffer[];
}

/**
 * A TCP forwarder that records every byte each client connection sends (upstream) and receives
 * (downstream): what a network observer would capture.
 */
export class RecordingForwarder {
  readonly links: RecordedLink[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  port = 0;

  constructor(targetPort: number) {
    this.#server = net.createServer((client) => {
      const link: RecordedLink = { upstream: [], downstream: [] };
      this.links.push(link);
      const target = net.connect({ port: targetPort, host: '127.0.0.1' });
      for (const socket of [client, target]) {
        this.#sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          this.#sockets.delete(socket);
          client.destroy();
          target.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => {
        link.upstream.push(Buffer.from(chunk));
        target.write(chunk);
      });
      target.on('data', (chunk: Buffer) => {
        link.downstream.push(Buffer.from(chunk));
        client.write(chunk);
      });
    });
  }

  /** Every byte captured, both directions, all connections. */
  get all(): Buffer {
    return Buffer.concat(this.links.flatMap((link) => [...link.upstream, ...link.downstream]));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Median of a list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
