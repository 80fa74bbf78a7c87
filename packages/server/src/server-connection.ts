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
  type LinkEvents,
  PREFACE,
  ProtocolError,
  ReliableLink,
  type RttStats,
  TetherError,
  type WelcomeBody,
} from '@tether/protocol';
import type { Deadlines, Scheduled } from './deadlines.js';
import type { ResolvedServerOptions, TlsIdentity } from './options.js';
import type { Peer, PeerPendingSend } from './peer.js';

// A live client pings first, so the heartbeat alone would leave the server without RTT samples.
// The server sends one PING of its own per this many ping intervals: `peer.stats().rtt` stays
// current for a sixth of the client's ping traffic.
const RTT_PING_EVERY_INTERVALS = 6;

// Bytes above the control cap that a frame may declare before the handshake is done.
const PRE_HANDSHAKE_SLACK = 64;

// Bytes waiting to be written to a client beyond its messages in flight (replies: PONG, ACK,
// FILE_STATUS, FILE_FAILED ...; file chunks stay under TRANSFER_LOW_WATER plus one chunk). A
// client that sends requests for replies and does not read them is not read either past this:
// what it makes us hold stays bounded, and TCP pushes back on it.
const REPLY_BACKLOG_LIMIT = 1024 * 1024;

// Why a connection's socket is paused (a bit each): reading resumes once no reason is left.
const PauseReason = {
  /** The server's budget for incomplete inbound frames is spent. */
  INBOUND_BUDGET: 1,
  /** The client does not read what it is sent. */
  OUTBOUND_BACKLOG: 2,
} as const;
type PauseReason = (typeof PauseReason)[keyof typeof PauseReason];

/** Outcome of a HELLO, decided by the server. */
export type HelloOutcome =
  | { ok: true; peer: Peer; welcome: WelcomeBody; resend: PeerPendingSend[] }
  | { ok: false; error: TetherError; retryAfterMs?: number };

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
  /** Bytes were handed to the socket: enforce the peer's outbound cap. */
  wrote(peer: Peer): void;
  /** The peer stopped reading what it is sent until its deadline: end its session. */
  slowConsumer(peer: Peer, error: TetherError): void;
}

// The socket's listeners are shared by every connection (they find theirs on the socket): an idle
// connection should cost as little memory as possible, and each closure would cost some.
const kConnection = Symbol('tether.connection');
type OwnedSocket = Socket & { [kConnection]: ServerConnection };

function onSocketData(this: Socket, chunk: Buffer): void {
  (this as OwnedSocket)[kConnection].received(chunk);
}

function onSocketEnd(this: Socket): void {
  (this as OwnedSocket)[kConnection].socketEnded();
}

function onSocketError(this: Socket, error: Error): void {
  (this as OwnedSocket)[kConnection].destroy(
    new TetherError(ErrorCode.CONNECTION_LOST, `connection error: ${error.message}`, {
      cause: error,
    }),
  );
}

function onSocketClose(this: Socket): void {
  (this as OwnedSocket)[kConnection].destroy(
    new TetherError(ErrorCode.CONNECTION_LOST, 'connection closed'),
  );
}

function onSocketDrain(this: Socket): void {
  (this as OwnedSocket)[kConnection].socketDrained();
}

/**
 * One client socket on the server: sends the preface and CHALLENGE, waits (with a deadline) for
 * a valid HELLO, then runs the reliable link for the peer's session: heartbeat-based eviction,
 * coalesced ACKs, batched writes. Ends once; a bad client only ever closes its own socket.
 * It is its link's event sink (`data`, `acked`, `rtt`, `flush`).
 */
export class ServerConnection implements LinkEvents<PeerPendingSend>, Scheduled {
  readonly socket: Socket;
  /** @internal Bookkeeping of the shared {@link Deadlines}. */
  deadlineSlot = -1;
  /** @internal When the HELLO deadline or the next heartbeat check is due. */
  deadlineAt = 0;
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
  readonly #deadlines: Deadlines<ServerConnection>;
  #phase: 'hello' | 'auth' | 'open' | 'closed' = 'hello';
  /** Deadline for the incomplete frame now buffered (slowloris). */
  #frameTimer: ReturnType<typeof setTimeout> | undefined;
  #buffered = 0;
  /** PauseReason bits: the socket is paused while any is set. */
  #pausedFor = 0;
  /** Frames decoded so far: tells the frame deadline that a frame completed. */
  #frames = 0;
  #flushQueued = false;
  /** When the server sends its next PING for an RTT sample. */
  #rttPingAt = 0;

