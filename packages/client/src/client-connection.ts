import type { Socket } from 'node:net';
import { TRANSFER_LOW_WATER, type TransferLink } from '@tether/files';
import {
  type ChallengeBody,
  type DataFrame,
  ErrorCode,
  encodeHello,
  type Frame,
  FrameDecoder,
  FrameType,
  type HelloBody,
  isErrorCode,
  type LinkOptions,
  PREFACE,
  ProtocolError,
  type ReliableInbound,
  ReliableLink,
  type ReliableOutbound,
  type RttEstimator,
  type RttStats,
  TetherError,
  type WelcomeBody,
} from '@tether/protocol';
import { isTlsError } from './open-socket.js';
import type { PendingSend } from './outbox.js';

/** The session state a connection runs over; it outlives the connection. */
export interface SessionStreams {
  outbound: ReliableOutbound<PendingSend>;
  inbound: ReliableInbound;
  rtt: RttEstimator;
}

/** What the connection asks of, and reports to, the client. */
export interface ConnectionHooks {
  /** Builds HELLO from the server's CHALLENGE (credentials may be fetched fresh). */
  hello(challenge: ChallengeBody): Promise<HelloBody>;
  /** WELCOME arrived: returns the streams to run over and the messages to send again. */
  welcome(body: WelcomeBody): { streams: SessionStreams; resend: PendingSend[] };
  data(frame: DataFrame): void;
  acked(entries: PendingSend[]): void;
  rtt(stats: RttStats): void;
  /** GOAWAY: the server asks to come back after `retryAfterMs`. */
  goaway(retryAfterMs: number, reason: string): void;
  /** Frames the reliable link does not handle (file transfer); false if it has no use for it. */
  control(frame: Frame): boolean;
  /** The socket drained: bulk senders (file chunks) may continue. */
  drain(): void;
  /**
   * The link is up. Called synchronously, before any frame that followed WELCOME in the same
   * read is handled, so whatever consumes those frames (file transfers) is ready for them.
   */
  opened(connection: ClientConnection): void;
}

/** Why a connection ended. */
export interface CloseInfo {
  error: TetherError;
  /** For HEARTBEAT_TIMEOUT: how long the link had been silent when found dead. */
  silentMs?: number;
}

/**
 * One TCP/TLS connection of the client: preface, handshake, then the reliable link with its
 * heartbeat timer and batched writes. It ends once (`closed` resolves) and is never reused.
 */
export class ClientConnection {
  readonly closed: Promise<CloseInfo>;
  /** Resolves with WELCOME once the session is established; rejects if the handshake fails. */
  readonly established: Promise<WelcomeBody>;
  link: ReliableLink<PendingSend> | undefined;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #hooks: ConnectionHooks;
  readonly #linkOptions: LinkOptions;
  readonly #now: () => number;
  #phase: 'challenge' | 'welcome' | 'open' | 'closed' = 'challenge';
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #flushQueued = false;
  #resolveClosed!: (info: CloseInfo) => void;
  #resolveEstablished!: (body: WelcomeBody) => void;
  #rejectEstablished!: (error: Error) => void;

