import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import {
  port as checkPort,
  positive,
  type Scheduler,
  schedulerWithClock,
  type Transport,
} from '@tether/core';
import type { DownloadDecision } from '@tether/files';
import {
  type BackoffOptions,
  checkFrameLimit,
  DEFAULT_MAX_FRAME,
  MAX_CLIENT_ID_BYTES,
  resolveBackoff,
} from '@tether/protocol';
import { webSocketUrl } from './websocket-url.js';

/** What `send()` does when the outbox is full. */
export const OverflowPolicy = {
  /** `send()` rejects with QUEUE_FULL (default). */
  REJECT: 'reject',
  /** The oldest message not yet transmitted is dropped (its promise rejects, `drop` fires). */
  DROP_OLDEST: 'drop-oldest',
  /** `send()` waits for room: backpressure. */
  WAIT: 'wait',
} as const;
export type OverflowPolicy = (typeof OverflowPolicy)[keyof typeof OverflowPolicy];

/** When the client's store makes a batch of records durable. */
export const StoreSync = {
  /**
   * fsync every batch (default): a journaled message survives a crash of the process and of the
   * machine. Sends in one batch share one fsync (group commit).
   */
  BATCH: 'batch',
  /**
   * Never fsync: records are handed to the OS, so they survive a crash of the process but not of
   * the OS or a power loss. For tests and throwaway data.
   */
  NEVER: 'never',
} as const;
export type StoreSync = (typeof StoreSync)[keyof typeof StoreSync];

/** The client's store on disk: its outbox and session survive a restart of the process. */
export interface StoreOptions {
  /** Directory of the store (created if missing). One client at a time may use it. */
  dir: string;
  /** When records are made durable. Default 'batch'. */
  sync?: StoreSync;
}

/** Options of {@link TetherClient}. Times are in milliseconds. */
export interface ClientOptions {
  host?: string;
  /** The server's TCP port; required unless `url` (or `transport`) is given. */
  port?: number;
  /**
   * Connect over WebSocket to this `ws://` or `wss://` URL (subprotocol `tether.v1`) instead of
   * TCP: the global `WebSocket` where there is one (browsers), else the `ws` package.
   */
  url?: string;
  /** Connect over TLS with these options (`true` for Node's defaults). */
  tls?: TlsConnectionOptions | boolean;
  /**
   * Opens the byte stream of each connection attempt instead of TCP (or TLS) to `host:port`: a
   * WebSocket adapter, an in-memory pipe in tests. It should reject (or the attempt times out at
   * `connectTimeoutMs`); `signal` aborts when the client closes.
   */
  transport?: (signal: AbortSignal) => Promise<Transport>;
  /**
   * Shared secret for the server's built-in challenge: the client answers a fresh nonce with an
   * HMAC proof; the secret never crosses the wire.
   */
  secret?: string | Uint8Array;
  /**
   * Credentials for the server's `authenticate` hook (a token, ...), fetched on every connection
   * so they are fresh after a reconnect.
   */
  credentials?: () => unknown;
  /** Stable id of this client; message ids are `${clientId}:${seq}`. Default: random. */
  clientId?: string;
  /** Send a PING after this long without inbound traffic. Default 5000. */
  pingIntervalMs?: number;
  /** Declare the link dead after this long without proof of life. Default 15000. */
  deadAfterMs?: number;
  /** Give up one connection attempt (TCP, TLS and handshake) after this long. Default 10000. */
  connectTimeoutMs?: number;
  /** Reconnect backoff. Defaults: 100 ms to 10 s, factor 2, jitter 0.5 kept at the cap. */
  backoff?: BackoffOptions;
  /** Failed attempts before giving up, per outage. Default Infinity. */
  retries?: number;
  /** Give up reconnecting after this long, per outage. Default Infinity. */
  maxRetryTime?: number;
  /** A connection up this long counts as healthy and resets the attempt count. Default 1000. */
  healthyAfterMs?: number;
  /** Outbox cap on messages not yet acknowledged. Default 10000. */
  maxQueuedMessages?: number;
  /** Outbox cap on payload bytes not yet acknowledged. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** What `send()` does when the outbox is full. Default 'reject'. */
  overflow?: OverflowPolicy;
  /** Payload bytes in flight (sent, unacknowledged) at once. Default 8 MiB. */
  maxInFlightBytes?: number;
  /** Largest frame this client accepts. Default 1 MiB. */
  maxFrame?: number;
  /** Accept files the server sends into this directory; without it, they are refused. */
  downloadDir?: string;
  /**
   * Decides each file offer that passed the checks; false refuses it (TRANSFER_REFUSED). In Node
   * anything else accepts it into `downloadDir`. In a browser (no `downloadDir` there) an offer is
   * refused unless this is given: true keeps the file in memory (`ReceivedFile.blob`), a
   * WritableStream receives it as it arrives.
   */
  acceptFile?: DownloadDecision;
  /** Refuse downloads larger than this (FILE_TOO_LARGE). Default Infinity. */
  maxFileSize?: number;
  /** Monotonic clock in ms; injected by tests. Default `performance.now()`. */
  now?: () => number;
  /**
   * Every timer and clock read goes through this; a test injects one in fake time (the core's
   * `VirtualScheduler`). Default: the system's timers with the `now` clock.
   */
  scheduler?: Scheduler;
  /** Random source in [0, 1) for backoff jitter; injected by tests. */
  random?: () => number;
  /**
   * Keep the outbox and the session in a store on disk, so that they survive a crash or restart
   * of the process: messages not yet acknowledged are sent after the restart, the session is
   * resumed. The client id is kept in the store too. Default: in memory only.
   */
  store?: StoreOptions;
}

