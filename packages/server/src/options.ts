import type { TlsOptions } from 'node:tls';
import {
  atLeast,
  port as checkPort,
  positive,
  positiveInteger,
  type Scheduler,
  schedulerWithClock,
} from '@tether/core';
import type { FileOfferInfo } from '@tether/files';
import {
  checkFrameLimit,
  DEFAULT_MAX_CONTROL,
  DEFAULT_MAX_FRAME,
  type HelloBody,
  type Payload,
} from '@tether/protocol';
import {
  type DashboardOptions,
  type ResolvedDashboardOptions,
  resolveDashboardOptions,
} from './dashboard/options.js';
import type { Peer } from './peer.js';
import {
  type RedisStoreOptions,
  type ResolvedRedisOptions,
  resolveRedisOptions,
} from './redis/redis-options.js';
import {
  type ResolvedWebSocketOptions,
  resolveWebSocketOptions,
  type WebSocketOptions,
} from './websocket-options.js';

/** What the TLS layer verified about the client (mutual TLS). */
export interface TlsIdentity {
  /** Whether the client certificate chained to a trusted CA. */
  authorized: boolean;
  /** Subject common name of the client certificate, if any. */
  subject: string | undefined;
  /** SHA-256 fingerprint of the client certificate, if any. */
  fingerprint256: string | undefined;
  /** The TLS version negotiated (`TLSv1.3`, `TLSv1.2`). */
  protocol: string | undefined;
}

/** Context handed to the `authenticate` hook. */
export interface AuthContext {
  /** Remote `address:port`. */
  address: string;
  /** Present on TLS connections (`authorized` false and no subject without a client certificate). */
  tlsIdentity: TlsIdentity | undefined;
  /**
   * This connection's CHALLENGE nonce: credentials that sign it (rather than bearer tokens) cannot
   * be replayed on another connection.
   */
  nonce: string;
}

/**
 * Decides whether a HELLO may open or resume a session. Return false to refuse, true to accept
 * with the client id as identity, or `{ identity }` to name who this is (sessions are bound to it).
 */
export type Authenticate = (
  hello: HelloBody,
  context: AuthContext,
) => boolean | { identity: string } | Promise<boolean | { identity: string }>;

/** Answers a client's `request()`; the returned payload is the reply. Throwing fails it. */
export type RequestHandler = (payload: Buffer, peer: Peer) => Payload | Promise<Payload>;

