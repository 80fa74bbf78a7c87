import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { TRANSFER_LOW_WATER, type TransferLink } from '@tether/files';
import {
  CREDENTIALS_AUTH_METHOD,
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
  HMAC_AUTH_METHOD,
  PREFACE,
  ProtocolError,
  ReliableLink,
  type RttStats,
  TetherError,
  type WelcomeBody,
} from '@tether/protocol';
import type { ResolvedServerOptions, TlsIdentity } from './options.js';
import type { Peer, PeerPendingSend } from './peer.js';

// Bytes above the control cap that a frame may declare before the handshake is done.
const PRE_HANDSHAKE_SLACK = 64;

/** Outcome of a HELLO, decided by the server. */
export type HelloOutcome =
  | { ok: true; peer: Peer; welcome: WelcomeBody; resend: PeerPendingSend[] }
  | { ok: false; error: TetherError };

/** What a connection asks of, and reports to, the server. */
export interface ConnectionHost {
  /** Authenticates and opens or resumes the session (may take time: a hook, a fixed delay). */
  hello(connection: ServerConnection, body: HelloBody): Promise<HelloOutcome>;
  /** The bytes this connection holds in incomplete frames changed by `delta`. */
  inboundBuffered(connection: ServerConnection, delta: number): void;
  data(peer: Peer, frame: DataFrame): void;
  acked(peer: Peer, entries: PeerPendingSend[]): void;
  rtt(peer: Peer, stats: RttStats): void;
  control(peer: Peer, frame: Frame): void;
  /** The session is open on this connection (WELCOME sent, link running). */
  opened(connection: ServerConnection, peer: Peer): void;
  /** The socket drained: bulk senders (file chunks) may continue. */
  drained(peer: Peer): void;
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
  /** Fresh per connection: what the client's auth proof is computed over. */
  readonly nonce: string = randomBytes(32).toString('base64');
  /** Set on TLS connections: what the certificate check established. */
  readonly tlsIdentity: TlsIdentity | undefined;
  peer: Peer | undefined;
  link: ReliableLink<PeerPendingSend> | undefined;
  readonly #host: ConnectionHost;
  readonly #options: ResolvedServerOptions;
  readonly #decoder: FrameDecoder;
  #phase: 'hello' | 'auth' | 'open' | 'closed' = 'hello';
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Deadline for the incomplete frame now buffered (slowloris). */
  #frameTimer: ReturnType<typeof setTimeout> | undefined;
  #buffered = 0;
  #paused = false;
  /** Frames decoded so far: tells the frame deadline that a frame completed. */
  #frames = 0;
  #flushQueued = false;

