import * as net from 'node:net';
import {
  encodeHello,
  type Frame,
  FrameDecoder,
  type HelloBody,
  PREFACE,
  PROTOCOL_VERSION,
  type ProtocolError,
} from '@tether/protocol';

/**
 * A hand-driven protocol client for tests: it speaks exactly what the test tells it to, so tests
 * can play a silent, slow or misbehaving peer that the real client would never be.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  error: ProtocolError | undefined;
  closed = false;
  readonly #decoder = new FrameDecoder();
  #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.error ??= this.#decoder.push(chunk, (frame) => this.frames.push(frame));
      this.#wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends the preface and a HELLO with sensible defaults, overridden by `hello`. */
  hello(hello: Partial<HelloBody> = {}): void {
    this.socket.write(PREFACE);
    this.socket.write(
      encodeHello({
        versions: [PROTOCOL_VERSION],
        clientId: 'raw',
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
        ...hello,
      }),
    );
  }

  /** Resolves with the first received frame matching `predicate` (waiting up to `timeoutMs`). */
  async next<T extends Frame>(
    predicate: (frame: Frame) => frame is T,
    timeoutMs = 5000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(predicate);
      if (found !== undefined) return found;
      if (this.closed) throw new Error('connection closed before the expected frame');
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the server has closed the socket. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket still open');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Type guard builder for `RawClient.next`. */
export function ofType<T extends Frame['type']>(type: T) {
  return (frame: Frame): frame is Extract<Frame, { type: T }> => frame.type === type;
}
