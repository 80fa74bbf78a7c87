import { Connection, Deadlines, type Scheduler, type Transport } from '@tether/core';
import type { FileEngine, SendFileOptions, Transfer } from '@tether/files';
import {
  ABSOLUTE_MAX_FRAME,
  backoffDelay,
  type ChallengeBody,
  CREDENTIALS_AUTH_METHOD,
  DataFlag,
  type DataFrame,
  dataFrameLength,
  ErrorCode,
  type HelloBody,
  HMAC_AUTH_METHOD,
  Message,
  type Payload,
  PROTOCOL_VERSION,
  ProtocolError,
  type RttStats,
  retryAfterDelay,
  TetherError,
  toBuffer,
  type WelcomeBody,
} from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import pRetry from 'p-retry';
import { authProof } from './auth-proof.js';
import { ClientHandshake, type CloseInfo } from './client-handshake.js';
import { ClientSession } from './client-session.js';
import { type ClientEvents, ClientState, type PublishFailure } from './events.js';
import { makeFileEngine } from './file-engine.js';
import { openSocket, sleep } from './open-socket.js';
import { openWebSocket } from './open-websocket.js';
import {
  type ClientOptions,
  type ResolvedClientOptions,
  resolveClientOptions,
  StoreSync,
} from './options.js';
import { Outbox, type PendingSend, SendEntry, type SendReceipt } from './outbox.js';
import { PendingRequests } from './pending-requests.js';
import { Published } from './published.js';
import { randomUUID } from './random-id.js';
import {
  ClientStore,
  type RestoredMessage,
  type StoreDamage,
  type StoreStats,
} from './store/client-store.js';

export type { SendReceipt } from './outbox.js';

/** Options of one `send()`. */
export interface SendOptions {
  /** Reject with MESSAGE_EXPIRED if not transmitted within this many ms. */
  ttlMs?: number;
  /** Abort while the message waits for room in the outbox. */
  signal?: AbortSignal;
}

/** Options of one `publish()`. */
export interface PublishOptions {
  /** Fail with MESSAGE_EXPIRED (the `publishFailed` event) if not transmitted within this many ms. */
  ttlMs?: number;
}

/** Options of `flush()`. */
export interface FlushOptions {
  /** Reject with FLUSH_TIMEOUT after this many ms. Default: no limit. */
  timeoutMs?: number;
  /** Reject with ABORTED when it fires. */
  signal?: AbortSignal;
}

