import type { SendFileOptions, Transfer } from '@tether/files';
import { ErrorCode, type Payload, type RttStats, TetherError, toBuffer } from '@tether/protocol';
import type { TlsIdentity } from './options.js';
import type { PeerSession } from './peer-session.js';

/** Resolution of `peer.send()`: the client's application received the message. */
export interface PeerSendReceipt {
  /** `${sessionId}:${seq}`. */
  id: string;
  seq: number;
}

/** Options of `peer.send()` and `server.sendTo()`. */
export interface PeerSendOptions {
  /**
   * Called once the message is accepted where the session lives, with its id: in memory at
   * once; with a shared store (Redis) when the store recorded it. From then on it is delivered
   * exactly once, whichever instance the client is on, even if this one dies.
   */
  onAccepted?: (receipt: PeerSendReceipt) => void;
}

/** Counters of a peer. */
export interface PeerStats {
  id: string;
  clientId: string;
  remoteAddress: string;
  connected: boolean;
  rtt: RttStats | undefined;
  /** Wall-clock time (ms since epoch) of the last inbound byte. */
  lastSeen: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** Messages to this client not yet acknowledged, and their bytes. */
  queueDepth: number;
  queueBytes: number;
  /** File transfers in progress, both ways. */
  transfers: number;
}

/**
 * One client session as the server application sees it. It outlives the TCP connection: while
 * the session lives (until its TTL after a disconnect), `send()` queues messages and the client
 * receives them exactly once, in order, when it resumes.
 */
export class Peer {
  readonly #session: PeerSession;

  /** @internal Made by the server for each session; applications receive peers. */
  constructor(session: PeerSession) {
    this.#session = session;
  }

  /** Session id (public; not the resume token). */
  get id(): string {
    return this.#session.id;
  }

  /** The client's own id. */
  get clientId(): string {
    return this.#session.clientId;
  }

  /**
   * Who the client proved to be: the `authenticate` hook's identity, `tls:<fingerprint>` for an
   * authorized client certificate, else `client:<clientId>`. The session is bound to it.
   */
  get identity(): string {
    return this.#session.identity;
  }

  /** Remote `address:port` of the latest connection. */
  get remoteAddress(): string {
    return this.#session.remoteAddress;
  }

  /** What the TLS layer established on the latest connection; undefined over plain TCP. */
  get tls(): TlsIdentity | undefined {
    return this.#session.tlsIdentity;
  }

  /** Whether a connection is up right now. */
  get connected(): boolean {
    return this.#session.connection !== undefined;
  }

  /** Whether the session has ended (closed, evicted past its TTL, or the server closed). */
  get closed(): boolean {
    return this.#session.ended;
  }

  /**
   * Sends `payload` to the client with the same guarantee as the client's `send()`: resolves
   * when the client's application received it; exactly once and in order across reconnects.
   * After the session ended it rejects with the code that ended it (CLOSED, SLOW_CONSUMER ...).
   */
  send(payload: Payload, options?: PeerSendOptions): Promise<PeerSendReceipt> {
    return new Promise((resolve, reject) => {
      this.#session.enqueue(toBuffer(payload), 0, 0, reject, resolve, options?.onAccepted);
    });
  }

  /** Sends `value` as JSON. */
  sendJson(value: unknown, options?: PeerSendOptions): Promise<PeerSendReceipt> {
    return this.send(JSON.stringify(value), options);
  }

  /**
   * Sends a file to this client (into its `downloadDir`): resumable, verified by SHA-256,
   * interleaved with messages, queued while the client is away (until the session expires).
   */
  sendFile(path: string, options: SendFileOptions = {}): Transfer {
    return this.#session.files.sendFile(path, options);
  }

  /**
   * Drops the current connection, keeping the session: the client reconnects and resumes it
   * with nothing lost (an operator's "reconnect now", or moving clients between instances).
   * No-op while disconnected.
   */
  disconnect(reason = 'the server dropped the connection'): void {
    this.#session.host.disconnect(
      this.#session,
      new TetherError(ErrorCode.CONNECTION_LOST, reason),
    );
  }

  /** Ends the session: the client is told (ERROR with code CLOSED) and cannot resume it. */
  close(): void {
    this.#session.host.close(
      this.#session,
      new TetherError(ErrorCode.CLOSED, 'the server closed this session'),
    );
  }

  /**
   * The session's last RTT samples in ms, oldest first: as many as the `dashboard` option's
   * `rttHistory` keeps (30 by default); empty without a dashboard (the server keeps none).
   */
  rttHistory(): number[] {
    return this.#session.rttHistory?.toArray() ?? [];
  }

  /** A snapshot of this peer's counters. */
  stats(): PeerStats {
    const s = this.#session;
    return {
      id: s.id,
      clientId: s.clientId,
      remoteAddress: s.remoteAddress,
      connected: s.connection !== undefined,
      rtt: s.rttEstimator.stats,
      lastSeen: s.lastSeen,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      messagesIn: s.messagesIn,
      messagesOut: s.messagesOut,
      queueDepth: s.outbound.count,
      queueBytes: s.outbound.bytes,
      transfers: s.filesIfStarted?.activeTransfers ?? 0,
    };
  }
}
