import type { Connection, ConnectionOwner } from '@tether/core';
import {
  type ChallengeBody,
  ErrorCode,
  encodeHello,
  type Frame,
  FrameType,
  type HelloBody,
  isErrorCode,
  PREFACE,
  ProtocolError,
  TetherError,
  type WelcomeBody,
} from '@tether/protocol';
import { isTlsError } from './open-socket.js';
import type { PendingSend } from './outbox.js';

/** Why a connection ended. */
export interface CloseInfo {
  error: TetherError;
  /** For HEARTBEAT_TIMEOUT: how long the link had been silent when found dead. */
  silentMs?: number;
}

/** What the handshake asks of the client. */
export interface HandshakeHost {
  /** Builds HELLO from the server's CHALLENGE (credentials may be fetched fresh). */
  hello(challenge: ChallengeBody): Promise<HelloBody>;
  /** WELCOME arrived: open the session on `connection` (or throw to refuse it). */
  welcome(connection: Connection<PendingSend>, body: WelcomeBody): void;
  /** The server asks to come back no earlier than `retryAfterMs` (GOAWAY, or an ERROR). */
  retryAfter(retryAfterMs: number): void;
}

const Step = { CHALLENGE: 'challenge', WELCOME: 'welcome', OPEN: 'open' } as const;
type Step = (typeof Step)[keyof typeof Step];

/**
 * One connection attempt of the client (PROTOCOL.md section 8): the preface, then HELLO once
 * CHALLENGE came, then WELCOME opens the session; afterwards it hears what the core does not
 * handle (GOAWAY, ERROR). `established` resolves with WELCOME; `ended` resolves once, when the
 * connection ends, whenever that is.
 */
export class ClientHandshake implements ConnectionOwner<PendingSend> {
  readonly established: Promise<WelcomeBody>;
  /** Resolves once, when the connection ends. */
  readonly ended: Promise<CloseInfo>;
  readonly #host: HandshakeHost;
  #step: Step = Step.CHALLENGE;
  #resolveEstablished!: (body: WelcomeBody) => void;
  #rejectEstablished!: (error: Error) => void;
  #resolveClosed!: (info: CloseInfo) => void;

  constructor(host: HandshakeHost) {
    this.#host = host;
    this.established = new Promise((resolve, reject) => {
      this.#resolveEstablished = resolve;
      this.#rejectEstablished = reject;
    });
    // A handshake failure is also reported through `ended`; avoid an unhandled rejection.
    this.established.catch(() => {});
    this.ended = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Sends our preface at once (the server sends its own and CHALLENGE). */
  start(connection: Connection<PendingSend>): void {
    connection.transport.write(PREFACE);
  }

  handshakeFrame(connection: Connection<PendingSend>, frame: Frame): void {
    if (frame.type === FrameType.ERROR) {
      this.#serverError(connection, frame.body);
      return;
    }
    if (this.#step === Step.CHALLENGE && frame.type === FrameType.CHALLENGE) {
      this.#step = Step.WELCOME;
      this.#host.hello(frame.body).then(
        (hello) => connection.write(encodeHello(hello)),
        (error: unknown) =>
          connection.destroy(
            error instanceof TetherError
              ? error
              : new TetherError(ErrorCode.AUTH_FAILED, 'credentials unavailable', { cause: error }),
          ),
      );
      return;
    }
    if (this.#step === Step.WELCOME && frame.type === FrameType.WELCOME) {
      this.#open(connection, frame.body);
      return;
    }
    connection.destroy(
      new ProtocolError(
        ErrorCode.UNEXPECTED_FRAME,
        `unexpected frame 0x${frame.type.toString(16)} waiting for ${this.#step}`,
      ),
    );
  }

  handshakeExpired(): void {}

  control(connection: Connection<PendingSend>, frame: Frame): boolean {
    if (frame.type === FrameType.GOAWAY) {
      this.#host.retryAfter(frame.body.retryAfterMs);
      return true;
    }
    if (frame.type === FrameType.ERROR) {
      this.#serverError(connection, frame.body);
      return true;
    }
    return false;
  }

  closed(_connection: Connection<PendingSend>, error: TetherError, silentMs?: number): void {
    this.#rejectEstablished(error);
    this.#resolveClosed(silentMs === undefined ? { error } : { error, silentMs });
  }

  transportError(_connection: Connection<PendingSend>, error: Error): TetherError {
    // Under TLS 1.3 a refused client certificate arrives as an alert after the handshake.
    if (isTlsError(error)) {
      return new TetherError(ErrorCode.TLS_FAILED, `TLS refused: ${error.message}`, {
        cause: error,
      });
    }
    return new TetherError(ErrorCode.CONNECTION_LOST, `connection error: ${error.message}`, {
      cause: error,
    });
  }

  #open(connection: Connection<PendingSend>, welcome: WelcomeBody): void {
    try {
      this.#host.welcome(connection, welcome);
    } catch (error) {
      connection.destroy(
        error instanceof TetherError
          ? error
          : new ProtocolError(
              ErrorCode.UNEXPECTED_FRAME,
              `bad WELCOME: ${(error as Error).message}`,
            ),
      );
      return;
    }
    this.#step = Step.OPEN;
    this.#resolveEstablished(welcome);
  }

  // An ERROR from the server: it may say when to come back (overload, too many connections), a
  // floor for the wait. The reference client closes without answering.
  #serverError(
    connection: Connection<PendingSend>,
    body: { code: string; message: string; retryAfterMs?: number },
  ): void {
    if (body.retryAfterMs !== undefined) this.#host.retryAfter(body.retryAfterMs);
    connection.destroy(
      new TetherError(
        isErrorCode(body.code) ? body.code : ErrorCode.REMOTE_ERROR,
        `server error: ${body.message}`,
      ),
    );
  }
}