/** Options of one `request()`. */
export interface RequestOptions {
  /** Reject with REQUEST_TIMEOUT after this many ms. Default 30000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Options of `close()`. */
export interface CloseOptions {
  /** Wait (up to `timeoutMs`) until every queued message is acknowledged. Default false. */
  flush?: boolean;
  timeoutMs?: number;
}

/** Snapshot returned by `stats()`. */
export interface ClientStats {
  state: ClientState;
  sessionId: string | undefined;
  rtt: RttStats | undefined;
  /** Messages sent and not yet acknowledged (queued + in flight), and their bytes. */
  outbox: { depth: number; queued: number; inFlight: number; bytes: number; waiting: number };
  pendingRequests: number;
  /** File transfers in progress, both ways. */
  transfers: number;
  reconnects: number;
  messagesIn: number;
  messagesOut: number;
  /** Silence measured when the last dead link was detected, in ms. */
  lastDeadLinkSilenceMs: number | undefined;
  /** The store's journal (the `store` option); undefined without one. */
  store: StoreStats | undefined;
}

// Errors after which retrying cannot help: the server refuses us.
const FATAL: ReadonlySet<string> = new Set([
  ErrorCode.AUTH_FAILED,
  ErrorCode.TLS_FAILED,
  ErrorCode.BAD_HELLO,
  ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.STORE_DAMAGED,
  ErrorCode.STORE_FAILED,
  // The way to connect cannot work here (TCP in a browser, no WebSocket to load).
  ErrorCode.INVALID_OPTION,
]);

// The endpoint is not a Tether server. Fatal at the first connect (a wrong address); once a
// session has existed it is a transient: a garbled start of a link, or an HTTP load balancer
// answering while the servers behind it are replaced.
const NOT_TETHER: ReadonlySet<string> = new Set([
  ErrorCode.PREFACE_HTTP,
  ErrorCode.PREFACE_TLS,
  ErrorCode.PREFACE_INVALID,
]);

// Bytes waiting to be written to the server beyond our messages in flight (replies, file
// chunks under their low-water mark): past it the server is not read until the socket drains.
const REPLY_BACKLOG_LIMIT = 1024 * 1024;

/**
 * A resilient connection to a Tether server. It reconnects with jittered backoff, resumes its
 * session, and delivers messages exactly once and in order in both directions across link drops
 * while the server keeps the session (at-least-once, with stable ids, after a session loss).
 *
 * ```ts
 * const client = new TetherClient({ host: 'localhost', port: 7070 });
 * client.on('message', (m) => console.log(m.text()));
 * await client.connect();
 * await client.send('hello');
 * ```
 */
export class TetherClient extends EventEmitter<ClientEvents> {
  readonly #options: ResolvedClientOptions;
  readonly #scheduler: Scheduler;
  readonly #clientId: string;
  readonly #abort = new AbortController();
  readonly #outbox: Outbox;
  readonly #session: ClientSession;
  readonly #requests: PendingRequests;
  readonly #store: ClientStore | undefined;
  #storeClosed: Promise<void> = Promise.resolve();
  /** The heartbeat of the one connection at a time. */
  readonly #deadlines: Deadlines<Connection<PendingSend>>;
  #pumpQueued = false;
  #state: ClientState = ClientState.IDLE;
  #connection: Connection<PendingSend> | undefined;
  #retryAfterMs: number | undefined;
  /** Delayed attempts in the current outage; reset once a connection proves healthy. */
  #retry = 0;
  #filesClosed: Promise<void> = Promise.resolve();
  /** Largest frame the server accepts: our own limit until a WELCOME says otherwise. */
  #peerMaxFrame: number;
  #reconnects = 0;
  #messagesIn = 0;
  #messagesOut = 0;
  #lastDeadLinkSilenceMs: number | undefined;
  #connected: Promise<void> | undefined;
  #settleConnected: ((error?: Error) => void) | undefined;
  /** The id of the last message `publish()` accepted. */
  #published = 0;
  /** Failures of published messages, reported together once the current call returned. */
  #publishFailures: PublishFailure[] = [];

  constructor(options: ClientOptions) {
    super();
    this.#options = resolveClientOptions(options);
    this.#scheduler = this.#options.scheduler;
    const store = this.#openStore();
    this.#store = store;
    this.#clientId = store?.clientId ?? this.#options.clientId ?? randomUUID();
    this.#peerMaxFrame = this.#options.maxFrame;
    this.#requests =
      store === undefined
        ? new PendingRequests(this.#scheduler)
        : new PendingRequests(this.#scheduler, store.firstRequestId, (id) =>
            store.useRequestId(id),
          );
    this.#deadlines = new Deadlines(this.#scheduler, (connection, dueAt) =>
      connection.deadline(dueAt),
    );
    this.#outbox = new Outbox(
      this.#clientId,
      {
        maxMessages: this.#options.maxQueuedMessages,
        maxBytes: this.#options.maxQueuedBytes,
        overflow: this.#options.overflow,
      },
      this.#scheduler,
      this.#schedulePump,
      (entry) => this.emit('drop', { payload: entry.payload, reason: 'overflow' }),
      store?.outbound,
    );
    this.#session = new ClientSession(
      this.#outbox.stream,
      {
        data: (frame) => this.#onData(frame),
        acked: (entries) => this.#onAcked(entries),
        rtt: (stats) => this.emit('heartbeat', stats),
        transferEngine: () => this.#transferEngine(),
      },
      store === undefined ? undefined : { ...store.session, log: store },
    );
    const damage = store?.damage ?? [];
    // After the constructor returns, so that listeners added right after it hear of it.
    if (damage.length > 0) queueMicrotask(() => this.#reportDamage(damage));
  }

