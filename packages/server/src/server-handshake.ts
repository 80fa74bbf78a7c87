import { randomBytes } from 'node:crypto';
import type { Connection, OpenOptions, Scheduler } from '@tether/core';
import {
  CREDENTIALS_AUTH_METHOD,
  ErrorCode,
  encodeChallenge,
  encodeWelcome,
  type Frame,
  FrameType,
  type HelloBody,
  HMAC_AUTH_METHOD,
  PREFACE,
  PROTOCOL_VERSION,
  ProtocolError,
  TetherError,
} from '@tether/protocol';
import { authenticate, checkBeforeAuth, checkShape } from './authenticate.js';
import type { ResolvedServerOptions, TlsIdentity } from './options.js';
import type { PeerPendingSend, PeerSession } from './peer-session.js';
import type { SessionStore } from './session-store.js';

// A live client pings first, so the heartbeat alone would leave the server without RTT samples.
// The server sends one PING of its own per this many ping intervals: `peer.stats().rtt` stays
// current for a sixth of the client's ping traffic.
const RTT_PING_EVERY_INTERVALS = 6;

// Clients refused at a session cap are asked to come back after this long.
const REFUSAL_RETRY_AFTER_MS = 1000;
// Clients refused while the session store is away are asked to come back after this long.
const STORE_RETRY_AFTER_MS = 500;

type ServerConnection = Connection<PeerPendingSend>;

/** What the handshake needs from the server. */
export interface HandshakeHost {
  readonly options: ResolvedServerOptions;
  readonly scheduler: Scheduler;
  readonly store: SessionStore;
  /** Whether the server is draining (new sessions are refused). */
  draining(): boolean;
  /** Makes a new session for a client that authenticated. */
  createSession(init: {
    clientId: string;
    identity: string;
    remoteAddress: string;
    tlsIdentity: TlsIdentity | undefined;
    clientAcked: number;
  }): PeerSession;
  /** A session opened (or resumed) on a connection. */
  opened(session: PeerSession, resumed: boolean): void;
}

/** A connection's state until its session opens. */
interface Pending {
  /** Fresh per connection: what the client's auth proof is computed over. */
  readonly nonce: string;
  readonly tlsIdentity: TlsIdentity | undefined;
  /** A HELLO arrived (authentication may be under way): anything else is unexpected. */
  helloSeen: boolean;
}

/**
 * The server's side of the handshake (PROTOCOL.md section 8): the preface and CHALLENGE, then
 * one HELLO, checked in the specified order, which opens a new session or resumes one; a failure
 * is answered ERROR with its code. Each connection's state lives here only until it opens.
 */
export class ServerHandshake {
  readonly #host: HandshakeHost;
  readonly #pending = new Map<ServerConnection, Pending>();

  constructor(host: HandshakeHost) {
    this.#host = host;
  }

  /** Sends the preface and CHALLENGE to a new connection. */
  start(connection: ServerConnection, tlsIdentity: TlsIdentity | undefined): void {
    const { options } = this.#host;
    const pending: Pending = {
      nonce: randomBytes(32).toString('base64'),
      tlsIdentity,
      helloSeen: false,
    };
    this.#pending.set(connection, pending);
    const transport = connection.transport;
    transport.cork();
    transport.write(PREFACE);
    transport.write(
      encodeChallenge({
        nonce: pending.nonce,
        auth: [
          ...(options.secret === undefined ? [] : [HMAC_AUTH_METHOD]),
          ...(options.authenticate === undefined ? [] : [CREDENTIALS_AUTH_METHOD]),
        ],
        maxFrame: options.maxFrame,
      }),
    );
    transport.uncork();
  }

