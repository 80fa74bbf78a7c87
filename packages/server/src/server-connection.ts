import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  type DataFrame,
  ErrorCode,
  encodeChallenge,
  encodeError,
  encodeGoaway,
  encodeWelcome,
  type Frame,
  FrameDecoder,
  FrameType,
  type HelloBody,
  type OutboundEntry,
  PREFACE,
  ProtocolError,
  ReliableLink,
  type RttStats,
  TetherError,
  type WelcomeBody,
} from '@tether/protocol';
import type { ResolvedServerOptions } from './options.js';
import type { Peer, PeerSendMeta } from './peer.js';

/** Outcome of a HELLO, decided by the server. */
export type HelloOutcome =
  | { ok: true; peer: Peer; welcome: WelcomeBody; resend: OutboundEntry<PeerSendMeta>[] }
  | { ok: false; error: TetherError };

/** What a connection asks of, and reports to, the server. */
export interface ConnectionHost {
  hello(connection: ServerConnection, body: HelloBody): HelloOutcome;
  data(peer: Peer, frame: DataFrame): void;
  acked(peer: Peer, entries: OutboundEntry<PeerSendMeta>[]): void;
  rtt(peer: Peer, stats: RttStats): void;
  control(peer: Peer, frame: Frame): void;
  /** The connection ended; `evicted` carries the silence when the heartbeat found it dead. */
  closed(connection: ServerConnection, error: TetherError, silentMs: number | undefined): void;
}

/**
 * One client socket on the server: sends the preface and CHALLENGE, waits (with a deadline) for
 * a valid HELLO, then runs the reliable link for the peer's session: heartbeat-based eviction,
 * coalesced ACKs, batched writes. Ends once; a bad client only ever closes its own socket.
 */
export class ServerConnection {
  readonly socket: Socket;
  readonly remoteAddress: string;
  peer: Peer | undefined;
  link: ReliableLink<PeerSendMeta> | undefined;
  readonly #host: ConnectionHost;
  readonly #options: ResolvedServerOptions;
  readonly #decoder: FrameDecoder;
  #phase: 'hello' | 'open' | 'closed' = 'hello';
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushQueued = false;