/** Options of {@link TetherServer}. Times are in milliseconds. */
export interface ServerOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  host?: string;
  /**
   * Serve TLS with these options (cert, key, ca, ...). Minimum version TLS 1.2 unless
   * `minVersion` says otherwise; ALPN `tether/1` is required.
   */
  tls?: TlsOptions;
  /** Require a client certificate signed by `tls.ca` (mutual TLS). Default false. */
  requireClientCert?: boolean;
  /** Abort a TLS handshake that takes longer than this. Default 5000 (Node's own is 120 s). */
  tlsHandshakeTimeoutMs?: number;
  /**
   * Shared secret for the built-in challenge: clients prove it with an HMAC over a fresh nonce;
   * the secret never crosses the wire.
   */
  secret?: string | Uint8Array;
  /** Your own check (tokens, mTLS identities, ...), after the shared secret if both are set. */
  authenticate?: Authenticate;
  /** Every refused HELLO is answered this long after it arrived, whatever failed. Default 250. */
  authFailureDelayMs?: number;
  /** Connections open at once; the next is refused with TOO_MANY_CONNECTIONS. Default 10000. */
  maxConnections?: number;
  /** Connections open at once from one remote address. Default 256. */
  maxConnectionsPerAddress?: number;
  /** A frame must arrive whole within this long of its first byte (slowloris). Default 30000. */
  frameTimeoutMs?: number;
  /**
   * Bytes of incomplete frames held across all connections. Past it, connections holding a
   * partial frame stop being read until it falls (their frame deadline still runs). Default 64 MiB.
   */
  maxInboundBufferedBytes?: number;
  /**
   * Clients PING after this long without inbound traffic (they take this value when theirs is
   * larger). The server itself PINGs a client only after 1.5 times as long (at most halfway to
   * `evictAfterMs`), so a live client always pings first, and otherwise once per 6 intervals
   * for the peer's RTT: an idle connection carries about one PING and one PONG per interval
   * instead of two of each. Default 5000.
   */
  pingIntervalMs?: number;
  /** Evict a client silent this long. Default 15000. */
  evictAfterMs?: number;
  /** Keep a disconnected session this long for resume. Default 120000. */
  sessionTtlMs?: number;
  /**
   * Sessions kept at once, connected or waiting for a resume. A new session past it ends the
   * session disconnected the longest (its pending sends reject with TOO_MANY_SESSIONS); when every
   * session is connected, the HELLO is refused with TOO_MANY_SESSIONS. Default 20000.
   */
  maxSessions?: number;
  /**
   * Sessions of one identity at once (the same rule, within the identity): a client that restarts
   * without its resume token again and again does not pile up sessions. Default 32.
   */
  maxSessionsPerIdentity?: number;
  /** Close a connection that has not completed its HELLO in this long. Default 5000. */
  helloTimeoutMs?: number;
  /** Largest frame accepted. Default 1 MiB. */
  maxFrame?: number;
  /** Largest control-frame JSON body accepted. Default 16 KiB. */
  maxControl?: number;
  /** Payload bytes in flight to one client at once. Default 8 MiB. */
  maxInFlightBytes?: number;
  /** A peer whose unacknowledged outbound bytes pass this is closed as a slow consumer. Default 64 MiB. */
  maxPeerBacklogBytes?: number;
  /** Answers client requests. Without it requests fail with REQUEST_FAILED. */
  onRequest?: RequestHandler;
  /**
   * Accept files from clients into this directory (partials in its `.tether-partial` folder);
   * without it, file offers are refused.
   */
  uploadDir?: string;
  /** Decides each file offer that passed the checks; false refuses it (TRANSFER_REFUSED). */
  acceptFile?: (offer: FileOfferInfo, peer: Peer) => boolean | Promise<boolean>;
  /** Refuse uploads larger than this (FILE_TOO_LARGE), before any byte arrives. Default Infinity. */
  maxFileSize?: number;
  /** Refuse an upload that would leave less free space than this (FILE_NO_SPACE). Default 0. */
  minFreeBytes?: number;
  /** Delete partial uploads untouched this long. Default 24 h. */
  partialTtlMs?: number;
  /**
   * Delete partial uploads that hold no durable byte (accepted offers that never sent one) after
   * this long instead. Default 300000 (5 min).
   */
  emptyPartialTtlMs?: number;
  /**
   * Uploads one session may have in progress at once (idle ones included); the next offer is
   * refused with TOO_MANY_TRANSFERS (retryable). Default 8.
   */
  maxIncomingTransfersPerPeer?: number;
  /**
   * Uploads receiving at once across the server, each holding its partial file open; past it an
   * offer, or an idle upload's next chunk, is refused with TOO_MANY_TRANSFERS (retryable).
   * Default 256.
   */
  maxIncomingTransfers?: number;
  /**
   * An upload that receives no byte for this long closes its partial file and gives back its
   * place under `maxIncomingTransfers` and its disk reservation (so an offer that never sends
   * cannot hold the disk); its next chunk takes them again or fails with TOO_MANY_TRANSFERS or
   * FILE_NO_SPACE (retryable). Default 5000.
   */
  fileIdleMs?: number;
  /**
   * Serve a live dashboard, Prometheus `/metrics`, `/healthz` and `/readyz` on a second HTTP
   * listener (loopback by default; a token for anything else). Started by `listen()`, stopped
   * at the end of `close()`. Default: none.
   */
  dashboard?: DashboardOptions;
  /**
   * Also take clients over WebSocket (subprotocol `tether.v1`), on a port of its own or on an
   * HTTP(S) server of yours, for browsers. Started by `listen()`, stopped by `close()`. Default:
   * none (the `ws` package is not even loaded).
   */
  webSocket?: WebSocketOptions;
  /**
   * Keep sessions in Redis instead of this process's memory: every instance given the same
   * Redis and prefix serves every session (clients resume on any of them behind a load
   * balancer), messages reach a client wherever it is connected, and an instance can die
   * without losing what its clients were told is delivered. Connected by `listen()`. Default:
   * none (sessions in memory).
   */
  redis?: RedisStoreOptions;
  /** Monotonic clock in ms; injected by tests. Default `performance.now()`. */
  now?: () => number;
  /**
   * Every timer and clock read goes through this; a test injects one in fake time (the core's
   * `VirtualScheduler`). Default: the system's timers with the `now` clock.
   */
  scheduler?: Scheduler;
}

export type ResolvedServerOptions = Required<
  Omit<
    ServerOptions,
    | 'tls'
    | 'onRequest'
    | 'secret'
    | 'authenticate'
    | 'uploadDir'
    | 'acceptFile'
    | 'dashboard'
    | 'webSocket'
    | 'redis'
  >