  /** A frame before WELCOME: only one HELLO is allowed. */
  frame(connection: ServerConnection, frame: Frame): void {
    const pending = this.#pending.get(connection);
    if (pending === undefined) return;
    if (frame.type !== FrameType.HELLO || pending.helloSeen) {
      const what = pending.helloSeen
        ? 'frame before WELCOME'
        : `expected HELLO, got frame 0x${frame.type.toString(16)}`;
      connection.fail(new ProtocolError(ErrorCode.UNEXPECTED_FRAME, what));
      return;
    }
    pending.helloSeen = true;
    this.#hello(connection, pending, frame.body).catch((error: unknown) => {
      // A shared store that is away: the client comes back later, its session intact.
      if (error instanceof TetherError && error.code === ErrorCode.STORE_UNAVAILABLE) {
        connection.fail(error, STORE_RETRY_AFTER_MS);
        return;
      }
      connection.fail(
        new TetherError(ErrorCode.AUTH_FAILED, 'authentication failed', { cause: error }),
      );
    });
  }

  /** The HELLO deadline passed. */
  expired(connection: ServerConnection): void {
    connection.fail(
      new TetherError(
        ErrorCode.HANDSHAKE_TIMEOUT,
        `no HELLO within ${this.#host.options.helloTimeoutMs} ms`,
      ),
    );
  }

  /** The connection ended: forget its handshake state. */
  closed(connection: ServerConnection): void {
    this.#pending.delete(connection);
  }

  async #hello(connection: ServerConnection, pending: Pending, body: HelloBody): Promise<void> {
    const { options, scheduler } = this.#host;
    const receivedAt = scheduler.now();
    const early = checkBeforeAuth(body, this.#host.draining());
    if (early !== undefined) {
      connection.fail(early);
      return;
    }
    const context = {
      nonce: pending.nonce,
      remoteAddress: connection.remoteAddress,
      tlsIdentity: pending.tlsIdentity,
    };
    const identity = await authenticate(options, body, context).catch(() => undefined);
    if (identity === undefined) {
      // Every refusal takes the same time from HELLO, whatever failed: nothing to learn from it.
      const wait = receivedAt + options.authFailureDelayMs - scheduler.now();
      if (wait > 0) await new Promise<void>((resolve) => scheduler.setTimeout(resolve, wait, true));
      connection.fail(new TetherError(ErrorCode.AUTH_FAILED, 'authentication failed'));
      return;
    }
    const malformed = checkShape(body);
    if (malformed !== undefined) {
      connection.fail(malformed);
      return;
    }
    // The server may have started draining while the authentication hook ran.
    if (this.#host.draining()) {
      connection.fail(new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down'));
      return;
    }
    if (connection.closed) return;
    const existing =
      body.resumeToken === undefined
        ? undefined
        : await this.#host.store.find(body.resumeToken, body.clientId, identity);
    if (connection.closed) return;
    if (existing !== undefined) this.#resume(connection, existing, body, pending);
    else await this.#create(connection, body, identity, pending);
  }

  #resume(
    connection: ServerConnection,
    session: PeerSession,
    body: HelloBody,
    pending: Pending,
  ): void {
    const resumed = session.resume(body.delivered);
    if (resumed instanceof TetherError) {
      connection.fail(resumed);
      return;
    }
    session.acked(resumed.released);
    // The HELLO acknowledged what the client delivered: the log records it with the next write.
    session.log.acked(session.outbound.acked);
    this.#host.store.resumed(session);
    // Take-over: the newest connection wins; the old one is closed after the session points at
    // the new one, so its close is not taken for a disconnect.
    const previous = session.connection;
    this.#open(connection, session, body, pending, true, resumed.resend);
    previous?.fail(
      new TetherError(ErrorCode.SESSION_TAKEN_OVER, 'another connection resumed this session'),
    );
  }

  async #create(
    connection: ServerConnection,
    body: HelloBody,
    identity: string,
    pending: Pending,
  ): Promise<void> {
    const { store } = this.#host;
    const full = await store.makeRoom(identity);
    if (full !== undefined) {
      connection.fail(full, REFUSAL_RETRY_AFTER_MS);
      return;
    }
    if (connection.closed) return;
    const session = this.#host.createSession({
      clientId: body.clientId,
      identity,
      remoteAddress: connection.remoteAddress,
      tlsIdentity: pending.tlsIdentity,
      clientAcked: body.acked,
    });
    const refused = await store.add(session);
    if (refused !== undefined) {
      connection.fail(refused, REFUSAL_RETRY_AFTER_MS);
      return;
    }
    if (connection.closed) {
      // Gone while the store recorded it: the session waits for a resume like any other.
      store.disconnected(session);
      return;
    }
    this.#open(connection, session, body, pending, false, []);
  }

  #open(
    connection: ServerConnection,
    session: PeerSession,
    body: HelloBody,
    pending: Pending,
    resumed: boolean,
    resend: PeerPendingSend[],
  ): void {
    const { options } = this.#host;
    this.#pending.delete(connection);
    session.maxFrame = body.maxFrame;
    session.remoteAddress = connection.remoteAddress;
    session.tlsIdentity = pending.tlsIdentity;
    const welcome = encodeWelcome({
      version: PROTOCOL_VERSION,
      sessionId: session.id,
      resumeToken: session.resumeToken,
      resumed,
      delivered: session.inbound.delivered,
      acked: session.outbound.acked,
      maxFrame: options.maxFrame,
      pingIntervalMs: options.pingIntervalMs,
      evictAfterMs: options.evictAfterMs,
      sessionTtlMs: options.sessionTtlMs,
    });
    connection.open(session, openOptions(options, body.maxFrame), resend, welcome);
    queueMicrotask(() => this.#host.opened(session, resumed));
  }
}

// The link settings of the last session opened: nearly every client announces the same frame
// limit, so connections share one object instead of some 110 bytes each.
const lastOpenOptions = new WeakMap<ResolvedServerOptions, OpenOptions>();

/** The link settings of a session the server opens for a client whose frame limit is `peerMaxFrame`. */
function openOptions(options: ResolvedServerOptions, peerMaxFrame: number): OpenOptions {
  const last = lastOpenOptions.get(options);
  if (last?.peerMaxFrame === peerMaxFrame) return last;
  const made = makeOpenOptions(options, peerMaxFrame);
  lastOpenOptions.set(options, made);
  return made;
}

function makeOpenOptions(options: ResolvedServerOptions, peerMaxFrame: number): OpenOptions {
  return {
    heartbeat: { pingIntervalMs: serverPingAfterMs(options), deadAfterMs: options.evictAfterMs },
    maxInFlightBytes: options.maxInFlightBytes,
    maxFrame: options.maxFrame,
    peerMaxFrame,
    deadCode: ErrorCode.EVICTED,
    rttPingIntervalMs: RTT_PING_EVERY_INTERVALS * options.pingIntervalMs,
  };
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