  /** Current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** This client's stable id. */
  get clientId(): string {
    return this.#clientId;
  }

  /**
   * With a store: the messages sent before the restart (by an earlier client on the store) and
   * not yet acknowledged, restored from the journal in send order. Each `receipt` settles as
   * the original `send()` would have. Empty without a store, or when nothing was pending.
   */
  get restored(): readonly RestoredMessage[] {
    return this.#store?.restored ?? [];
  }

  /**
   * Resolves once every message accepted by `send()` so far is journaled: safe from a crash of
   * the process, and under `sync: 'batch'` of the machine. At once without a store (nothing is
   * kept) or when nothing is pending.
   */
  journaled(): Promise<void> {
    return this.#store?.journaled() ?? Promise.resolve();
  }

  /**
   * Connects and keeps reconnecting until `close()`. Resolves on the first established session;
   * rejects if the client is closed first or retries run out.
   */
  connect(): Promise<void> {
    if (this.#connected !== undefined) return this.#connected;
    if (this.#state === ClientState.CLOSED) return Promise.reject(closedError());
    this.#connected = new Promise<void>((resolve, reject) => {
      this.#settleConnected = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.#setState(ClientState.CONNECTING, 'connect() called');
    void this.#run();
    return this.#connected;
  }

  /**
   * Sends `payload` (bytes, or a string as UTF-8). Resolves when the server's application has
   * received it. Works while offline: the message waits in the bounded outbox.
   *
   * A Buffer or typed array is kept by reference, not copied, until the promise settles (it is
   * written when the link has room, and again after a reconnect if it was not acknowledged):
   * do not change its bytes before then.
   */
  send(payload: Payload, options: SendOptions = {}): Promise<SendReceipt> {
    return new Promise((resolve, reject) => {
      this.#submit(payloadBuffer(payload), 0, 0, options, reject, resolve);
    });
  }

  /**
   * Sends `payload` (bytes, or a string as UTF-8) like `send()`, with the same exactly-once,
   * ordered delivery and the same outbox, but without a promise: returns the message's publish
   * id (1, 2, 3 ... per client). A message that ends without an acknowledgement is reported once
   * by the `publishFailed` event with that id; `flush()` waits for acknowledgements.
   *
   * Never waits: when the outbox has no room it throws QUEUE_FULL (under the 'drop-oldest'
   * policy it drops the oldest queued message instead; under 'wait' it throws as 'reject' does).
   * A payload that is not bytes or a string throws INVALID_OPTION, one too large for the
   * server's frames MESSAGE_TOO_LARGE, a closed client CLOSED. A Buffer is kept by reference
   * until the message ends: do not change it before then.
   */
  publish(payload: Payload, options?: PublishOptions): number {
    const buffer = payloadBuffer(payload);
    const ttl = options?.ttlMs;
    const refusal = this.#refusal(buffer, 0, ttl);
    if (refusal !== undefined) throw refusal;
    const expiresAt = ttl === undefined ? Number.POSITIVE_INFINITY : this.#scheduler.now() + ttl;
    const id = this.#published + 1;
    const error = this.#outbox.offer(new Published(buffer, expiresAt, id, this.#publishFailed));
    if (error !== undefined) throw error;
    this.#published = id;
    return id;
  }

  /**
   * Resolves once every message sent or published before the call has ended: acknowledged by
   * the server, or failed and reported (its `send()` promise rejected, or `publishFailed`).
   * Rejects with FLUSH_TIMEOUT after `timeoutMs`, ABORTED on `signal`, and with the client's
   * error when it closes first (CLOSED, RETRIES_EXHAUSTED, STORE_FAILED ...).
   */
  flush(options: FlushOptions = {}): Promise<void> {
    const { timeoutMs, signal } = options;
    if (this.#abort.signal.aborted) return Promise.reject(closedError());
    if (timeoutMs !== undefined && !(timeoutMs > 0)) {
      return Promise.reject(new TypeError(`timeoutMs must be > 0, got ${timeoutMs}`));
    }
    return this.#outbox.flush(timeoutMs, signal);
  }

  /** Sends `value` as JSON. */
  sendJson(value: unknown, options: SendOptions = {}): Promise<SendReceipt> {
    return this.send(JSON.stringify(value), options);
  }

  /** Sends a request and resolves with the server handler's reply. Survives reconnects. */
  request(payload: Payload, options: RequestOptions = {}): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = payloadBuffer(payload);
    } catch (error) {
      return Promise.reject(error);
    }
    const { id, reply } = this.#requests.open(
      options.timeoutMs ?? 30_000,
      options.signal,
      (requestId) =>
        this.#outbox.withdraw(
          (e) => e.requestId === requestId && e.flags === DataFlag.REQUEST,
          new TetherError(ErrorCode.ABORTED, 'request given up'),
        ),
    );
    // A request that cannot even be queued fails with the outbox's own code.
    if (this.#requests.has(id)) {
      const submitOptions: SendOptions =
        options.signal === undefined ? {} : { signal: options.signal };
      this.#submit(bytes, DataFlag.REQUEST, id, submitOptions, (error) =>
        this.#requests.fail(id, error),
      );
    }
    return reply;
  }

  /**
   * Closes the client: with `flush`, first waits until queued messages are acknowledged (up to
   * `timeoutMs`, default 5000). Then stops reconnecting, closes the socket, clears every timer,
   * and rejects what is still pending with CLOSED.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#state !== ClientState.CLOSED) {
      if (options.flush) await this.#drained(options.timeoutMs ?? 5000);
      this.#shutdown('close() called', undefined);
    }
    await this.#filesClosed;
    await this.#storeClosed;
  }

  /**
   * Sends a file to the server: resumable (after a link drop, and after this process restarts:
   * the transfer id comes from the file's fingerprint), verified by SHA-256 on arrival, queued
   * while offline. Chunks interleave with messages, so sends are not stuck behind the file.
   * `file` is a path, or a Blob (a File from an `<input>`: the only kind in a browser), hashed as
   * it is read.
   */
  sendFile(file: string | Blob, options: SendFileOptions = {}): Transfer {
    return this.#session.files.sendFile(file, options);
  }

  /** A snapshot of counters and gauges. */
  stats(): ClientStats {
    const stream = this.#outbox.stream;
    const session = this.#session;
    return {
      state: this.#state,
      sessionId: session.id === '' ? undefined : session.id,
      rtt: session.rttEstimator.stats,
      outbox: {
        depth: stream.count,
        queued: stream.queuedCount,
        inFlight: stream.inFlightCount,
        bytes: stream.bytes,
        waiting: this.#outbox.waiting,
      },
      pendingRequests: this.#requests.size,
      transfers: session.filesIfStarted?.activeTransfers ?? 0,
      reconnects: this.#reconnects,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      lastDeadLinkSilenceMs: this.#lastDeadLinkSilenceMs,
      store: this.#store?.stats(),
    };
  }

  // Queues a DATA frame; `reject` gets any failure (never throws), `resolve` the acknowledgement.
  #submit(
    payload: Buffer,
    flags: number,
    requestId: number,
    options: SendOptions,
    reject: (error: Error) => void,
    resolve: (receipt: SendReceipt) => void = ignore,
  ): void {
    const error = this.#refusal(payload, flags, options.ttlMs);
    if (error !== undefined) {
      reject(error);
      return;
    }
    const ttl = options.ttlMs;
    const expiresAt = ttl === undefined ? Number.POSITIVE_INFINITY : this.#scheduler.now() + ttl;
    this.#outbox.submit(
      new SendEntry(payload, flags, requestId, expiresAt, resolve, reject),
      options.signal,
    );
  }

  // A published message ended without an acknowledgement: reported once the current call (the
  // publish() that dropped it, close(), an ACK read ...) returned, so that a listener never runs
  // inside the outbox's work, and in the order the messages failed.
  #publishFailed = (entry: Published, error: Error): void => {
    // The outbox fails messages with TetherErrors; anything else could only be the store's.
    const failure = error instanceof TetherError ? error : storeFailed(error);
    const pending = this.#publishFailures;
    pending.push({
      id: entry.publishId,
      seq: entry.seq,
      payload: entry.payload,
      code: failure.code,
      error: failure,
    });
    if (pending.length === 1) queueMicrotask(this.#reportPublishFailures);
  };

  #reportPublishFailures = (): void => {
    const failures = this.#publishFailures;
    this.#publishFailures = [];
    for (const failure of failures) {
      try {
        this.emit('publishFailed', failure);
      } catch (cause) {
        this.emit(
          'error',
          new TetherError(ErrorCode.HANDLER_FAILED, 'a publishFailed listener threw', { cause }),
        );
      }
    }
  };

  // Why a send cannot even be queued, or undefined.
  #refusal(payload: Buffer, flags: number, ttl: number | undefined): Error | undefined {
    // Aborted: closing, even before the state says so (a listener called during the close).
    if (this.#abort.signal.aborted) return closedError();
    if (dataFrameLength(payload.length, flags) > this.#peerMaxFrame) {
      return tooLarge(payload.length, this.#peerMaxFrame);
    }
    if (ttl !== undefined && !(ttl > 0)) return new TypeError(`ttlMs must be > 0, got ${ttl}`);
    return undefined;
  }

  // Sends made in one synchronous burst are taken in one pump: one window check, one batch.
  #schedulePump = (): void => {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  };

  #pump(): void {
    if (this.#state !== ClientState.CONNECTED) return;
    this.#outbox.expireDue();
    this.#connection?.pump();
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let reason = 'connect() called';
    while (!signal.aborted) {
      let attempt: { connection: Connection<PendingSend>; handshake: ClientHandshake };
      const outageStart = this.#scheduler.now();
      try {
        attempt = await pRetry((attemptNumber) => this.#attempt(attemptNumber, reason), {
          retries: this.#options.retries,
          minTimeout: 0,
          signal,
          onFailedAttempt: ({ error }) => {
            reason = error.message;
          },
          shouldRetry: ({ error }) =>
            !this.#isFatal(error) &&
            this.#scheduler.now() - outageStart < this.#options.maxRetryTime,
        });
      } catch (error) {
        if (signal.aborted) return;
        const cause = error instanceof TetherError ? error : undefined;
        const fatal =
          cause !== undefined && this.#isFatal(cause)
            ? cause
            : new TetherError(
                ErrorCode.RETRIES_EXHAUSTED,
                `gave up reconnecting: ${(error as Error).message}`,
                { cause: error },
              );
        this.emit('error', fatal);
        this.#shutdown(fatal.message, fatal);
        return;
      }
      const openedAt = this.#scheduler.now();
      const info: CloseInfo = await attempt.handshake.ended;
      this.#connection = undefined;
      if (signal.aborted) return;
      if (this.#store !== undefined && info.error.code === ErrorCode.SEQUENCE_GAP) {
        this.#diverged(`the server's stream skipped past the store's position`, info.error);
        return;
      }
      if (this.#scheduler.now() - openedAt >= this.#options.healthyAfterMs) this.#retry = 0;
      if (info.silentMs !== undefined) this.#lastDeadLinkSilenceMs = info.silentMs;
      reason = info.error.message;
      this.#setState(ClientState.RECONNECTING, reason, info.error);
    }
  }

  // One connection attempt: wait out the backoff (every attempt but the very first connect),
  // then connect and handshake.
  async #attempt(
    attemptNumber: number,
    reason: string,
  ): Promise<{ connection: Connection<PendingSend>; handshake: ClientHandshake }> {
    const signal = this.#abort.signal;
    const scheduler = this.#scheduler;
    if (this.#state === ClientState.RECONNECTING || attemptNumber > 1) {
      const attempt = ++this.#retry;
      const delayMs =
        this.#retryAfterMs !== undefined
          ? retryAfterDelay(this.#retryAfterMs, this.#options.random)
          : backoffDelay(attempt, this.#options.backoff, this.#options.random);
      this.#retryAfterMs = undefined;
      this.emit('reconnecting', { attempt, delayMs, reason });
      await sleep(delayMs, signal, scheduler);
    }
    const { connectTimeoutMs } = this.#options;
    let connection: Connection<PendingSend> | undefined;
    const deadline = scheduler.setTimeout(
      () =>
        connection?.destroy(
          new TetherError(ErrorCode.CONNECT_TIMEOUT, `no session within ${connectTimeoutMs} ms`),
        ),
      connectTimeoutMs,
    );
    const handshake = new ClientHandshake({
      hello: (challenge) => this.#hello(challenge),
      welcome: (opened, body) => this.#welcome(opened, body),
      retryAfter: (retryAfterMs) => {
        this.#retryAfterMs = retryAfterMs;
      },
    });
    try {
      const transport = await this.#openTransport(signal);
      connection = new Connection<PendingSend>(
        transport,
        handshake,
        {
          scheduler,
          deadlines: this.#deadlines,
          maxFrame: this.#options.maxFrame,
          replyBacklogLimit: REPLY_BACKLOG_LIMIT,
        },
        this.#serverName(),
      );
      handshake.start(connection);
      this.#connection = connection;
      if (signal.aborted) throw closedError();
      await handshake.established;
    } catch (error) {
      connection?.destroy(error instanceof TetherError ? error : closedError());
      throw error;
    } finally {
      scheduler.clearTimeout(deadline);
    }
    if (this.#state === ClientState.RECONNECTING) this.#reconnects++;
    this.#setState(ClientState.CONNECTED, 'session established');
    this.#settleConnected?.();
    this.#pump();
    return { connection, handshake };
  }

  // The byte stream of one attempt: the `transport` option's, or TCP (TLS) to host:port.
  async #openTransport(signal: AbortSignal): Promise<Transport> {
    const { host, port, tls, connectTimeoutMs, transport, url } = this.#options;
    if (transport !== undefined) return transport(signal);
    if (url !== undefined) return openWebSocket(url, connectTimeoutMs, signal, this.#scheduler);
    const socket = await openSocket({ host, port, tls }, connectTimeoutMs, signal, this.#scheduler);
    socket.setNoDelay(true);
    return socket;
  }

  // The server as errors, stats and file ids name it: its URL, or host:port.
  #serverName(): string {
    const { host, port, url } = this.#options;
    return url ?? `${host}:${port}`;
  }

  #isFatal(error: unknown): error is TetherError {
    if (!(error instanceof TetherError)) return false;
    return FATAL.has(error.code) || (NOT_TETHER.has(error.code) && this.#session.id === '');
  }

  async #hello(challenge: ChallengeBody): Promise<HelloBody> {
    const { secret, credentials } = this.#options;
    const session = this.#session;
    // HELLO acknowledges what the application handled (and tells what the server acknowledged):
    // with a store, only positions already durable.
    await this.#store?.journaled();
    const hello: HelloBody = {
      versions: [PROTOCOL_VERSION],
      clientId: this.#clientId,
      delivered: session.inbound.delivered,
      acked: session.outbound.acked,
      maxFrame: this.#options.maxFrame,
    };
    if (session.resumeToken !== '') hello.resumeToken = session.resumeToken;
    // The shared-secret proof when the server asks for it; credentials (fetched fresh on every
    // connection) for the server's own hook, alongside the proof or on their own.
    const useSecret = secret !== undefined && challenge.auth.includes(HMAC_AUTH_METHOD);
    if (!useSecret && credentials === undefined) return hello;
    const auth: NonNullable<HelloBody['auth']> = {
      method: useSecret ? HMAC_AUTH_METHOD : CREDENTIALS_AUTH_METHOD,
    };
    if (useSecret) auth.proof = await authProof(secret, challenge.nonce, this.#clientId);
    if (credentials !== undefined) auth.credentials = await credentials();
    hello.auth = auth;
    return hello;
  }

  // WELCOME: take up the session (resumed or new) and open it on the connection.
  #welcome(connection: Connection<PendingSend>, body: WelcomeBody): void {
    const store = this.#store;
    const sent = this.#outbox.stream.sent;
    if (store !== undefined && body.resumed && body.sessionId === this.#session.id) {
      if (body.delivered > sent) {
        // Only a store that lost durable records can be behind the server: fatal (the error
        // ends the attempt, then the client), and the next open of the store starts over.
        store.diverged();
        throw new TetherError(
          ErrorCode.STORE_DAMAGED,
          `the server delivered up to seq ${body.delivered} of this client's stream, the store knows of ${sent}: it lost records; open it again to start over`,
        );
      }
    }
    const adopted = this.#session.adopt(body);
    if (adopted instanceof ProtocolError) throw adopted;
    if (store !== undefined) {
      try {
        store.adoptSession(body.sessionId, body.resumeToken, adopted.resumed);
      } catch (error) {
        throw storeFailed(error);
      }
    }
    this.#adoptPeerMaxFrame(body.maxFrame);
    this.emit('session', {
      sessionId: body.sessionId,
      resumed: adopted.resumed,
      lost: !adopted.resumed && adopted.previousId !== undefined,
      previousSessionId: adopted.previousId,
      resent: adopted.resend.length,
    });
    const { pingIntervalMs, deadAfterMs, maxInFlightBytes, maxFrame } = this.#options;
    connection.open(
      this.#session,
      {
        heartbeat: { pingIntervalMs: Math.min(pingIntervalMs, body.pingIntervalMs), deadAfterMs },
        maxInFlightBytes,
        maxFrame,
        peerMaxFrame: this.#peerMaxFrame,
        deadCode: ErrorCode.HEARTBEAT_TIMEOUT,
      },
      adopted.resend,
    );
  }

  // Messages queued before we knew the server's frame limit may not fit it: fail them now
  // rather than have the server drop the link over them on every reconnect.
  #adoptPeerMaxFrame(maxFrame: number): void {
    this.#peerMaxFrame = Math.min(maxFrame, ABSOLUTE_MAX_FRAME);
    const limit = this.#peerMaxFrame;
    for (const entry of this.#outbox.stream.queued()) {
      if (dataFrameLength(entry.payload.length, entry.flags) > limit) {
        this.#outbox.withdraw(
          (e) => dataFrameLength(e.payload.length, e.flags) > limit,
          tooLarge(entry.payload.length, limit),
        );
        break;
      }
    }
  }

  #onData(frame: DataFrame): void {
    if (frame.flags & DataFlag.RESPONSE) {
      this.#requests.settle(frame.requestId, frame.payload, (frame.flags & DataFlag.ERROR) !== 0);
      return;
    }
    this.#messagesIn++;
    if (frame.flags & DataFlag.REQUEST) {
      // Server-to-client requests are not part of this version: answer with an error.
      const body = Buffer.from(
        JSON.stringify({
          code: ErrorCode.REQUEST_FAILED,
          message: 'client has no request handler',
        }),
      );
      this.#submit(body, DataFlag.RESPONSE | DataFlag.ERROR, frame.requestId, {}, () => {});
      return;
    }
    let redelivered = false;
    if (this.#store !== undefined) {
      try {
        redelivered = this.#store.handing(frame.seq);
      } catch (error) {
        // Not recorded, not handed: the next client on the store gets it.
        this.#storeFailed(storeFailed(error));
        return;
      }
    }
    const message = new Message(
      `${this.#session.id}:${frame.seq}`,
      frame.seq,
      frame.payload,
      redelivered,
    );
    try {
      this.emit('message', message);
    } catch (cause) {
      // A listener's bug must not cost the connection: report it and go on.
      this.emit(
        'error',
        new TetherError(ErrorCode.HANDLER_FAILED, 'a message listener threw', { cause }),
      );
    }
  }

  #onAcked(entries: PendingSend[]): void {
    this.#messagesOut += entries.length;
    this.#outbox.released(entries);
  }

  // The session's file engine, made at first use: Node's (paths, downloadDir) or the browser's.
  #transferEngine(): FileEngine {
    return makeFileEngine(this.#options, this.#serverName(), {
      file: (file) => this.emit('file', file),
      error: (error) => this.emit('error', error),
    });
  }

  // Resolves when the outbox is empty (acknowledged, expired or dropped) or after `timeoutMs`.
  #drained(timeoutMs: number): Promise<void> {
    let timer: unknown;
    const timeout = new Promise<void>((resolve) => {
      timer = this.#scheduler.setTimeout(resolve, timeoutMs);
    });
    return Promise.race([this.#outbox.whenEmpty(), timeout]).finally(() =>
      this.#scheduler.clearTimeout(timer),
    );
  }

  // Opens the store of the `store` option, if any (synchronously: it restores the outbox).
  #openStore(): ClientStore | undefined {
    const options = this.#options.store;
    if (options === undefined) return undefined;
    return ClientStore.open(
      {
        dir: options.dir,
        sync: options.sync === StoreSync.BATCH,
        clientId: this.#options.clientId,
        scheduler: this.#scheduler,
      },
      (error) => this.#storeFailed(error),
    );
  }

  #reportDamage(damage: readonly StoreDamage[]): void {
    for (const info of damage) this.emit('damage', info);
  }

  // The store cannot write: nothing it promised holds any more, so the client stops.
  #storeFailed(error: TetherError): void {
    if (this.#state === ClientState.CLOSED) return;
    this.emit('error', error);
    this.#shutdown(error.message, error);
  }

  // The store is behind the server (it lost records): recorded, so the next open starts over.
  #diverged(why: string, cause: TetherError): void {
    this.#store?.diverged();
    const error = new TetherError(
      ErrorCode.STORE_DAMAGED,
      `${why}: the store lost records; open it again to start over`,
      { cause },
    );
    this.emit('error', error);
    this.#shutdown(error.message, error);
  }

  #shutdown(reason: string, error: TetherError | undefined): void {
    if (this.#state === ClientState.CLOSED) return;
    this.#abort.abort();
    const closed = error ?? closedError();
    this.#connection?.end(closed);
    this.#connection = undefined;
    // Before the outbox is failed: what it holds stays in the store for the next client.
    this.#storeClosed = this.#store?.close() ?? Promise.resolve();
    this.#outbox.failAll(closed);
    this.#requests.failAll(closed);
    this.#filesClosed = this.#session.filesIfStarted?.close(closed) ?? Promise.resolve();
    this.#setState(ClientState.CLOSED, reason, error);
    this.#settleConnected?.(closed);
    this.emit('close', reason);
  }

  #setState(state: ClientState, reason: string, error?: TetherError): void {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.emit(
      'state',
      error === undefined ? { state, previous, reason } : { state, previous, reason, error },
    );
  }
}

function tooLarge(bytes: number, maxFrame: number): TetherError {
  return new TetherError(
    ErrorCode.MESSAGE_TOO_LARGE,
    `message of ${bytes} bytes does not fit the server's frame limit of ${maxFrame}`,
  );
}

function storeFailed(error: unknown): TetherError {
  if (error instanceof TetherError) return error;
  return new TetherError(
    ErrorCode.STORE_FAILED,
    `the client's store failed: ${(error as Error).message}`,
    { cause: error },
  );
}

// The bytes of a payload: a string as UTF-8, a Uint8Array (a Buffer) as it is.
function payloadBuffer(payload: Payload): Buffer {
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
    throw new TetherError(
      ErrorCode.INVALID_OPTION,
      `payload must be a string or a Uint8Array, got ${payload === null ? 'null' : typeof payload}`,
    );
  }
  return toBuffer(payload);
}

function closedError(): TetherError {
  return new TetherError(ErrorCode.CLOSED, 'the client is closed');
}

function ignore(): void {}