  constructor(
    socket: Socket,
    maxFrame: number,
    linkOptions: LinkOptions,
    hooks: ConnectionHooks,
    now: () => number,
  ) {
    this.#socket = socket;
    this.#hooks = hooks;
    this.#linkOptions = linkOptions;
    this.#now = now;
    this.#decoder = new FrameDecoder({ maxFrame });
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.established = new Promise((resolve, reject) => {
      this.#resolveEstablished = resolve;
      this.#rejectEstablished = reject;
    });
    // A handshake failure is also reported through `closed`; avoid an unhandled rejection.
    this.established.catch(() => {});
    socket.setNoDelay(true);
    socket.on('data', this.#onSocketData);
    socket.on('end', this.#onSocketEnd);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onSocketClose);
    socket.on('drain', () => this.#hooks.drain());
    socket.write(PREFACE);
  }

  /** Ends the connection with `error` (idempotent). Pending writes are discarded. */
  destroy(error: TetherError, silentMs?: number): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    this.#socket.destroy();
    this.#rejectEstablished(error);
    this.#resolveClosed(silentMs === undefined ? { error } : { error, silentMs });
  }

  /** Ends the connection after writing what is queued (graceful close). */
  end(error: TetherError): void {
    if (this.#phase === 'closed') return;
    this.#flush();
    this.#socket.end();
    this.destroy(error);
  }

  /**
   * The view of this connection a file-transfer engine needs: writes go through the link's
   * batch (in order with messages); bulk data waits while the socket holds `TRANSFER_LOW_WATER`.
   */
  transferLink(maxFrame: number): TransferLink {
    const link = this.link as ReliableLink<PendingSend>;
    const socket = this.#socket;
    return {
      write: (frame) => link.write(frame),
      writable: () => socket.writableLength + link.batch.bytes < TRANSFER_LOW_WATER,
      maxFrame,
    };
  }

  /** Writes queued messages if the link is open. */
  pump(): void {
    if (this.#phase === 'open') this.link?.pump(this.#now());
  }

  #onSocketData = (chunk: Buffer): void => {
    const now = this.#now();
    this.link?.heartbeat.inbound(now);
    const error = this.#decoder.push(chunk, this.#onFrame);
    if (this.#phase === 'closed') return;
    if (error !== undefined) {
      this.destroy(error);
      return;
    }
    this.link?.endOfBurst();
  };

  #onFrame = (frame: Frame): void => {
    if (this.#phase === 'closed') return;
    if (frame.type === FrameType.ERROR) {
      const { code, message, retryAfterMs } = frame.body;
      // An ERROR may say when to come back (overload, too many connections): a floor for the wait.
      if (retryAfterMs !== undefined) this.#hooks.goaway(retryAfterMs, message);
      this.destroy(
        new TetherError(
          isErrorCode(code) ? code : ErrorCode.REMOTE_ERROR,
          `server error: ${message}`,
        ),
      );
      return;
    }
    if (this.#phase === 'challenge') {
      if (frame.type !== FrameType.CHALLENGE) {
        this.#unexpected(frame);
        return;
      }
      this.#phase = 'welcome';
      this.#hooks.hello(frame.body).then(
        (hello) => {
          if (this.#phase !== 'closed') this.#socket.write(encodeHello(hello));
        },
        (error: unknown) =>
          this.destroy(
            error instanceof TetherError
              ? error
              : new TetherError(ErrorCode.AUTH_FAILED, 'credentials unavailable', { cause: error }),
          ),
      );
    } else if (this.#phase === 'welcome') {
      if (frame.type === FrameType.WELCOME) this.#open(frame.body);
      else this.#unexpected(frame);
    } else {
      const handled = (this.link as ReliableLink<PendingSend>).handle(frame, this.#now());
      if (handled instanceof ProtocolError) this.destroy(handled);
      else if (handled) return;
      else if (frame.type === FrameType.GOAWAY)
        this.#hooks.goaway(frame.body.retryAfterMs, frame.body.reason);
      else if (!this.#hooks.control(frame)) this.#unexpected(frame);
    }
  };

  #open(welcome: WelcomeBody): void {
    let session: ReturnType<ConnectionHooks['welcome']>;
    try {
      session = this.#hooks.welcome(welcome);
    } catch (error) {
      this.destroy(
        error instanceof TetherError
          ? error
          : new ProtocolError(
              ErrorCode.UNEXPECTED_FRAME,
              `bad WELCOME: ${(error as Error).message}`,
            ),
      );
      return;
    }
    const { streams, resend } = session;
    const now = this.#now();
    const heartbeat = {
      pingIntervalMs: Math.min(this.#linkOptions.heartbeat.pingIntervalMs, welcome.pingIntervalMs),
      deadAfterMs: this.#linkOptions.heartbeat.deadAfterMs,
    };
    this.link = new ReliableLink<PendingSend>(
      streams.outbound,
      streams.inbound,
      streams.rtt,
      { ...this.#linkOptions, heartbeat },
      {
        data: (frame) => this.#hooks.data(frame),
        acked: (entries) => this.#hooks.acked(entries),
        rtt: (stats) => this.#hooks.rtt(stats),
        flush: this.#scheduleFlush,
      },
      now,
    );
    this.#phase = 'open';
    this.link.start(resend, now);
    this.#hooks.opened(this);
    this.#armHeartbeat(now + Math.min(heartbeat.pingIntervalMs, heartbeat.deadAfterMs));
    this.#resolveEstablished(welcome);
  }

  #unexpected(frame: Frame): void {
    this.destroy(
      new ProtocolError(
        ErrorCode.UNEXPECTED_FRAME,
        `unexpected frame 0x${frame.type.toString(16)} during ${this.#phase}`,
      ),
    );
  }

  #armHeartbeat(dueAt: number): void {
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = setTimeout(
      () => this.#onHeartbeat(dueAt),
      Math.max(0, dueAt - this.#now()),
    );
  }

  #onHeartbeat(dueAt: number): void {
    this.#heartbeatTimer = undefined;
    const link = this.link;
    if (link === undefined || this.#phase !== 'open') return;
    const decision = link.check(this.#now(), dueAt);
    if (decision.dead) {
      this.destroy(
        new TetherError(
          ErrorCode.HEARTBEAT_TIMEOUT,
          `no sign of life for ${Math.round(decision.silentMs)} ms`,
        ),
        decision.silentMs,
      );
      return;
    }
    this.#armHeartbeat(decision.wakeAt);
  }

  // Written after this turn's I/O callbacks, not in a microtask: sends made while handling
  // every read of the turn (ACK continuations, replies) share one write.
  #scheduleFlush = (): void => {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(this.#flush);
  };

  #flush = (): void => {
    this.#flushQueued = false;
    const link = this.link;
    if (link === undefined || this.#phase === 'closed') return;
    link.batch.drainTo(this.#socket);
  };

  #onSocketEnd = (): void => {
    const error = this.#decoder.end();
    this.destroy(
      error ?? new TetherError(ErrorCode.CONNECTION_LOST, 'the server closed the connection'),
    );
  };

  #onSocketError = (error: Error): void => {
    // Under TLS 1.3 a refused client certificate arrives as an alert after the handshake.
    if (isTlsError(error)) {
      this.destroy(
        new TetherError(ErrorCode.TLS_FAILED, `TLS refused: ${error.message}`, { cause: error }),
      );
      return;
    }
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