  constructor(
    socket: Socket,
    host: ConnectionHost,
    options: ResolvedServerOptions,
    deadlines: Deadlines<ServerConnection>,
  ) {
    this.socket = socket;
    this.#deadlines = deadlines;
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
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
    deadlines.schedule(this, options.now() + options.helloTimeoutMs);
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

  /** Sends ERROR with the code (and when to come back, if given) and closes: the client learns why. */
  fail(error: TetherError, retryAfterMs?: number): void {
    if (this.#phase === 'closed') return;
    this.#drainBatch();
    const { code, message } = error;
    this.socket.end(
      encodeError(retryAfterMs === undefined ? { code, message } : { code, message, retryAfterMs }),
    );
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
    this.#drainBatch();
    this.socket.end();
    this.#finish(error, undefined);
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Stop reading (the server's inbound budget is spent); the frame deadline keeps running. */
  pauseReading(): void {
    this.#pause(PauseReason.INBOUND_BUDGET);
  }

  resumeReading(): void {
    this.#resume(PauseReason.INBOUND_BUDGET);
  }

  #pause(reason: PauseReason): void {
    if (this.#phase === 'closed' || this.#pausedFor & reason) return;
    if (this.#pausedFor === 0) this.socket.pause();
    this.#pausedFor |= reason;
  }

  #resume(reason: PauseReason): void {
    if (this.#phase === 'closed' || !(this.#pausedFor & reason)) return;
    this.#pausedFor &= ~reason;
    if (this.#pausedFor === 0) this.socket.resume();
  }

  /**
   * Bytes queued toward the client beyond its messages in flight: past REPLY_BACKLOG_LIMIT the
   * client does not read its replies, so we stop reading its requests until the socket drains.
   */
  #checkBacklog(): void {
    const peer = this.peer;
    if (peer === undefined || this.#phase !== 'open') return;
    if (this.backlogBytes > peer.outbound.inFlightBytes + REPLY_BACKLOG_LIMIT) {
      this.#pause(PauseReason.OUTBOUND_BACKLOG);
    }
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
    this.#deadlines.cancel(this);
    // A socket closed with end() lingers up to a second: its half-received frame need not.
    this.#decoder.discard();
    clearTimeout(this.#frameTimer);
    this.#frameTimer = undefined;
    this.#trackBuffered(0);
    this.#host.closed(this, error, silentMs);
  }

  /** @internal The socket ended (FIN): a frame cut short is a protocol error. */
  socketEnded(): void {
    const error = this.#decoder.end();
    this.destroy(
      error ?? new TetherError(ErrorCode.CONNECTION_LOST, 'the client closed the connection'),
    );
  }

  /** @internal The socket drained: bulk senders (file chunks) may continue. */
  socketDrained(): void {
    this.#resume(PauseReason.OUTBOUND_BACKLOG);
    if (this.peer !== undefined && this.#phase === 'open') this.#host.drained(this.peer);
  }

  /** @internal Bytes read from the socket. */
  received(chunk: Buffer): void {
    if (this.isClosed) return; // the peer may still send after we ended our side
    const now = this.#options.now();
    const peer = this.peer;
    if (peer !== undefined) {
      peer.bytesIn += chunk.length;
      peer.lastSeen = Date.now();
    }
    this.link?.heartbeat.inbound(now);
    const framesBefore = this.#frames;
    // Every frame of one read counts as received at the read's time.
    const error = this.#decoder.push(chunk, (frame) => this.#onFrame(frame, now));
    if (this.#phase === 'closed') return;
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    const held = this.#decoder.retainedBytes + this.socket.readableLength;
    this.#trackBuffered(held, this.#frames > framesBefore);
    this.link?.endOfBurst();
    this.#checkBacklog();
  }

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

  #onFrame(frame: Frame, now: number): void {
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
    const handled = link.handle(frame, now);
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
  }

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
      this.fail(outcome.error, outcome.retryAfterMs);
      return;
    }
    const { peer, welcome, resend } = outcome;
    const now = this.#options.now();
    this.peer = peer;
    this.link = new ReliableLink<PeerPendingSend>(
      peer.outbound,
      peer.inbound,
      peer.rtt,
      {
        heartbeat: {
          pingIntervalMs: serverPingAfterMs(this.#options),
          deadAfterMs: this.#options.evictAfterMs,
        },
        maxInFlightBytes: this.#options.maxInFlightBytes,
      },
      this,
      now,
    );
    this.#phase = 'open';
    this.#decoder.maxFrame = this.#options.maxFrame;
    this.#write(encodeWelcome(welcome));
    this.link.start(resend, now);
    // The HELLO deadline gives way to the heartbeat. The first RTT ping is due when a silent
    // client would be pinged anyway.
    this.#rttPingAt = now + serverPingAfterMs(this.#options);
    this.#deadlines.schedule(this, now + this.#options.pingIntervalMs);
    this.#host.opened(this, peer);
  }

  /** @internal The deadline this connection scheduled is due: HELLO deadline or heartbeat. */
  deadline(dueAt: number): void {
    if (this.#phase === 'hello' || this.#phase === 'auth') {
      this.fail(
        new TetherError(
          ErrorCode.HANDSHAKE_TIMEOUT,
          `no HELLO within ${this.#options.helloTimeoutMs} ms`,
        ),
      );
      return;
    }
    const link = this.link;
    if (link === undefined || this.#phase !== 'open') return;
    const now = this.#options.now();
    const decision = link.check(now, dueAt);
    if (
      decision.dead &&
      this.#pausedFor & PauseReason.OUTBOUND_BACKLOG &&
      this.peer !== undefined
    ) {
      // Silent because we stopped reading it: it has not read what it was sent all this time.
      this.#host.slowConsumer(
        this.peer,
        new TetherError(
          ErrorCode.SLOW_CONSUMER,
          `the client read none of its ${this.backlogBytes} waiting bytes for ${Math.round(decision.silentMs)} ms`,
        ),
      );
      return;
    }
    if (decision.dead) {
      this.destroy(
        new TetherError(ErrorCode.EVICTED, `silent for ${Math.round(decision.silentMs)} ms`),
        decision.silentMs,
      );
      return;
    }
    // Any PING sent now (the heartbeat's, or one for RTT) restarts the RTT period.
    const rttDue = now >= this.#rttPingAt;
    if (rttDue && !decision.ping) link.ping(now);
    if (rttDue || decision.ping) {
      this.#rttPingAt = now + RTT_PING_EVERY_INTERVALS * this.#options.pingIntervalMs;
    }
    this.#deadlines.schedule(this, Math.min(decision.wakeAt, this.#rttPingAt));
  }

  #write(frame: Buffer): void {
    if (this.link !== undefined) this.link.write(frame);
    else this.socket.write(frame);
  }

  /** @internal Link event: a DATA frame delivered for the first time, in order. */
  data(frame: DataFrame): void {
    this.#host.data(this.peer as Peer, frame);
  }

  /** @internal Link event: the client acknowledged these messages. */
  acked(entries: PeerPendingSend[]): void {
    this.#host.acked(this.peer as Peer, entries);
  }

  /** @internal Link event: a PONG gave a new RTT sample. */
  rtt(stats: RttStats): void {
    this.#host.rtt(this.peer as Peer, stats);
  }

  /**
   * @internal Link event: frames wait in the batch. They are written after this turn's I/O
   * callbacks (setImmediate, not a microtask): every read of the turn adds its ACK and replies
   * to the same write.
   */
  flush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#phase === 'closed') return;
    this.#drainBatch();
    const peer = this.peer;
    if (peer === undefined) return;
    this.#host.wrote(peer);
    this.#checkBacklog();
  }

  // Hands the batch to the socket (also on the way out, before ERROR or FIN).
  #drainBatch(): void {
    const link = this.link;
    if (link === undefined || this.socket.destroyed) return;
    const bytes = link.batch.drainTo(this.socket);
    if (this.peer !== undefined) this.peer.bytesOut += bytes;
  }
}

/**
 * Silence after which the server PINGs: later than the client's own ping (which uses at most
 * the server's `pingIntervalMs`), so on a live connection only the client pings. Never past the
 * middle of the eviction deadline, so a probe has time to be answered.
 */
export function serverPingAfterMs(options: {
  pingIntervalMs: number;
  evictAfterMs: number;
}): number {
  return Math.min(
    1.5 * options.pingIntervalMs,
    (options.pingIntervalMs + options.evictAfterMs) / 2,
  );
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
