import { Session } from '@tether/core';
import type { TransferEngine } from '@tether/files';
import {
  type DataFrame,
  type OutboundEntry,
  ReliableInbound,
  ReliableOutbound,
  type RttStats,
  TetherError,
} from '@tether/protocol';
import type { TlsIdentity } from './options.js';
import { Peer, type PeerSendReceipt } from './peer.js';

/** One message to the client (a send or a response) until the client acknowledges it. */
export interface PeerPendingSend extends OutboundEntry {
  resolve(receipt: PeerSendReceipt): void;
  reject(error: Error): void;
}

/** What a session needs from the server that keeps it. */
export interface SessionHost {
  /** A DATA frame from the client, delivered once and in order. */
  data(session: PeerSession, frame: DataFrame): void;
  /** A message was queued: transmit it if connected; enforce the outbound cap. */
  queued(session: PeerSession): void;
  /** The client acknowledged `count` messages. */
  acked(session: PeerSession, count: number): void;
  /** A PONG gave a new RTT sample. */
  rtt(session: PeerSession, stats: RttStats): void;
  /** The application ended the session. */
  close(session: PeerSession, error: TetherError): void;
  /** Drops the connection, keeping the session for a resume. */
  disconnect(session: PeerSession, error: TetherError): void;
  /** Makes the session's file engine (partials belong to its identity). */
  transferEngine(session: PeerSession): TransferEngine;
}

/**
 * The server's side of one client session: the shared session state plus who the client is, its
 * counters and the promise callbacks of messages to it. The application sees it through its
 * {@link Peer}; nothing here is public API.
 */
export class PeerSession extends Session<PeerPendingSend> {
  readonly clientId: string;
  readonly identity: string;
  readonly peer: Peer;
  remoteAddress: string;
  tlsIdentity: TlsIdentity | undefined;
  /** The client's frame limit, from its HELLO. */
  maxFrame = 0;
  messagesIn = 0;
  messagesOut = 0;
  /** Frees the session when it fires (while disconnected). */
  ttlTimer: unknown;
  readonly #host: SessionHost;
  /** Why the session ended, once it has: later sends reject with the same code. */
  #endedBy: TetherError | undefined;

  constructor(
    host: SessionHost,
    init: {
      id: string;
      resumeToken: string;
      clientId: string;
      identity: string;
      remoteAddress: string;
      tlsIdentity: TlsIdentity | undefined;
      /** Highest client sequence an earlier session acknowledged: numbering continues after it. */
      clientAcked: number;
    },
  ) {
    super(new ReliableOutbound<PeerPendingSend>(), new ReliableInbound(init.clientAcked));
    this.#host = host;
    this.id = init.id;
    this.resumeToken = init.resumeToken;
    this.clientId = init.clientId;
    this.identity = init.identity;
    this.remoteAddress = init.remoteAddress;
    this.tlsIdentity = init.tlsIdentity;
    this.peer = new Peer(this);
  }

  /** The session ended (closed, TTL passed, replaced, or the server closed). */
  get ended(): boolean {
    return this.#endedBy !== undefined;
  }

  /** The host, for the public {@link Peer}'s calls. */
  get host(): SessionHost {
    return this.#host;
  }

  override data(frame: DataFrame): void {
    this.#host.data(this, frame);
  }

  override acked(entries: PeerPendingSend[]): void {
    this.messagesOut += entries.length;
    for (const entry of entries) entry.resolve({ id: `${this.id}:${entry.seq}`, seq: entry.seq });
    this.#host.acked(this, entries.length);
  }

  override rtt(stats: RttStats): void {
    this.#host.rtt(this, stats);
  }

  protected override makeFiles(): TransferEngine {
    return this.#host.transferEngine(this);
  }

  /** Queues a DATA frame (message or response) in the reliable stream. */
  enqueue(
    payload: Buffer,
    flags: number,
    requestId: number,
    reject: (error: Error) => void,
    resolve: (receipt: PeerSendReceipt) => void = ignore,
  ): void {
    const ended = this.#endedBy;
    if (ended !== undefined) {
      // The code that ended the session (SLOW_CONSUMER, CLOSED ...), for pending and later sends.
      reject(new TetherError(ended.code, `the session has ended: ${ended.message}`));
      return;
    }
    this.outbound.enqueue({ payload, flags, requestId, seq: 0, resolve, reject });
    this.#host.queued(this);
  }

  /** Marks the session ended and rejects what it still holds. */
  end(error: TetherError): void {
    if (this.#endedBy !== undefined) return;
    this.#endedBy = error;
    for (const entry of this.outbound.clear()) entry.reject(error);
  }
}

function ignore(): void {}
