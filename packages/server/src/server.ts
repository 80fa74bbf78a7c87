import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import {
  Connection,
  type ConnectionOptions,
  type ConnectionOwner,
  Deadlines,
  type Scheduler,
  type Transport,
} from '@tether/core';
import { ReceiveDirectory, type ReceivedFile, type TransferEngine } from '@tether/files';
import {
  DataFlag,
  type DataFrame,
  ErrorCode,
  type Frame,
  FrameType,
  Message,
  type Payload,
  type RttStats,
  TetherError,
  toBuffer,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import type { Dashboard } from './dashboard/dashboard.js';
import { InboundBudget } from './inbound-budget.js';
import { Listener } from './listener.js';
import {
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
  type TlsIdentity,
} from './options.js';
import type { Peer, PeerSendOptions, PeerSendReceipt } from './peer.js';
import { type PeerPendingSend, PeerSession, type SessionHost } from './peer-session.js';
import type { RedisSessionStore, SessionInit } from './redis/redis-store.js';
import { RttHistory } from './rtt-history.js';
import { ServerHandshake } from './server-handshake.js';
import { MemorySessionStore, type SessionEnd, type SessionStore } from './session-store.js';
import { type TransferUpdate, WatchedTransferEngine } from './transfer-watch.js';
import type { WebSocketEndpoint } from './websocket-endpoint.js';

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
  /** A PONG from the client gave a new RTT sample (`rtt.last`); about one per ping interval. */
  rtt: (peer: Peer, rtt: RttStats) => void;
  /**
   * A file transfer of the session, either way, moved a step: accepted (`started`, again after
   * a reconnect), committed more bytes (`progress`), or ended (`completed`, `failed`,
   * `cancelled`). Steps come per committed advance the receiver reports, not per chunk.
   */
  transfer: (peer: Peer, update: TransferUpdate) => void;
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

// Bytes waiting to be written to a client beyond its messages in flight (replies; file chunks
// stay under TRANSFER_LOW_WATER plus one chunk). Past it the client is not read until it drains.
const REPLY_BACKLOG_LIMIT = 1024 * 1024;
// Bytes above the control cap that a frame may declare before the handshake is done (so an
// oversized HELLO is told CONTROL_TOO_LARGE rather than FRAME_TOO_LARGE).
const PRE_HANDSHAKE_SLACK = 64;

type ServerConnection = Connection<PeerPendingSend>;

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
export class TetherServer extends EventEmitter<ServerEvents> {
  readonly #options: ResolvedServerOptions;
  /** RTT samples kept per session for `peer.rttHistory()`: the dashboard's, else none. */
  readonly #rttHistorySize: number;
  readonly #scheduler: Scheduler;
  readonly #listener: Listener;
  readonly #connections = new Set<ServerConnection>();
  /** HELLO deadlines, frame deadlines and heartbeats of every connection, on one timer. */
  readonly #deadlines: Deadlines<ServerConnection>;
  /** Sessions in memory, or in Redis (the `redis` option; made by `listen()`). */
  #store: SessionStore;
  readonly #memory: MemorySessionStore | undefined;
  #redis: RedisSessionStore | undefined;
  readonly #handshake: ServerHandshake;
  readonly #budget: InboundBudget;
  /** What every connection reports to: one object for all of them. */
  readonly #owner: ConnectionOwner<PeerPendingSend>;
  /** The settings every connection starts with: one object for all of them. */
  readonly #connectionOptions: ConnectionOptions<PeerPendingSend>;
  /** What every session asks of the server. */
  readonly #sessions: SessionHost;
  /** Where every session's engine receives uploads (one writer per partial, shared limits). */
  readonly #uploads: ReceiveDirectory | undefined;
  /** File engines of ended sessions still closing their files. */
  readonly #filesClosing = new Set<Promise<void>>();
  #closing = false;
  #dashboard: Dashboard | undefined;
  #webSocket: WebSocketEndpoint | undefined;
  #drainWaiter: (() => void) | undefined;
  #messagesIn = 0;
  #messagesOut = 0;
  #evictions = 0;
  #handshakeFailures = 0;

  constructor(options: ServerOptions = {}) {
    super();
    this.#options = resolveServerOptions(options);
    this.#rttHistorySize = this.#options.dashboard?.rttHistory ?? 0;
    this.#scheduler = this.#options.scheduler;
    const { uploadDir, minFreeBytes, partialTtlMs, emptyPartialTtlMs } = this.#options;
    this.#uploads =
      uploadDir === undefined
        ? undefined
        : new ReceiveDirectory({
            dir: uploadDir,
            minFreeBytes,
            partialTtlMs,
            emptyPartialTtlMs,
            maxOpenTransfers: this.#options.maxIncomingTransfers,
            idleMs: this.#options.fileIdleMs,
            now: this.#options.now,
          });
    // Idle connections' heartbeat checks move later with every PING: asked for where they stand
    // once a second, they cost no wake-up and no heap sift each.
    this.#deadlines = new Deadlines<ServerConnection>(
      this.#scheduler,
      (connection, dueAt) => connection.deadline(dueAt),
      { current: (connection) => connection.currentDeadline() },
    );
    const { maxFrame, maxControl, helloTimeoutMs, frameTimeoutMs } = this.#options;
    this.#connectionOptions = {
      scheduler: this.#scheduler,
      deadlines: this.#deadlines,
      // Until WELCOME only a HELLO may arrive: an unauthenticated peer can hold no bigger frame.
      maxFrame: Math.min(maxFrame, maxControl + PRE_HANDSHAKE_SLACK),
      maxControl,
      handshakeTimeoutMs: helloTimeoutMs,
      frameTimeoutMs,
      replyBacklogLimit: REPLY_BACKLOG_LIMIT,
    };
    this.#memory = new MemorySessionStore({
      scheduler: this.#scheduler,
      sessionTtlMs: this.#options.sessionTtlMs,
      maxSessions: this.#options.maxSessions,
      maxSessionsPerIdentity: this.#options.maxSessionsPerIdentity,
      ended: (session, end) => this.#ended(session, end),
    });
    this.#store = this.#memory;
    this.#budget = new InboundBudget(this.#options.maxInboundBufferedBytes, this.#connections);
    this.#sessions = this.#sessionHost();
    const self = this;
    this.#handshake = new ServerHandshake({
      options: this.#options,
      scheduler: this.#scheduler,
      get store(): SessionStore {
        return self.#store;
      },
      draining: () => this.#closing,
      createSession: (init) => {
        const id = randomBytes(8).toString('hex');
        const resumeToken = `${id}.${randomBytes(32).toString('base64url')}`;
        if (this.#redis !== undefined) {
          return this.#redis.newSession({ id, resumeToken, ...init, tlsIdentity: undefined });
        }
        return new PeerSession(this.#sessions, { id, resumeToken, ...init });
      },
      opened: (session, resumed) => this.emit('connection', session.peer, { resumed }),
    });
    this.#owner = this.#connectionOwner();
    this.#listener = new Listener(this.#options, this.#scheduler, {
      closing: () => this.#closing,
      accept: (socket, tlsIdentity) => {
        socket.setNoDelay(true);
        // Joined, not concatenated: one flat string (32 bytes for an IPv4 address) instead of a
        // rope of three, which every connection and session keeps (88 bytes).
        const name = [String(socket.remoteAddress), String(socket.remotePort)].join(':');
        this.#serve(socket, name, tlsIdentity);
      },
      tlsFailed: (cause, remoteAddress) => {
        this.#handshakeFailures++;
        const error = new TetherError(
          ErrorCode.TLS_FAILED,
          `TLS handshake failed: ${cause.message}`,
          { cause },
        );
        this.emit('error', error, { remoteAddress });
      },
    });
  }

  /**
   * Starts listening; resolves with the bound address (port 0 picks a free port). With the
   * `dashboard` option its listener starts first (when it cannot, neither does the server).
   */
  async listen(): Promise<net.AddressInfo> {
    if (this.#options.redis !== undefined && this.#redis === undefined) await this.#startRedis();
    const dashboard = this.#options.dashboard;
    if (dashboard !== undefined && this.#dashboard === undefined) {
      // Loaded on demand: a server without a dashboard does not load prom-client.
      const { Dashboard } = await import('./dashboard/dashboard.js');
      const started = new Dashboard(this, dashboard);
      try {
        await started.listen();
      } catch (error) {
        await started.close();
        throw error;
      }
      this.#dashboard = started;
    }
    try {
      const address = await this.#listenTcp();
      await this.#listenWebSocket().catch((error: unknown) => {
        this.#listener.server.close();
        throw error;
      });
      return address;
    } catch (error) {
      await this.#dashboard?.close();
      this.#dashboard = undefined;
      throw error;
    }
  }

  // Loaded on demand: a server without the `redis` option does not load ioredis.
  async #startRedis(): Promise<void> {
    const { RedisSessionStore } = await import('./redis/redis-store.js');
    const options = this.#options;
    const store = new RedisSessionStore(
      {
        scheduler: this.#scheduler,
        sessionTtlMs: options.sessionTtlMs,
        maxSessions: options.maxSessions,
        maxSessionsPerIdentity: options.maxSessionsPerIdentity,
        // As much as the server lets itself have in flight to one client.
        maxHeldBytes: options.maxInFlightBytes,
        makeSession: (init: SessionInit) => new PeerSession(this.#sessions, init),
        deliver: (session, frame) => this.#data(session, frame),
        ended: (session, end) => this.#ended(session, end),
        moved: (session, error) => this.#moved(session, error),
      },
      options.redis as NonNullable<typeof options.redis>,
    );
    try {
      await store.start();
    } catch (error) {
      await store.close();
      throw error;
    }
    this.#redis = store;
    this.#store = store;
  }

  /**
   * With the `redis` option: this instance's id among the instances sharing the store (its
   * lease and channel in Redis). Undefined without it.
   */
  get instanceId(): string | undefined {
    return this.#options.redis?.instanceId;
  }

  /** The dashboard's bound address, while it listens (see the `dashboard` option). */
  get dashboardAddress(): net.AddressInfo | undefined {
    return this.#dashboard?.address;
  }

  /** The WebSocket endpoint's own port, while it listens (see the `webSocket` option). */
  get webSocketAddress(): net.AddressInfo | undefined {
    return this.#webSocket?.address;
  }

  // Loaded on demand: a server without the webSocket option does not load ws.
  async #listenWebSocket(): Promise<void> {
    const options = this.#options.webSocket;
    if (options === undefined || this.#webSocket !== undefined) return;
    const { WebSocketEndpoint } = await import('./websocket-endpoint.js');
    const endpoint = new WebSocketEndpoint(
      { ...options, host: options.host ?? this.#options.host },
      {
        scheduler: this.#scheduler,
        limits: this.#listener.limits,
        closing: () => this.#closing,
        accept: (transport, remoteAddress) => this.#serve(transport, remoteAddress, undefined),
        requestTimeoutMs: this.#options.helloTimeoutMs,
      },
    );
    await endpoint.listen();
    this.#webSocket = endpoint;
  }

  #listenTcp(): Promise<net.AddressInfo> {
    const listener = this.#listener.server;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      listener.once('error', onError);
      listener.listen(this.#options.port, this.#options.host, () => {
        listener.off('error', onError);
        const address = listener.address() as net.AddressInfo;
        this.emit('listening', address);
        resolve(address);
      });
    });
  }

  /** The bound address, once listening. */
  get address(): net.AddressInfo | undefined {
    return (this.#listener.server.address() as net.AddressInfo | null) ?? undefined;
  }

  /** True while the server's port is bound: from `listen()` until `close()` stops listening. */
  get listening(): boolean {
    return this.#listener.server.listening;
  }

  /** Every live session, connected or waiting for its client to resume. */
  get peers(): Peer[] {
    return Array.from(this.#store.values(), (session) => session.peer);
  }

  /**
   * True from the start of `close()`: the server takes no new connections and is draining the
   * ones it has (a readiness check should fail).
   */
  get draining(): boolean {
    return this.#closing;
  }

  /** Counters and gauges. */
  stats(): ServerStats {
    return {
      connections: this.#connections.size,
      sessions: this.#store.size,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      evictions: this.#evictions,
      handshakeFailures: this.#handshakeFailures,
      refusedConnections: this.#listener.refusals,
      inboundBufferedBytes: this.#budget.held,
    };
  }

  /**
   * Sends `payload` reliably to every live session (with the `redis` option: of every instance,
   * connected or waiting for a resume); resolves when all have received it or failed.
   */
  broadcast(payload: Payload): Promise<PromiseSettledResult<unknown>[]> {
    const data = toBuffer(payload);
    if (this.#redis !== undefined) return this.#redis.broadcast(data);
    return Promise.allSettled(this.peers.map((peer) => peer.send(data)));
  }

  /**
   * Sends `payload` to the newest session of `clientId`, wherever it is: on this server, or with
   * the `redis` option on whichever instance the client is connected to (or will resume on).
   * Resolves when the client's application received it, exactly once; `onAccepted` tells when
   * it is recorded (from then on it is delivered even if this instance dies). Rejects with
   * NO_SESSION when the client has no live session, STORE_UNAVAILABLE when Redis could not
   * accept it in time, or the code that ended the session.
   */
  sendTo(clientId: string, payload: Payload, options?: PeerSendOptions): Promise<PeerSendReceipt> {
    if (this.#redis !== undefined) return this.#redis.sendTo(clientId, payload, options);
    const session = this.#memory?.newest(clientId);
    if (session === undefined) {
      return Promise.reject(
        new TetherError(ErrorCode.NO_SESSION, 'no live session for this client id'),
      );
    }
    return session.peer.send(payload, options);
  }

  /**
   * Graceful shutdown: stops accepting, sends GOAWAY with `retryAfterMs` to every client (ERROR
   * SERVER_SHUTTING_DOWN to those still in their handshake), waits up to `drainTimeoutMs` for
   * outbound messages to be acknowledged, then closes every socket and frees every session and
   * timer.
   */
  async close(options: ServerCloseOptions = {}): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const retryAfterMs = options.retryAfterMs ?? 1000;
    const listener = this.#listener.server;
    const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
    const shuttingDown = new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down');
    for (const connection of [...this.#connections]) {
      // GOAWAY is for open sessions (PROTOCOL.md section 8); a connection still in its handshake
      // is told with ERROR, and when to come back.
      if (connection.established) connection.goaway('server shutting down', retryAfterMs);
      else connection.fail(shuttingDown, retryAfterMs);
    }
    await this.#drain(options.drainTimeoutMs ?? 5000);
    for (const connection of [...this.#connections]) connection.end(shuttingDown);
    for (const connection of [...this.#connections]) connection.destroy(shuttingDown);
    if (this.#redis !== undefined) {
      // The sessions live on in Redis: their clients resume them on another instance.
      const sessions = [...this.#redis.values()];
      await this.#redis.close();
      for (const session of sessions) session.filesIfStarted?.close(shuttingDown);
    } else {
      for (const session of [...this.#store.values()]) {
        this.#store.remove(session);
        this.#ended(session, { reason: 'server closed', error: shuttingDown });
      }
    }
    await Promise.all([...this.#filesClosing]);
    await listenerClosed;
    await this.#webSocket?.close();
    // Last: /readyz answers "draining" through the whole drain.
    await this.#dashboard?.close();
    this.emit('close');
  }

  /**
   * Serves a connection that did not come through the server's own listener: any
   * {@link Transport} (a socket from your own `net.Server`, a WebSocket adapter, an in-memory pipe
   * in tests). The handshake, authentication and every limit but the listener's connection
   * counts apply as to a TCP connection; `remoteAddress` names it in events and stats.
   */
  accept(transport: Transport, info: { remoteAddress: string; tls?: TlsIdentity }): void {
    if (this.#closing) {
      transport.destroy();
      return;
    }
    this.#serve(transport, info.remoteAddress, info.tls);
  }

  // A transport ready for the Tether handshake.
  #serve(transport: Transport, remoteAddress: string, tlsIdentity: TlsIdentity | undefined): void {
    const connection = new Connection<PeerPendingSend>(
      transport,
      this.#owner,
      this.#connectionOptions,
      remoteAddress,
    );
    this.#connections.add(connection);
    this.#handshake.start(connection, tlsIdentity);
    // Over budget, a newcomer is not read at all until memory frees (or its HELLO deadline ends).
    if (this.#budget.spent) this.#budget.pause(connection);
  }

  // What every connection reports to the server: one object for all of them.
  #connectionOwner(): ConnectionOwner<PeerPendingSend> {
    return {
      handshakeFrame: (connection, frame) => this.#handshake.frame(connection, frame),
      handshakeExpired: (connection) => this.#handshake.expired(connection),
      control: (connection, frame) => this.#control(connection, frame),
      closed: (connection, error, silentMs) => this.#closed(connection, error, silentMs),
      flushed: (connection) => {
        const session = connection.session as PeerSession | undefined;
        if (session !== undefined) this.#overCap(session);
      },
      buffered: (_connection, delta) => this.#budget.changed(delta),
    };
  }

  // What every session asks of the server: one object for all of them.
  #sessionHost(): SessionHost {
    return {
      data: (session, frame) => this.#data(session, frame),
      queued: (session) => {
        if (!this.#overCap(session)) session.connection?.pump();
      },
      acked: (_session, count) => {
        this.#messagesOut += count;
        if (this.#drainWaiter !== undefined && this.#pendingOutbound() === 0) this.#drainWaiter();
      },
      rtt: (session, stats) => {
        const size = this.#rttHistorySize;
        if (size > 0) {
          session.rttHistory ??= new RttHistory(size);
          session.rttHistory.push(stats.last);
        }
        this.#emitGuarded(session, () => this.emit('rtt', session.peer, stats));
      },
      close: (session, error) => this.#endSession(session, error),
      disconnect: (session, error) => session.connection?.destroy(error),
      transferEngine: (session) => this.#transferEngine(session),
    };
  }

  // Frames of an open session beyond the reliable stream and files: only ERROR is allowed.
  #control(connection: ServerConnection, frame: Frame): boolean {
    if (frame.type !== FrameType.ERROR) return false;
    connection.destroy(
      new TetherError(
        ErrorCode.REMOTE_ERROR,
        `client error ${frame.body.code}: ${frame.body.message}`,
      ),
    );
    return true;
  }

  #closed(connection: ServerConnection, error: TetherError, silentMs: number | undefined): void {
    this.#connections.delete(connection);
    this.#budget.forget(connection);
    this.#handshake.closed(connection);
    const session = connection.session as PeerSession | undefined;
    if (session === undefined) {
      if (
        error.code !== ErrorCode.CONNECTION_LOST &&
        error.code !== ErrorCode.SERVER_SHUTTING_DOWN
      ) {
        this.#handshakeFailures++;
        this.emit('error', error, { remoteAddress: connection.remoteAddress });
      }
      return;
    }
    if (session.connection !== undefined) return; // taken over: the session lives on elsewhere
    const info: DisconnectInfo =
      silentMs === undefined
        ? { reason: error.message, code: error.code }
        : { reason: error.message, code: error.code, silentMs };
    if (error.code === ErrorCode.EVICTED) {
      this.#evictions++;
      this.emit('evict', session.peer, info);
    }
    this.emit('disconnect', session.peer, info);
    if (error.code === ErrorCode.SLOW_CONSUMER) {
      // It read none of what it was sent until its deadline: the session ends with it.
      this.#endSession(session, error);
    } else if (!session.ended && !this.#closing) {
      this.#store.disconnected(session);
    }
  }

  #data(session: PeerSession, frame: DataFrame): void {
    session.messagesIn++;
    this.#messagesIn++;
    if (frame.flags & DataFlag.REQUEST) {
      void this.#answer(session, frame.requestId, frame.payload);
      return;
    }
    const message = new Message(
      `${session.clientId}:${frame.seq}`,
      frame.seq,
      frame.payload,
      frame.seq <= session.redeliverUpTo,
    );
    try {
      this.emit('message', message, session.peer);
    } catch (cause) {
      // A listener's bug must not cost the connection, nor crash the server.
      const error = new TetherError(ErrorCode.HANDLER_FAILED, 'a message listener threw', {
        cause,
      });
      this.emit('error', error, { remoteAddress: session.remoteAddress });
    }
  }

  // Events emitted from inside frame handling: a listener's bug must not cost the connection.
  #emitGuarded(session: PeerSession, emit: () => void): void {
    try {
      emit();
    } catch (cause) {
      const error = new TetherError(ErrorCode.HANDLER_FAILED, 'an event listener threw', { cause });
      this.emit('error', error, { remoteAddress: session.remoteAddress });
    }
  }

  async #answer(session: PeerSession, requestId: number, payload: Buffer): Promise<void> {
    const handler = this.#options.onRequest;
    let reply: Buffer;
    let flags: number = DataFlag.RESPONSE;
    try {
      if (handler === undefined)
        throw new TetherError(ErrorCode.REQUEST_FAILED, 'the server has no request handler');
      reply = toBuffer(await handler(payload, session.peer));
    } catch (error) {
      const code = error instanceof TetherError ? error.code : ErrorCode.REQUEST_FAILED;
      reply = Buffer.from(JSON.stringify({ code, message: (error as Error).message }));
      flags |= DataFlag.ERROR;
    }
    if (!session.ended) session.enqueue(reply, flags, requestId, () => {});
  }

  // Every byte queued toward a peer counts against its cap: unacknowledged messages and whatever
  // waits to be written (replies, file chunks). Past it the session ends with SLOW_CONSUMER.
  #overCap(session: PeerSession): boolean {
    const backlog = session.outbound.bytes + (session.connection?.backlogBytes ?? 0);
    if (backlog <= this.#options.maxPeerBacklogBytes) return false;
    this.#endSession(
      session,
      new TetherError(
        ErrorCode.SLOW_CONSUMER,
        `outbound backlog of ${backlog} bytes passed the cap`,
      ),
    );
    return true;
  }

  // Ends a session now: its client is told why and cannot resume it.
  #endSession(session: PeerSession, error: TetherError): void {
    session.connection?.fail(error);
    if (this.#store.remove(session, error)) this.#ended(session, { reason: error.message, error });
  }

  // Another instance took the session (its client resumed there): this one lets it go.
  #moved(session: PeerSession, error: TetherError): void {
    session.connection?.fail(error);
    const closing = session.filesIfStarted?.close(error);
    if (closing !== undefined) {
      this.#filesClosing.add(closing);
      void closing.finally(() => this.#filesClosing.delete(closing));
    }
  }

  // A session left the store: reject what it holds, close its files, tell the application.
  #ended(session: PeerSession, end: SessionEnd): void {
    const error = end.error ?? new TetherError(ErrorCode.CLOSED, end.reason);
    session.connection?.fail(error);
    session.end(error);
    const closing = session.filesIfStarted?.close(error);
    if (closing !== undefined) {
      this.#filesClosing.add(closing);
      void closing.finally(() => this.#filesClosing.delete(closing));
    }
    this.emit('expire', session.peer, end.reason);
  }

  #pendingOutbound(): number {
    let pending = 0;
    for (const session of this.#store.values()) {
      if (session.connection !== undefined) pending += session.outbound.count;
    }
    return pending;
  }

  #drain(timeoutMs: number): Promise<void> {
    if (this.#pendingOutbound() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const scheduler = this.#scheduler;
      const timer = scheduler.setTimeout(done, timeoutMs);
      const self = this;
      function done(): void {
        scheduler.clearTimeout(timer);
        self.#drainWaiter = undefined;
        resolve();
      }
      this.#drainWaiter = done;
    });
  }

  /**
   * One engine per session: partials belong to the client's identity, so no other client can
   * resume, read or append to them, whatever transfer id it presents.
   */
  #transferEngine(session: PeerSession): TransferEngine {
    const { acceptFile, maxFileSize, maxIncomingTransfersPerPeer, now } = this.#options;
    const peer = session.peer;
    const uploads = this.#uploads;
    const report = (update: TransferUpdate): void =>
      this.#emitGuarded(session, () => this.emit('transfer', peer, update));
    const engine = new WatchedTransferEngine(
      {
        owner: session.identity,
        now,
        ...(uploads === undefined
          ? {}
          : {
              receive: {
                directory: uploads,
                maxFileSize,
                maxTransfers: maxIncomingTransfersPerPeer,
                ...(acceptFile === undefined ? {} : { decide: (offer) => acceptFile(offer, peer) }),
              },
            }),
      },
      report,
    );
    engine.on('file', (file) => this.emit('file', file, peer));
    engine.on('error', (error) =>
      this.emit('error', error, { remoteAddress: session.remoteAddress }),
    );
    return engine;
  }
}