> & {
  dashboard: ResolvedDashboardOptions | undefined;
  webSocket: ResolvedWebSocketOptions | undefined;
  redis: ResolvedRedisOptions | undefined;
  uploadDir: string | undefined;
  acceptFile: ServerOptions['acceptFile'];
  tls: TlsOptions | undefined;
  onRequest: RequestHandler | undefined;
  secret: string | Uint8Array | undefined;
  authenticate: Authenticate | undefined;
};

const defaultNow = (): number => performance.now();

/** Fills in defaults and validates; a bad option throws a TypeError naming it. */
export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const port = checkPort('port', options.port ?? 0);
  const pingIntervalMs = positive('pingIntervalMs', options.pingIntervalMs ?? 5000);
  const evictAfterMs = positive('evictAfterMs', options.evictAfterMs ?? 15_000);
  if (evictAfterMs <= pingIntervalMs) {
    throw new TypeError(
      `evictAfterMs (${evictAfterMs}) must exceed pingIntervalMs (${pingIntervalMs})`,
    );
  }
  const now = options.scheduler?.now.bind(options.scheduler) ?? options.now ?? defaultNow;
  return {
    port,
    host: options.host ?? '127.0.0.1',
    tls: options.tls,
    pingIntervalMs,
    evictAfterMs,
    sessionTtlMs: positive('sessionTtlMs', options.sessionTtlMs ?? 120_000),
    maxSessions: positiveInteger('maxSessions', options.maxSessions ?? 20_000),
    maxSessionsPerIdentity: positiveInteger(
      'maxSessionsPerIdentity',
      options.maxSessionsPerIdentity ?? 32,
    ),
    helloTimeoutMs: positive('helloTimeoutMs', options.helloTimeoutMs ?? 5000),
    maxFrame: checkFrameLimit('maxFrame', options.maxFrame ?? DEFAULT_MAX_FRAME),
    // Peers may send control bodies up to the default without asking: never accept less.
    maxControl: atLeast(
      'maxControl',
      options.maxControl ?? DEFAULT_MAX_CONTROL,
      DEFAULT_MAX_CONTROL,
    ),
    maxInFlightBytes: positive('maxInFlightBytes', options.maxInFlightBytes ?? 8 * 1024 * 1024),
    maxPeerBacklogBytes: positive(
      'maxPeerBacklogBytes',
      options.maxPeerBacklogBytes ?? 64 * 1024 * 1024,
    ),
    onRequest: options.onRequest,
    uploadDir: options.uploadDir,
    acceptFile: options.acceptFile,
    maxFileSize: options.maxFileSize ?? Number.POSITIVE_INFINITY,
    minFreeBytes: atLeast('minFreeBytes', options.minFreeBytes ?? 0),
    partialTtlMs: atLeast('partialTtlMs', options.partialTtlMs ?? 24 * 60 * 60 * 1000),
    emptyPartialTtlMs: atLeast('emptyPartialTtlMs', options.emptyPartialTtlMs ?? 300_000),
    maxIncomingTransfersPerPeer: positiveInteger(
      'maxIncomingTransfersPerPeer',
      options.maxIncomingTransfersPerPeer ?? 8,
    ),
    maxIncomingTransfers: positiveInteger(
      'maxIncomingTransfers',
      options.maxIncomingTransfers ?? 256,
    ),
    fileIdleMs: positive('fileIdleMs', options.fileIdleMs ?? 5000),
    requireClientCert: options.requireClientCert ?? false,
    tlsHandshakeTimeoutMs: positive('tlsHandshakeTimeoutMs', options.tlsHandshakeTimeoutMs ?? 5000),
    secret: options.secret,
    authenticate: options.authenticate,
    authFailureDelayMs: atLeast('authFailureDelayMs', options.authFailureDelayMs ?? 250),
    maxConnections: positive('maxConnections', options.maxConnections ?? 10_000),
    maxConnectionsPerAddress: positive(
      'maxConnectionsPerAddress',
      options.maxConnectionsPerAddress ?? 256,
    ),
    frameTimeoutMs: positive('frameTimeoutMs', options.frameTimeoutMs ?? 30_000),
    maxInboundBufferedBytes: positive(
      'maxInboundBufferedBytes',
      options.maxInboundBufferedBytes ?? 64 * 1024 * 1024,
    ),
    dashboard:
      options.dashboard === undefined ? undefined : resolveDashboardOptions(options.dashboard),
    webSocket:
      options.webSocket === undefined ? undefined : resolveWebSocketOptions(options.webSocket),
    redis: options.redis === undefined ? undefined : resolveRedisOptions(options.redis),
    now,
    scheduler: options.scheduler ?? schedulerWithClock(now),
  };
}
