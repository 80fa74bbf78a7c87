import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  DataFlag,
  type DataFrame,
  ErrorCode,
  type Frame,
  type HelloBody,
  Message,
  type OutboundEntry,
  type Payload,
  PROTOCOL_VERSION,
  type RttStats,
  TetherError,
  toBuffer,
  type WelcomeBody,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import { type ResolvedServerOptions, resolveServerOptions, type ServerOptions } from './options.js';
import { Peer, type PeerHost, type PeerSendMeta } from './peer.js';
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
}

/** Options of `close()`. */
export interface ServerCloseOptions {
  /** Clients are told (GOAWAY) to come back after this long. Default 1000. */
  retryAfterMs?: number;
  /** How long to wait for outbound messages to be acknowledged before closing. Default 5000. */
  drainTimeoutMs?: number;
}

const MAX_CLIENT_ID = 128;

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
  readonly #sessions = new Map<string, Peer>();
  #closing = false;
  #messagesIn = 0;
  #messagesOut = 0;
  #evictions = 0;
  #handshakeFailures = 0;

  constructor(options: ServerOptions = {}) {
    super();
    this.#options = resolveServerOptions(options);
    const onSocket = (socket: net.Socket): void => this.#accept(socket);
    this.#listener =
      this.#options.tls === undefined
        ? net.createServer(onSocket)
        : tls.createServer({ ALPNProtocols: ['tether/1'], ...this.#options.tls }, onSocket);
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
    for (const connection of this.#connections)
      connection.goaway('server shutting down', retryAfterMs);
    await this.#drain(options.drainTimeoutMs ?? 5000);
    const error = new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down');
    for (const connection of [...this.#connections]) connection.end(error);
    for (const connection of [...this.#connections]) connection.destroy(error);
    for (const peer of [...this.#sessions.values()]) this.#expire(peer, 'server closed', error);
    await listenerClosed;
    this.emit('close');
  }

  // --- PeerHost -------------------------------------------------------------------------------

  /** @internal */
  queued(peer: Peer): void {
    const connection = peer.connection;
    const backlog = peer.outbound.bytes + (connection?.backlogBytes ?? 0);
    if (backlog > this.#options.maxPeerBacklogBytes) {
      this.closePeer(
        peer,
        new TetherError(
          ErrorCode.SLOW_CONSUMER,
          `outbound backlog of ${backlog} bytes passed the cap`,
        ),
      );
      return;
    }
    connection?.pump();
  }

  /** @internal */
  closePeer(peer: Peer, error: TetherError): void {
    peer.connection?.fail(error);
    this.#expire(peer, error.message, error);
  }

  // --- ConnectionHost -------------------------------------------------------------------------

  /** @internal */
  hello(connection: ServerConnection, body: HelloBody): HelloOutcome {
    if (this.#closing) {
      return {
        ok: false,
        error: new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down'),
      };
    }
    if (!body.versions.includes(PROTOCOL_VERSION)) {
      return {
        ok: false,
        error: new TetherError(
          ErrorCode.UNSUPPORTED_VERSION,
          `server speaks version ${PROTOCOL_VERSION}`,
        ),
      };
    }
    if (body.clientId.length === 0 || body.clientId.length > MAX_CLIENT_ID) {
      return {
        ok: false,
        error: new TetherError(
          ErrorCode.BAD_HELLO,
          `clientId must be 1 to ${MAX_CLIENT_ID} characters`,
        ),
      };
    }
    const existing =
      body.resumeToken === undefined
        ? undefined
        : this.#findSession(body.resumeToken, body.clientId);
    let peer: Peer;
    let resend: OutboundEntry<PeerSendMeta>[];
    if (existing !== undefined) {
      const resumed = existing.outbound.resume(body.delivered);
      if (resumed instanceof TetherError) return { ok: false, error: resumed };
      this.acked(existing, resumed.released);
      clearTimeout(existing.ttlTimer);
      existing.ttlTimer = undefined;
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
      const id = randomBytes(8).toString('hex');
      peer = new Peer(
        this,
        id,
        `${id}.${randomBytes(32).toString('base64url')}`,
        body.clientId,
        connection.remoteAddress,
        body.acked,
      );
      this.#sessions.set(peer.id, peer);
      resend = [];
    }
    peer.connection = connection;
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

  /** @internal */
  data(peer: Peer, frame: DataFrame): void {
    peer.messagesIn++;
    this.#messagesIn++;
    if (frame.flags & DataFlag.REQUEST) {
      void this.#answer(peer, frame.requestId, frame.payload);
      return;
    }
    this.emit(
      'message',
      new Message(`${peer.clientId}:${frame.seq}`, frame.seq, frame.payload),
      peer,
    );
  }

  /** @internal */
  acked(peer: Peer, entries: OutboundEntry<PeerSendMeta>[]): void {
    peer.messagesOut += entries.length;
    this.#messagesOut += entries.length;
    for (const entry of entries) entry.meta.resolve(entry);
    if (this.#closing && this.#drainWaiter !== undefined && this.#pendingOutbound() === 0)
      this.#drainWaiter();
  }

  /** @internal */
  rtt(_peer: Peer, _stats: RttStats): void {}

  /** @internal */
  control(peer: Peer, frame: Frame): void {
    peer.connection?.fail(
      new TetherError(
        ErrorCode.UNEXPECTED_FRAME,
        `frame 0x${frame.type.toString(16)} is not supported here`,
      ),
    );
  }

  /** @internal */
  closed(connection: ServerConnection, error: TetherError, silentMs: number | undefined): void {
    this.#connections.delete(connection);
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
  // constant time, and a session answers only to the client id that opened it.
  #findSession(token: string, clientId: string): Peer | undefined {
    const dot = token.indexOf('.');
    const peer = dot > 0 ? this.#sessions.get(token.slice(0, dot)) : undefined;
    if (peer === undefined || peer.clientId !== clientId) return undefined;
    return tokensEqual(peer.resumeToken, token) ? peer : undefined;
  }

  #expire(peer: Peer, reason: string, error: TetherError | undefined): void {
    if (!this.#sessions.delete(peer.id)) return;
    peer.end(error ?? new TetherError(ErrorCode.CLOSED, reason));
    this.emit('expire', peer, reason);
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
    if (!peer.closed) peer.enqueue(reply, flags, requestId).catch(() => {});
  }

  #accept(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#connections.add(new ServerConnection(socket, this, this.#options));
  }
}

function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