export type ResolvedClientOptions = Required<
  Omit<
    ClientOptions,
    | 'tls'
    | 'clientId'
    | 'backoff'
    | 'secret'
    | 'credentials'
    | 'downloadDir'
    | 'acceptFile'
    | 'transport'
    | 'store'
    | 'url'
  >
> & {
  store: Required<StoreOptions> | undefined;
  transport: ClientOptions['transport'];
  url: string | undefined;
  downloadDir: string | undefined;
  acceptFile: ClientOptions['acceptFile'];
  tls: TlsConnectionOptions | undefined;
  clientId: string | undefined;
  secret: string | Uint8Array | undefined;
  credentials: (() => unknown) | undefined;
  backoff: Required<BackoffOptions>;
};

// What the server accepts as HELLO.clientId (PROTOCOL.md section 5): refused here, not by BAD_HELLO.
function clientId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ok =
    typeof value === 'string' &&
    value.length > 0 &&
    !/\p{Cs}/u.test(value) &&
    Buffer.byteLength(value, 'utf8') <= MAX_CLIENT_ID_BYTES;
  if (!ok) {
    throw new TypeError(
      `clientId must be 1 to ${MAX_CLIENT_ID_BYTES} bytes of UTF-8 without lone surrogates, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function store(value: StoreOptions | undefined): Required<StoreOptions> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`store must be an object with a dir, got ${value}`);
  }
  if (typeof value.dir !== 'string' || value.dir === '') {
    throw new TypeError(`store.dir must be a directory path, got ${JSON.stringify(value.dir)}`);
  }
  const sync = value.sync ?? StoreSync.BATCH;
  if (!Object.values(StoreSync).includes(sync)) {
    throw new TypeError(
      `store.sync must be one of ${Object.values(StoreSync).join(', ')}, got ${sync}`,
    );
  }
  return { dir: value.dir, sync };
}

const defaultNow = (): number => performance.now();

/** Fills in defaults and validates; a bad option throws a TypeError naming it. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const url = webSocketUrl(options.url);
  const port = url === undefined ? checkPort('port', options.port as number) : 0;
  const overflow = options.overflow ?? OverflowPolicy.REJECT;
  if (!Object.values(OverflowPolicy).includes(overflow)) {
    throw new TypeError(
      `overflow must be one of ${Object.values(OverflowPolicy).join(', ')}, got ${overflow}`,
    );
  }
  const pingIntervalMs = positive('pingIntervalMs', options.pingIntervalMs ?? 5000);
  const deadAfterMs = positive('deadAfterMs', options.deadAfterMs ?? 15_000);
  if (deadAfterMs <= pingIntervalMs) {
    throw new TypeError(
      `deadAfterMs (${deadAfterMs}) must exceed pingIntervalMs (${pingIntervalMs})`,
    );
  }
  const retries = options.retries ?? Number.POSITIVE_INFINITY;
  if (!(retries >= 0)) throw new TypeError(`retries must be >= 0, got ${retries}`);
  const tls = options.tls === true ? {} : options.tls === false ? undefined : options.tls;
  const now = options.scheduler?.now.bind(options.scheduler) ?? options.now ?? defaultNow;
  return {
    host: options.host ?? '127.0.0.1',
    port,
    url,
    tls,
    transport: options.transport,
    clientId: clientId(options.clientId),
    secret: options.secret,
    downloadDir: options.downloadDir,
    acceptFile: options.acceptFile,
    maxFileSize: options.maxFileSize ?? Number.POSITIVE_INFINITY,
    credentials: options.credentials,
    pingIntervalMs,
    deadAfterMs,
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 10_000),
    backoff: resolveBackoff(options.backoff),
    retries,
    maxRetryTime: positive('maxRetryTime', options.maxRetryTime ?? Number.POSITIVE_INFINITY, true),
    healthyAfterMs: positive('healthyAfterMs', options.healthyAfterMs ?? 1000),
    maxQueuedMessages: positive('maxQueuedMessages', options.maxQueuedMessages ?? 10_000),
    maxQueuedBytes: positive('maxQueuedBytes', options.maxQueuedBytes ?? 64 * 1024 * 1024),
    overflow,
    maxInFlightBytes: positive('maxInFlightBytes', options.maxInFlightBytes ?? 8 * 1024 * 1024),
    maxFrame: checkFrameLimit('maxFrame', options.maxFrame ?? DEFAULT_MAX_FRAME),
    now,
    scheduler: options.scheduler ?? schedulerWithClock(now),
    random: options.random ?? Math.random,
    store: store(options.store),
  };
}