  constructor(socket: Socket, host: ConnectionHost, options: ResolvedServerOptions) {
    this.socket = socket;
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#host = host;
    this.#options = options;
    this.#decoder = new FrameDecoder({
      maxFrame: options.maxFrame,
      maxControl: options.maxControl,
    });
    socket.setNoDelay(true);
    socket.on('data', this.#onSocketData);
    socket.on('end', this.#onSocketEnd);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onSocketClose);
    this.#timer = setTimeout(
      () =>
        this.fail(
          new TetherError(
            ErrorCode.HANDSHAKE_TIMEOUT,
            `no HELLO within ${options.helloTimeoutMs} ms`,
          ),
        ),
      options.helloTimeoutMs,
    );
    socket.cork();
    socket.write(PREFACE);
    socket.write(
      encodeChallenge({
        nonce: randomBytes(32).toString('base64'),
        auth: [],
        maxFrame: options.maxFrame,
      }),
    );
    socket.uncork();
  }

  /** Whether the connection has ended. */
  get isClosed(): boolean {
    return this.#phase === 'closed';
  }

  /** Writes queued messages while the link's window has room. */
  pump(): void {
    if (this.#phase === 'open') this.link?.pump(this.#options.now());
  }

  /** Bytes waiting in the socket's buffer, plus those not yet handed to it. */
  get backlogBytes(): number {
    return this.socket.writableLength + (this.link?.batch.bytes ?? 0);
  }

  /** Tells the client to reconnect after `retryAfterMs` (server draining). */
  goaway(reason: string, retryAfterMs: number): void {
    if (this.#phase === 'closed') return;
    this.#write(encodeGoaway({ reason, retryAfterMs }));
  }

  /** Sends ERROR with the code and closes: the client learns why. */
  fail(error: TetherError): void {
    if (this.#phase === 'closed') return;
    this.#flush();
    this.socket.end(encodeError({ code: error.code, message: error.message }));
    this.#finish(error, undefined);
    // A peer that never reads must not hold the socket open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Closes at once without a word (eviction, server shutdown deadline). */
  destroy(error: TetherError, silentMs?: number): void {
    if (this.#phase === 'closed') return;
    this.socket.destroy();
    this.#finish(error, silentMs);
  }

  /** Flushes what is queued, then half-closes (graceful end after draining). */
  end(error: TetherError): void {
    if (this.#phase === 'closed') return;
    this.#flush();
    this.socket.end();
    this.#finish(error, undefined);
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  #finish(error: TetherError, silentMs: number | undefined): void {
    this.#phase = 'closed';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#host.closed(this, error, silentMs);
  }

  #onSocketData = (chunk: Buffer): void => {
    const now = this.#options.now();
    const peer = this.peer;
    if (peer !== undefined) {
      peer.bytesIn += chunk.length;
      peer.lastSeen = Date.now();
    }
    this.link?.heartbeat.inbound(now);
    const error = this.#decoder.push(chunk, this.#onFrame);
    if (this.#phase === 'closed') return;
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    this.link?.endOfBurst();
  };

  #onFrame = (frame: Frame): void => {
    if (this.#phase === 'closed') return;
    if (this.#phase === 'hello') {
      if (frame.type !== FrameType.HELLO) {
        this.fail(
          new ProtocolError(
            ErrorCode.UNEXPECTED_FRAME,
            `expected HELLO, got frame 0x${frame.type.toString(16)}`,
          ),
        );
        return;
      }
      this.#onHello(frame.body);
      return;
    }
    const link = this.link as ReliableLink<PeerSendMeta>;
    const peer = this.peer as Peer;
    const handled = link.handle(frame, this.#options.now());
    if (handled instanceof ProtocolError) {
      this.fail(handled);
      return;
    }
    if (handled) return;
    if (frame.type === FrameType.ERROR) {
      this.destroy(
        new TetherError(
          ErrorCode.REMOTE_ERROR,
          `client error ${frame.body.code}: ${frame.body.message}`,
        ),
      );
      return;
    }
    this.#host.control(peer, frame);
  };

  #onHello(body: HelloBody): void {
    const outcome = this.#host.hello(this, body);
    if (!outcome.ok) {
      this.fail(outcome.error);
      return;
    }
    const { peer, welcome, resend } = outcome;
    const now = this.#options.now();
    clearTimeout(this.#timer);
    this.peer = peer;
    this.link = new ReliableLink<PeerSendMeta>(
      peer.outbound,
      peer.inbound,
      peer.rtt,
      {
        heartbeat: {
          pingIntervalMs: this.#options.pingIntervalMs,
          deadAfterMs: this.#options.evictAfterMs,
        },
        maxInFlightBytes: this.#options.maxInFlightBytes,
      },
      {
        data: (frame) => this.#host.data(peer, frame),
        acked: (entries) => this.#host.acked(peer, entries),
        rtt: (stats) => this.#host.rtt(peer, stats),
        flush: this.#scheduleFlush,
      },
      now,
    );
    this.#phase = 'open';
    this.#write(encodeWelcome(welcome));
    this.link.start(resend, now);
    this.#armHeartbeat(now + this.#options.pingIntervalMs);
  }

  #armHeartbeat(dueAt: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => this.#onHeartbeat(dueAt),
      Math.max(0, dueAt - this.#options.now()),
    );
  }

  #onHeartbeat(dueAt: number): void {
    this.#timer = undefined;
    const link = this.link;
    if (link === undefined || this.#phase !== 'open') return;
    const decision = link.check(this.#options.now(), dueAt);
    if (decision.dead) {
      this.destroy(
        new TetherError(ErrorCode.EVICTED, `silent for ${Math.round(decision.silentMs)} ms`),
        decision.silentMs,
      );
      return;
    }
    this.#armHeartbeat(decision.wakeAt);
  }

  #write(frame: Buffer): void {
    if (this.link !== undefined) this.link.write(frame);
    else this.socket.write(frame);
  }

  #scheduleFlush = (): void => {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flush);
  };

  #flush = (): void => {
    this.#flushQueued = false;
    const link = this.link;
    if (link === undefined || this.socket.destroyed) return;
    const buffers = link.batch.take();
    let bytes = 0;
    if (buffers.length === 1) {
      bytes = (buffers[0] as Buffer).length;
      this.socket.write(buffers[0] as Buffer);
    } else if (buffers.length > 1) {
      this.socket.cork();
      for (const buffer of buffers) {
        bytes += buffer.length;
        this.socket.write(buffer);
      }
      this.socket.uncork();
    }
    if (this.peer !== undefined) this.peer.bytesOut += bytes;
  };

  #onSocketEnd = (): void => {
    const error = this.#decoder.end();
    if (error !== undefined) this.destroy(error);
    else
      this.destroy(new TetherError(ErrorCode.CONNECTION_LOST, 'the client closed the connection'));
  };

  #onSocketError = (error: Error): void => {
    this.destroy(
      new TetherError(ErrorCode.CONNECTION_LOST, `connection error: ${error.message}`, {
        cause: error,
      }),
    );
  };

  #onSocketClose = (): void => {
    this.destroy(new TetherError(ErrorCode.CONNECTION_LOST, 'connection closed'));
  };
}
