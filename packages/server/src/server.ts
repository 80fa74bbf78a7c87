import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { isFileFrame, type ReceivedFile, TransferEngine } from '@tether/files';
import {
  ABSOLUTE_MAX_FRAME,
  DataFlag,
  type DataFrame,
  ErrorCode,
  encodeError,
  type Frame,
  type HelloBody,
  HMAC_AUTH_METHOD,
  isFrameLimit,
  MAX_CLIENT_ID_BYTES,
  Message,
  MIN_MAX_FRAME,
  type Payload,
  PREFACE,
  PROTOCOL_VERSION,
  type RttStats,
  TetherError,
  toBuffer,
  verifyAuthProof,
  type WelcomeBody,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import { Deadlines } from './deadlines.js';
import { type ResolvedServerOptions, resolveServerOptions, type ServerOptions } from './options.js';
import { Peer, type PeerHost, type PeerPendingSend } from './peer.js';
import { type ConnectionHost, type HelloOutcome, ServerConnection } from './server-connection.js';

/** Payload of `disconnect` and `evict`. */
export interface DisconnectInfo {
  reason: string;
  code: ErrorCode;
  /** For evictions: how long the peer had been silent. */
  silentMs?: number;
}

/** Events of {@link TetherServer}. */
export interface ServerEvents {
  listening: (address: net.AddressInfo) => void;
  /** A client completed its handshake; `resumed` when it took up an existing session. */
  connection: (peer: Peer, info: { resumed: boolean }) => void;
  /** A peer's connection ended (its session stays resumable until the TTL). */
  disconnect: (peer: Peer, info: DisconnectInfo) => void;
  /** A silent peer was evicted (its session stays resumable until the TTL). */
  evict: (peer: Peer, info: DisconnectInfo) => void;
  /** A session ended for good: TTL passed, closed, or server closed. Everything is freed. */
  expire: (peer: Peer, reason: string) => void;
  /** A file from a client was received, verified by SHA-256 and stored in `uploadDir`. */
  file: (file: ReceivedFile, peer: Peer) => void;
  /** A message from a client, exactly once and in order per session. */
  message: (message: Message, peer: Peer) => void;
  /** A connection failed with a protocol or handshake error (the server goes on). */
  error: (error: TetherError, info: { remoteAddress: string }) => void;
  close: () => void;
}

/** Snapshot returned by `stats()`. */
export interface ServerStats {
  connections: number;
  sessions: number;
  messagesIn: number;
  messagesOut: number;
  evictions: number;
  handshakeFailures: number;
  /** Connections refused at the connection limits. */
  refusedConnections: number;
  /** Bytes held in incomplete frames across all connections. */
  inboundBufferedBytes: number;
}

/** Options of `close()`. */
export interface ServerCloseOptions {
  /** Clients are told (GOAWAY) to come back after this long. Default 1000. */
  retryAfterMs?: number;
  /** How long to wait for outbound messages to be acknowledged before closing. Default 5000. */
  drainTimeoutMs?: number;
}

const TETHER_ALPN = 'tether/1';
// Clients refused at the connection limit are asked to come back after this long.
const REFUSAL_RETRY_AFTER_MS = 1000;

/**
 * A Tether server: many clients, sessions that survive reconnects, eviction of silent peers,
 * exactly-once messaging both ways.
 *
 * ```ts
 * const server = new TetherServer({ port: 7070 });
 * server.on('message', (m, peer) => peer.send(`echo: ${m.text()}`));
 * await server.listen();
 * ```
 */
export class TetherServer extends EventEmitter<ServerEvents> implements ConnectionHost, PeerHost {
  readonly #options: ResolvedServerOptions;
  readonly #listener: net.Server;
  readonly #connections = new Set<ServerConnection>();
  /** HELLO deadlines and heartbeat checks of every connection, on one timer. */
  readonly #deadlines: Deadlines<ServerConnection> = new Deadlines(
    () => this.#options.now(),
    (connection, dueAt) => connection.deadline(dueAt),
  );
  readonly #sessions = new Map<string, Peer>();
  /** Sessions of each identity, oldest first (the per-identity cap). */
  readonly #byIdentity = new Map<string, Set<Peer>>();
  /** Disconnected sessions, longest disconnected first: the first to end when a cap is reached. */
  readonly #idle = new Set<Peer>();
  #closing = false;
  #open = 0;
  #perAddress = new Map<string, number>();
  #refusals = 0;
  #inboundBuffered = 0;
  #pausedReading = new Set<ServerConnection>();
  /** File engines of ended sessions still closing their files. */
  #filesClosing = new Set<Promise<void>>();
  /** Raw sockets refused at the limits (so their TLS wrapper's failure is not miscounted). */
  #refused = new WeakSet<net.Socket>();
  #messagesIn = 0;
  #messagesOut = 0;
  #evictions = 0;
  #handshakeFailures = 0;

  constructor(options: ServerOptions = {}) {
    super();
    this.#options = resolveServerOptions(options);
    const onSocket = (socket: net.Socket): void => this.#accept(socket);
    const { tls: tlsOptions, requireClientCert, tlsHandshakeTimeoutMs } = this.#options;
    if (tlsOptions === undefined) {
      this.#listener = net.createServer(onSocket);
    } else {
      const secure = tls.createServer(
        {
          ALPNProtocols: [TETHER_ALPN],
          minVersion: 'TLSv1.2',
          handshakeTimeout: tlsHandshakeTimeoutMs,
          // The certificate is checked in #accept instead of by the TLS layer, which would hang
          // up without a word: there the client is told TLS_FAILED and does not retry.
          requestCert: requireClientCert,
          rejectUnauthorized: false,
          ...tlsOptions,
        },
        onSocket,
      );
      secure.on('tlsClientError', (error, socket) => {
        // Node reports a handshake timeout but leaves the socket open: close it. (Other failures
        // close by themselves, after the alert that tells the client why.)
        if ((error as { code?: string }).code === 'ERR_TLS_HANDSHAKE_TIMEOUT') socket.destroy();
        // A socket #admit refused (destroyed before TLS) is a refusal, not a TLS failure.
        const raw = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent;
        if (raw !== undefined && this.#refused.has(raw)) return;
        this.#tlsFailure(error, socket);
      });
      this.#listener = secure;
    }
    // 'connection' sees every raw TCP connection, before TLS, first.
    this.#listener.prependListener('connection', (socket: net.Socket) => this.#admit(socket));
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#listener.once('error', onError);
      this.#listener.listen(this.#options.port, this.#options.host, () => {
        this.#listener.off('error', onError);
        const address = this.#listener.address() as net.AddressInfo;
        this.emit('listening', address);
        resolve(address);
      });
    });
  }

  /** The bound address, once listening. */
  get address(): net.AddressInfo | undefined {
    return (this.#listener.address() as net.AddressInfo | null) ?? undefined;
  }

  /** Every live session, connected or waiting for its client to resume. */
  get peers(): Peer[] {
    return [...this.#sessions.values()];
  }

  /** Counters and gauges. */
  stats(): ServerStats {
    return {
      connections: this.#connections.size,
      sessions: this.#sessions.size,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      evictions: this.#evictions,
      handshakeFailures: this.#handshakeFailures,
      refusedConnections: this.#refusals,
      inboundBufferedBytes: this.#inboundBuffered,
    };
  }

  /** Sends `payload` reliably to every live session; resolves when all have received it. */
  broadcast(payload: Payload): Promise<PromiseSettledResult<unknown>[]> {
    const data = toBuffer(payload);
    return Promise.allSettled(this.peers.map((peer) => peer.send(data)));
  }

  /**
   * Graceful shutdown: stops accepting, sends GOAWAY with `retryAfterMs` to every client, waits
   * up to `drainTimeoutMs` for outbound messages to be acknowledged, then closes every socket and
   * frees every session and timer.
   */
  async close(options: ServerCloseOptions = {}): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const retryAfterMs = options.retryAfterMs ?? 1000;
    const listenerClosed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    const shuttingDown = new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down');
    for (const connection of [...this.#connections]) {
      // GOAWAY is for open sessions (PROTOCOL.md section 8); a connection still in its handshake
      // is told with ERROR, and when to come back.
      if (connection.established) connection.goaway('server shutting down', retryAfterMs);
      else connection.fail(shuttingDown, retryAfterMs);
    }
    await this.#drain(options.drainTimeoutMs ?? 5000);
    const error = new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down');
    for (const connection of [...this.#connections]) connection.end(error);
    for (const connection of [...this.#connections]) connection.destroy(error);
    for (const peer of [...this.#sessions.values()]) this.#expire(peer, 'server closed', error);
    await Promise.all([...this.#filesClosing]);
    await listenerClosed;
    this.emit('close');
  }

  // --- PeerHost -------------------------------------------------------------------------------

  /** @internal */
  queued(peer: Peer): void {
    if (this.#overCap(peer)) return;
    peer.connection?.pump();
  }

  /** @internal */
  wrote(peer: Peer): void {
    this.#overCap(peer);
  }

  /** @internal */
  slowConsumer(peer: Peer, error: TetherError): void {
    this.closePeer(peer, error);
  }

  // Every byte queued toward a peer counts against its cap: unacknowledged messages and whatever
  // waits to be written (replies, file chunks). Past it the session ends with SLOW_CONSUMER.
  #overCap(peer: Peer): boolean {
    const backlog = peer.outbound.bytes + (peer.connection?.backlogBytes ?? 0);
    if (backlog <= this.#options.maxPeerBacklogBytes) return false;
    this.closePeer(
      peer,
      new TetherError(
        ErrorCode.SLOW_CONSUMER,
        `outbound backlog of ${backlog} bytes passed the cap`,
      ),
    );
    return true;
  }

  /** @internal */
  closePeer(peer: Peer, error: TetherError): void {
    peer.connection?.fail(error);
    this.#expire(peer, error.message, error);
  }

  // --- ConnectionHost -------------------------------------------------------------------------

  /** @internal */
  async hello(connection: ServerConnection, body: HelloBody): Promise<HelloOutcome> {
    const receivedAt = this.#options.now();
    const refused = this.#checkBeforeAuth(body);
    if (refused !== undefined) return { ok: false, error: refused };
    const identity = await this.#authenticate(connection, body).catch(() => undefined);
    if (identity === undefined) {
      // Every refusal takes the same time from HELLO, whatever failed: nothing to learn from it.
      const wait = receivedAt + this.#options.authFailureDelayMs - this.#options.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref());
      return { ok: false, error: new TetherError(ErrorCode.AUTH_FAILED, 'authentication failed') };
    }
    const malformed = this.#checkShape(body);
    if (malformed !== undefined) return { ok: false, error: malformed };
    // The server may have started draining while the authentication hook ran.
    if (this.#closing) {
      return {
        ok: false,
        error: new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down'),
      };
    }
    if (connection.isClosed) {
      return {
        ok: false,
        error: new TetherError(ErrorCode.CONNECTION_LOST, 'closed during HELLO'),
      };
    }
    return this.#openSession(connection, body, identity);
  }

  /** @internal */
  inboundBuffered(_connection: ServerConnection, delta: number): void {
    this.#inboundBuffered += delta;
    const budget = this.#options.maxInboundBufferedBytes;
    if (this.#inboundBuffered > budget) {
      this.#pauseHolders();
    } else if (this.#pausedReading.size > 0 && this.#inboundBuffered <= budget / 2) {
      for (const connection of this.#pausedReading) connection.resumeReading();
      this.#pausedReading.clear();
    }
  }

  // Over the inbound budget: stop reading from connections holding partial frames (their frame
  // deadlines still run). Connections without a session go first: only if sessions alone hold
  // more than the budget are they paused too, so strangers cannot starve authenticated clients.
  #pauseHolders(): void {
    let sessionBytes = 0;
    for (const connection of this.#connections) {
      if (connection.established) sessionBytes += connection.bufferedBytes;
      else if (connection.bufferedBytes > 0) this.#pause(connection);
    }
    if (sessionBytes <= this.#options.maxInboundBufferedBytes) return;
    for (const connection of this.#connections) {
      if (connection.established && connection.bufferedBytes > 0) this.#pause(connection);
    }
  }

  #pause(connection: ServerConnection): void {
    connection.pauseReading();
    this.#pausedReading.add(connection);
  }

  // Checks made before authentication: nothing here depends on who the client is.
  #checkBeforeAuth(body: HelloBody): TetherError | undefined {
    if (this.#closing)
      return new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down');
    if (!body.versions.includes(PROTOCOL_VERSION)) {
      return new TetherError(
        ErrorCode.UNSUPPORTED_VERSION,
        `server speaks version ${PROTOCOL_VERSION}`,
      );
    }
    return undefined;
  }

  // Checks made after authentication (PROTOCOL.md section 8 gives the order).
  #checkShape(body: HelloBody): TetherError | undefined {
    const idBytes = Buffer.byteLength(body.clientId, 'utf8');
    if (idBytes === 0 || idBytes > MAX_CLIENT_ID_BYTES) {
      return new TetherError(
        ErrorCode.BAD_HELLO,
        `clientId must be 1 to ${MAX_CLIENT_ID_BYTES} bytes of UTF-8`,
      );
    }
    if (!isFrameLimit(body.maxFrame)) {
      return new TetherError(
        ErrorCode.BAD_HELLO,
        `maxFrame must be ${MIN_MAX_FRAME} to ${ABSOLUTE_MAX_FRAME}`,
      );
    }
    return undefined;
  }

  // Resolves with who the client is, or undefined to refuse. The shared secret (if set) and the
  // hook (if set) must both accept.
  async #authenticate(connection: ServerConnection, body: HelloBody): Promise<string | undefined> {
    const { secret, authenticate } = this.#options;
    if (secret !== undefined) {
      const auth = body.auth;
      if (auth?.method !== HMAC_AUTH_METHOD || typeof auth.proof !== 'string') return undefined;
      if (!verifyAuthProof(secret, connection.nonce, body.clientId, auth.proof)) return undefined;
    }
    const tlsIdentity = connection.tlsIdentity;
    let identity =
      tlsIdentity?.authorized && tlsIdentity.fingerprint256 !== undefined
        ? `tls:${tlsIdentity.fingerprint256}`
        : `client:${body.clientId}`;
    if (authenticate !== undefined) {
      const verdict = await authenticate(body, {
        address: connection.remoteAddress,
        tlsIdentity,
        nonce: connection.nonce,
      });
      if (verdict === false) return undefined;
      if (typeof verdict === 'object') identity = verdict.identity;
    }
    return identity;
  }

  #openSession(connection: ServerConnection, body: HelloBody, identity: string): HelloOutcome {
    const existing =
      body.resumeToken === undefined
        ? undefined
        : this.#findSession(body.resumeToken, body.clientId, identity);
    let peer: Peer;
    let resend: PeerPendingSend[];
    if (existing !== undefined) {
      const resumed = existing.outbound.resume(body.delivered);
      if (resumed instanceof TetherError) return { ok: false, error: resumed };
      this.acked(existing, resumed.released);
      clearTimeout(existing.ttlTimer);
      existing.ttlTimer = undefined;
      this.#idle.delete(existing);
      // Take-over: the newest connection wins; the old socket is closed. The session points at
      // the new connection first, so the old one's close is not taken for a disconnect.
      const previous = existing.connection;
      existing.connection = connection;
      previous?.fail(
        new TetherError(ErrorCode.SESSION_TAKEN_OVER, 'another connection resumed this session'),
      );
      peer = existing;
      resend = resumed.resend;
    } else {
      const full = this.#makeRoomForSession(identity);
      if (full !== undefined) {
        return { ok: false, error: full, retryAfterMs: REFUSAL_RETRY_AFTER_MS };
      }
      const id = randomBytes(8).toString('hex');
      peer = new Peer(
        this,
        id,
        `${id}.${randomBytes(32).toString('base64url')}`,
        body.clientId,
        identity,
        connection.remoteAddress,
        body.acked,
      );
      this.#sessions.set(peer.id, peer);
      let own = this.#byIdentity.get(identity);
      if (own === undefined) {
        own = new Set();
        this.#byIdentity.set(identity, own);
      }
      own.add(peer);
      resend = [];
    }
    peer.connection = connection;
    peer.maxFrame = body.maxFrame;
    peer.remoteAddress = connection.remoteAddress;
    const welcome: WelcomeBody = {
      version: PROTOCOL_VERSION,
      sessionId: peer.id,
      resumeToken: peer.resumeToken,
      resumed: existing !== undefined,
      delivered: peer.inbound.delivered,
      acked: peer.outbound.acked,
      maxFrame: this.#options.maxFrame,
      pingIntervalMs: this.#options.pingIntervalMs,
      evictAfterMs: this.#options.evictAfterMs,
      sessionTtlMs: this.#options.sessionTtlMs,
    };
    queueMicrotask(() => this.emit('connection', peer, { resumed: existing !== undefined }));
    return { ok: true, peer, welcome, resend };
  }

  // Under the session caps, ends the session of the identity (then of anyone) disconnected the
  // longest; returns the refusal when every session in the way is connected.
  #makeRoomForSession(identity: string): TetherError | undefined {
    const own = this.#byIdentity.get(identity);
    if (own !== undefined && own.size >= this.#options.maxSessionsPerIdentity) {
      const oldest = [...own].find((peer) => !peer.connected);
      if (oldest === undefined) {
        return tooManySessions(`${own.size} sessions of this identity are connected`);
      }
      this.#expire(
        oldest,
        'session limit of its identity reached',
        tooManySessions('a newer session of the same identity took its place'),
      );
    }
    if (this.#sessions.size >= this.#options.maxSessions) {
      const oldest = this.#idle.values().next().value;
      if (oldest === undefined) return tooManySessions('every session is connected');
      this.#expire(
        oldest,
        'session limit reached',
        tooManySessions('the server ended the longest-disconnected session for a new one'),
      );
    }
    return undefined;
  }

  /** @internal */
  data(peer: Peer, frame: DataFrame): void {
    peer.messagesIn++;
    this.#messagesIn++;
    if (frame.flags & DataFlag.REQUEST) {
      void this.#answer(peer, frame.requestId, frame.payload);
      return;
    }
    const message = new Message(`${peer.clientId}:${frame.seq}`, frame.seq, frame.payload);
    try {
      this.emit('message', message, peer);
    } catch (cause) {
      // A listener's bug must not cost the connection, nor crash the server.
      const error = new TetherError(ErrorCode.HANDLER_FAILED, 'a message listener threw', {
        cause,
      });
      this.emit('error', error, { remoteAddress: peer.remoteAddress });
    }
  }

  /** @internal */
  acked(peer: Peer, entries: PeerPendingSend[]): void {
    peer.messagesOut += entries.length;
    this.#messagesOut += entries.length;
    peer.released(entries);
    if (this.#closing && this.#drainWaiter !== undefined && this.#pendingOutbound() === 0)
      this.#drainWaiter();
  }

  /** @internal */
  rtt(_peer: Peer, _stats: RttStats): void {}

  /** @internal */
  control(peer: Peer, frame: Frame): void {
    if (isFileFrame(frame)) {
      peer.files.handle(frame);
      return;
    }
    peer.connection?.fail(
      new TetherError(
        ErrorCode.UNEXPECTED_FRAME,
        `frame 0x${frame.type.toString(16)} is not supported here`,
      ),
    );
  }

  /** @internal */
  opened(connection: ServerConnection, peer: Peer): void {
    peer.filesIfStarted?.attach(connection.transferLink(peer.maxFrame));
  }

  /** @internal */
  drained(peer: Peer): void {
    peer.filesIfStarted?.pump();
  }

  /** @internal */
  closed(connection: ServerConnection, error: TetherError, silentMs: number | undefined): void {
    this.#connections.delete(connection);
    this.#pausedReading.delete(connection);
    const peer = connection.peer;
    if (peer === undefined) {
      if (
        error.code !== ErrorCode.CONNECTION_LOST &&
        error.code !== ErrorCode.SERVER_SHUTTING_DOWN
      ) {
        this.#handshakeFailures++;
        this.emit('error', error, { remoteAddress: connection.remoteAddress });
      }
      return;
    }
    if (peer.connection !== connection) return; // taken over: the session lives on elsewhere
    peer.connection = undefined;
    peer.filesIfStarted?.detach();
    const info: DisconnectInfo =
      silentMs === undefined
        ? { reason: error.message, code: error.code }
        : { reason: error.message, code: error.code, silentMs };
    if (error.code === ErrorCode.EVICTED) {
      this.#evictions++;
      this.emit('evict', peer, info);
    }
    this.emit('disconnect', peer, info);
    if (!peer.closed && !this.#closing) {
      this.#idle.add(peer);
      peer.ttlTimer = setTimeout(
        () => this.#expire(peer, 'session TTL passed', undefined),
        this.#options.sessionTtlMs,
      );
    }
  }

  #drainWaiter: (() => void) | undefined;

  #pendingOutbound(): number {
    let pending = 0;
    for (const peer of this.#sessions.values()) if (peer.connected) pending += peer.outbound.count;
    return pending;
  }

  #drain(timeoutMs: number): Promise<void> {
    if (this.#pendingOutbound() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#drainWaiter = undefined;
        resolve();
      }
      this.#drainWaiter = done;
    });
  }

  // Tokens are `${sessionId}.${secret}`: the id finds the session, the secret is compared in
  // constant time.
  #findSession(token: string, clientId: string, identity: string): Peer | undefined {
    const dot = token.indexOf('.');
    const peer = dot > 0 ? this.#sessions.get(token.slice(0, dot)) : undefined;
    // A token only resumes for the identity (and client id) that opened the session.
    if (peer === undefined || peer.clientId !== clientId || peer.identity !== identity)
      return undefined;
    return tokensEqual(peer.resumeToken, token) ? peer : undefined;
  }

  #expire(peer: Peer, reason: string, error: TetherError | undefined): void {
    if (!this.#sessions.delete(peer.id)) return;
    this.#idle.delete(peer);
    const own = this.#byIdentity.get(peer.identity);
    own?.delete(peer);
    if (own?.size === 0) this.#byIdentity.delete(peer.identity);
    const ended = error ?? new TetherError(ErrorCode.CLOSED, reason);
    peer.end(ended);
    const closing = peer.filesIfStarted?.close(ended);
    if (closing !== undefined) {
      this.#filesClosing.add(closing);
      void closing.finally(() => this.#filesClosing.delete(closing));
    }
    this.emit('expire', peer, reason);
  }

  /**
   * @internal One engine per session: partials belong to the client's identity, so no other
   * client can resume, read or append to them, whatever transfer id it presents.
   */
  transferEngine(peer: Peer): TransferEngine {
    const { uploadDir, acceptFile, maxFileSize, minFreeBytes, partialTtlMs, now } = this.#options;
    const engine = new TransferEngine({
      owner: peer.identity,
      now,
      ...(uploadDir === undefined
        ? {}
        : {
            receive: {
              dir: uploadDir,
              maxFileSize,
              minFreeBytes,
              partialTtlMs,
              ...(acceptFile === undefined ? {} : { decide: (offer) => acceptFile(offer, peer) }),
            },
          }),
    });
    engine.on('file', (file) => this.emit('file', file, peer));
    engine.on('error', (error) => this.emit('error', error, { remoteAddress: peer.remoteAddress }));
    return engine;
  }

  async #answer(peer: Peer, requestId: number, payload: Buffer): Promise<void> {
    const handler = this.#options.onRequest;
    let reply: Buffer;
    let flags: number = DataFlag.RESPONSE;
    try {
      if (handler === undefined)
        throw new TetherError(ErrorCode.REQUEST_FAILED, 'the server has no request handler');
      reply = toBuffer(await handler(payload, peer));
    } catch (error) {
      const code = error instanceof TetherError ? error.code : ErrorCode.REQUEST_FAILED;
      reply = Buffer.from(JSON.stringify({ code, message: (error as Error).message }));
      flags |= DataFlag.ERROR;
    }
    if (!peer.closed) peer.enqueue(reply, flags, requestId, () => {});
  }

  // Raw TCP connections, before any TLS: enforce the connection limits here.
  #admit(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    const full =
      this.#open >= this.#options.maxConnections ||
      fromAddress >= this.#options.maxConnectionsPerAddress;
    if (this.#closing || full) {
      this.#refuse(socket, full);
      return;
    }
    this.#open++;
    this.#perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      this.#open--;
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
  }

  #refuse(socket: net.Socket, full: boolean): void {
    socket.on('error', () => {});
    this.#refused.add(socket);
    if (full) this.#refusals++;
    // Over TLS there is no way to say why before a handshake we refuse to spend on it.
    if (!full || this.#options.tls !== undefined) {
      socket.destroy();
      return;
    }
    const error = encodeError({
      code: ErrorCode.TOO_MANY_CONNECTIONS,
      message: 'connection limit reached',
      retryAfterMs: REFUSAL_RETRY_AFTER_MS,
    });
    socket.end(Buffer.concat([PREFACE, error]));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  // A connection ready for the Tether handshake (after TLS, when TLS is on).
  #accept(socket: net.Socket): void {
    // Refused by #admit (ended or destroyed) before the handshake could start.
    if (socket.destroyed || socket.writableEnded || this.#closing) {
      socket.destroy();
      return;
    }
    if (socket instanceof tls.TLSSocket) {
      const refusal =
        socket.alpnProtocol !== TETHER_ALPN
          ? `ALPN ${socket.alpnProtocol || 'none'} instead of ${TETHER_ALPN}`
          : this.#options.requireClientCert && !socket.authorized
            ? `client certificate refused: ${socket.authorizationError ?? 'none presented'}`
            : undefined;
      if (refusal !== undefined) {
        this.#tlsFailure(new Error(refusal), socket);
        socket.on('error', () => {});
        socket.end(
          Buffer.concat([PREFACE, encodeError({ code: ErrorCode.TLS_FAILED, message: refusal })]),
        );
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
    }
    const connection = new ServerConnection(socket, this, this.#options, this.#deadlines);
    this.#connections.add(connection);
    // Over budget, a newcomer is not read at all until memory frees (or its HELLO deadline ends).
    if (this.#inboundBuffered > this.#options.maxInboundBufferedBytes) this.#pause(connection);
  }

  #tlsFailure(cause: Error, socket: net.Socket | tls.TLSSocket): void {
    this.#handshakeFailures++;
    const error = new TetherError(ErrorCode.TLS_FAILED, `TLS handshake failed: ${cause.message}`, {
      cause,
    });
    this.emit('error', error, { remoteAddress: `${socket.remoteAddress}:${socket.remotePort}` });
  }
}

function tooManySessions(message: string): TetherError {
  return new TetherError(ErrorCode.TOO_MANY_SESSIONS, message);
}

function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