  constructor(socket: Socket, host: ConnectionHost, options: ResolvedServerOptions) {
    this.socket = socket;
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.tlsIdentity = socket instanceof TLSSocket ? tlsIdentityOf(socket) : undefined;
    this.#host = host;
    this.#options = options;
    // Until WELCOME only a HELLO may arrive: an unauthenticated peer can hold no bigger frame.
    // (A little over the control cap, so an oversized HELLO is told CONTROL_TOO_LARGE.)
    this.#decoder = new FrameDecoder({
      maxFrame: Math.min(options.maxFrame, options.maxControl + PRE_HANDSHAKE_SLACK),
      maxControl: options.maxControl,
    });
    socket.setNoDelay(true);
    socket.on('data', this.#onSocketData);
    socket.on('end', this.#onSocketEnd);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onSocketClose);
    socket.on('drain', this.#onSocketDrain);
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
        nonce: this.nonce,
        auth: [
          ...(options.secret === undefined ? [] : [HMAC_AUTH_METHOD]),
          ...(options.authenticate === undefined ? [] : [CREDENTIALS_AUTH_METHOD]),
        ],
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

  /** Stop reading (the server's inbound budget is spent); the frame deadline keeps running. */
  pauseReading(): void {
    if (this.#paused || this.#phase === 'closed') return;
    this.#paused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.#paused || this.#phase === 'closed') return;
    this.#paused = false;
    this.socket.resume();
  }

  /** Memory held for an incomplete frame (decoder buffer and unread socket data). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * The view of this connection a file-transfer engine needs: writes go through the link's
   * batch (in order with messages); bulk data waits while the socket holds `TRANSFER_LOW_WATER`.
   */
  transferLink(maxFrame: number): TransferLink {
    const link = this.link as ReliableLink<PeerPendingSend>;
    return {
      write: (frame) => link.write(frame),
      writable: () => this.backlogBytes < TRANSFER_LOW_WATER,
      maxFrame,
    };
  }

  /** Whether the handshake is done (a session is attached). */
  get established(): boolean {
    return this.#phase === 'open';
  }

  #finish(error: TetherError, silentMs: number | undefined): void {
    this.#phase = 'closed';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#frameTimer);
    this.#frameTimer = undefined;
    this.#trackBuffered(0);
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
    const framesBefore = this.#frames;
    const error = this.#decoder.push(chunk, this.#onFrame);
    if (this.#phase === 'closed') return;
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    const held = this.#decoder.retainedBytes + this.socket.readableLength;
    this.#trackBuffered(held, this.#frames > framesBefore);
    this.link?.endOfBurst();
  };

  // Keeps the server's count of held inbound bytes and the frame deadline in step. The deadline
  // is per frame: it starts when a frame's first byte is held and restarts whenever a frame
  // completes, so steady traffic whose reads end mid-frame is never cut.
  #trackBuffered(bytes: number, frameCompleted = false): void {
    const delta = bytes - this.#buffered;
    this.#buffered = bytes;
    if (delta !== 0) this.#host.inboundBuffered(this, delta);
    if (bytes === 0 || frameCompleted) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
    if (bytes > 0 && this.#frameTimer === undefined && this.#phase !== 'closed') {
      const timeoutMs = this.#options.frameTimeoutMs;
      this.#frameTimer = setTimeout(
        () =>
          this.fail(
            new TetherError(ErrorCode.FRAME_TIMEOUT, `frame incomplete after ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    }
  }

  #onFrame = (frame: Frame): void => {
    this.#frames++;
    if (this.#phase === 'closed') return;
    if (this.#phase === 'auth') {
      this.fail(new ProtocolError(ErrorCode.UNEXPECTED_FRAME, 'frame before WELCOME'));
      return;
    }
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
    const link = this.link as ReliableLink<PeerPendingSend>;
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
    this.#phase = 'auth';
    this.#host.hello(this, body).then(
      (outcome) => this.#onHelloOutcome(outcome),
      (error: unknown) =>
        this.fail(
          new TetherError(ErrorCode.AUTH_FAILED, 'authentication failed', { cause: error }),
        ),
    );
  }

  #onHelloOutcome(outcome: HelloOutcome): void {
    if (this.#phase === 'closed') return;
    if (!outcome.ok) {
      this.fail(outcome.error);
      return;
    }
    const { peer, welcome, resend } = outcome;
    const now = this.#options.now();
    clearTimeout(this.#timer);
    this.peer = peer;
    this.link = new ReliableLink<PeerPendingSend>(
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
    this.#decoder.maxFrame = this.#options.maxFrame;
    this.#write(encodeWelcome(welcome));
    this.link.start(resend, now);
    this.#armHeartbeat(now + this.#options.pingIntervalMs);
    this.#host.opened(this, peer);
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
    const bytes = link.batch.drainTo(this.socket);
    if (this.peer !== undefined) this.peer.bytesOut += bytes;
  };

  #onSocketDrain = (): void => {
    if (this.peer !== undefined && this.#phase === 'open') this.#host.drained(this.peer);
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

function tlsIdentityOf(socket: TLSSocket): TlsIdentity {
  const certificate = socket.getPeerCertificate();
  const present = certificate !== null && Object.keys(certificate).length > 0;
  const cn = present ? certificate.subject?.CN : undefined;
  return {
    authorized: socket.authorized,
    subject: Array.isArray(cn) ? cn[0] : cn,
    fingerprint256: present ? certificate.fingerprint256 : undefined,
  };
}
