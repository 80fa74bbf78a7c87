import { Session } from '@tether/core';
import type { TransferEngine } from '@tether/files';
import {
  type DataFrame,
  type OutboundEntry,
  ReliableInbound,
  ReliableOutbound,
  type RttStats,
  type SessionLog,
  TetherError,
} from '@tether/protocol';
import type { TlsIdentity } from './options.js';
import { Peer, type PeerSendReceipt } from './peer.js';
import type { RttHistory } from './rtt-history.js';

/** One message to the client (a send or a response) until the client acknowledges it. */
export interface PeerPendingSend extends OutboundEntry {
  resolve(receipt: PeerSendReceipt): void;
  reject(error: Error): void;
  /** Told once the message is recorded where the session lives (its id is then known). */
  accepted?: ((receipt: PeerSendReceipt) => void) | undefined;
  /** Its sequence number in a shared store, known before it is transmitted. */
  storeSeq?: number;
  /** Loaded from a shared store: whoever sent it is told through the store, not by a promise here. */
  fromStore?: boolean;
}

// Made with `new`, not as object literals: V8 may pretenure a literal's allocation site (every
// later object born in the old generation, for the process's life) when a burst's messages all
// survive a scavenge, and a process then pays a mark-compact every few scavenges (the client's
// "two modes", bench/README.md). A class instance has no allocation site to pretenure.
class PeerSendEntry implements PeerPendingSend {
  readonly payload: Buffer;
  readonly flags: number;
  readonly requestId: number;
  seq = 0;
  resolve: (receipt: PeerSendReceipt) => void;
  reject: (error: Error) => void;
  accepted: ((receipt: PeerSendReceipt) => void) | undefined;

  constructor(
    payload: Buffer,
    flags: number,
    requestId: number,
    resolve: (receipt: PeerSendReceipt) => void,
    reject: (error: Error) => void,
    accepted: ((receipt: PeerSendReceipt) => void) | undefined,
  ) {
    this.payload = payload;
    this.flags = flags;
    this.requestId = requestId;
    this.resolve = resolve;
    this.reject = reject;
    this.accepted = accepted;
  }
}

class Receipt implements PeerSendReceipt {
  readonly id: string;
  readonly seq: number;
  constructor(id: string, seq: number) {
    this.id = id;
    this.seq = seq;
  }
}

/** Where a session's messages go when it lives in a shared store (see redis/redis-store.ts). */
export interface SessionStoreHooks {
  /** Records a message to the client in the store; the store queues it once it has a seq. */
  append(session: PeerSession, entry: PeerPendingSend): void;
  /** Holds a delivered DATA frame until the store marks it, then hands it to the application. */
  hold(frame: DataFrame): void;
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
  /** Its last RTT samples, when the server keeps them (made at the first sample). */
  rttHistory: RttHistory | undefined = undefined;
  messagesIn = 0;
  messagesOut = 0;
  /** Frees the session when it fires (while disconnected). */
  ttlTimer: unknown;
  /**
   * Client messages up to this seq may have reached the application before (a crashed instance
   * delivered them without recording it): delivered again with `redelivered: true`.
   */
  redeliverUpTo = 0;
  /** Set when the session lives in a shared store. */
  store: SessionStoreHooks | undefined;
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
      /** A session loaded from a shared store: where its stream positions are recorded. */
      log?: SessionLog;
      /** Highest server sequence the client acknowledged (loaded sessions). */
      acked?: number;
      /** Messages sent and not yet acknowledged, oldest first, seq `acked + 1` on (loaded sessions). */
      retained?: PeerPendingSend[];
    },
  ) {
    super(
      new ReliableOutbound<PeerPendingSend>(init.acked ?? 0),
      new ReliableInbound(init.clientAcked),
      init.log,
    );
    if (init.retained !== undefined && init.retained.length > 0) {
      // Transmitted before (their seqs are taken): in flight again, re-sent on resume.
      for (const entry of init.retained) this.outbound.enqueue(entry);
      this.outbound.takeSendable();
    }
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
    if (this.store === undefined) this.#host.data(this, frame);
    else this.store.hold(frame);
  }

  override acked(entries: PeerPendingSend[]): void {
    this.messagesOut += entries.length;
    for (const entry of entries) entry.resolve(new Receipt(`${this.id}:${entry.seq}`, entry.seq));
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
    accepted?: (receipt: PeerSendReceipt) => void,
  ): void {
    const ended = this.#endedBy;
    if (ended !== undefined) {
      // The code that ended the session (SLOW_CONSUMER, CLOSED ...), for pending and later sends.
      reject(new TetherError(ended.code, `the session has ended: ${ended.message}`));
      return;
    }
    if (this.store !== undefined) {
      this.store.append(
        this,
        new PeerSendEntry(payload, flags, requestId, resolve, reject, accepted),
      );
      return;
    }
    this.outbound.enqueue(new PeerSendEntry(payload, flags, requestId, resolve, reject, undefined));
    if (accepted !== undefined) {
      // Server messages are never dropped from the queue: its place is its future seq.
      const seq = this.outbound.sent + this.outbound.queuedCount;
      accepted(new Receipt(`${this.id}:${seq}`, seq));
    }
    this.#host.queued(this);
  }

  /** Queues a message the store gave its seq (in seq order). */
  queueStored(entry: PeerPendingSend): void {
    if (this.#endedBy !== undefined) {
      entry.reject(
        new TetherError(this.#endedBy.code, `the session has ended: ${this.#endedBy.message}`),
      );
      return;
    }
    this.outbound.enqueue(entry);
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
