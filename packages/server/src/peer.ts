import type { SendFileOptions, Transfer, TransferEngine } from '@tether/files';
import {
  ErrorCode,
  type OutboundEntry,
  type Payload,
  ReliableInbound,
  ReliableOutbound,
  RttEstimator,
  type RttStats,
  TetherError,
  toBuffer,
} from '@tether/protocol';
import type { ServerConnection } from './server-connection.js';

/** One message to the client (a send or a response) until the client acknowledges it. */
export interface PeerPendingSend extends OutboundEntry {
  resolve(receipt: PeerSendReceipt): void;
  reject(error: Error): void;
}

/** Resolution of `peer.send()`: the client's application received the message. */
export interface PeerSendReceipt {
  /** `${sessionId}:${seq}`. */
  id: string;
  seq: number;
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

/** What a peer needs from the server that owns it. */
export interface PeerHost {
  /** A message was queued for `peer`: transmit it if connected; enforce the backlog cap. */
  queued(peer: Peer): void;
  /** The application closed the peer. */
  closePeer(peer: Peer, error: TetherError): void;
  /** Makes the file engine of `peer`'s session. */
  transferEngine(peer: Peer): TransferEngine;
}

/**
 * One client session as the server application sees it. It outlives the TCP connection: while
 * the session lives (until its TTL after a disconnect), `send()` queues messages and the client
 * receives them exactly once, in order, when it resumes.
 */
export class Peer {
  /** Session id (public; not the resume token). */
  readonly id: string;
  /** The client's own id. */
  readonly clientId: string;
  /**
   * Who the client proved to be: the `authenticate` hook's identity, `tls:<fingerprint>` for an
   * authorized client certificate, else `client:<clientId>`. The session is bound to it.
   */
  readonly identity: string;
  /** @internal Secret token the client presents to resume. */
  readonly resumeToken: string;
  /** @internal */
  readonly outbound: ReliableOutbound<PeerPendingSend> = new ReliableOutbound<PeerPendingSend>();
  /** @internal */
  readonly inbound: ReliableInbound;
  /** @internal */
  readonly rtt: RttEstimator = new RttEstimator();
  /** @internal The live connection, if any. */
  connection: ServerConnection | undefined;
  /** Made at first use: most sessions never move a file. */
  #files: TransferEngine | undefined;
  /** @internal The client's frame limit, from its HELLO. */
  maxFrame = 0;
  /** @internal Frees the session when it fires. */
  ttlTimer: ReturnType<typeof setTimeout> | undefined;
  remoteAddress: string;
  lastSeen: number = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  readonly #host: PeerHost;
  /** Why the session ended, once it has: later sends reject with the same code. */
  #endedBy: TetherError | undefined;

  /** @internal */
  constructor(
    host: PeerHost,
    id: string,
    resumeToken: string,
    clientId: string,
    identity: string,
    remoteAddress: string,
    clientAcked: number,
  ) {
    this.#host = host;
    this.id = id;
    this.resumeToken = resumeToken;
    this.clientId = clientId;
    this.identity = identity;
    this.remoteAddress = remoteAddress;
    // The client's sequences continue from what an earlier session acknowledged.
    this.inbound = new ReliableInbound(clientAcked);
  }

  /**
   * @internal File transfers with this client, both ways; they outlive connections. Made on
   * first use, attached at once when the session's connection is open.
   */
  get files(): TransferEngine {
    if (this.#files === undefined) {
      this.#files = this.#host.transferEngine(this);
      const connection = this.connection;
      if (connection?.established) this.#files.attach(connection.transferLink(this.maxFrame));
    }
    return this.#files;
  }

  /** @internal The file engine if one was made, else undefined. */
  get filesIfStarted(): TransferEngine | undefined {
    return this.#files;
  }

  /** Whether a connection is up right now. */
  get connected(): boolean {
    return this.connection !== undefined;
  }

  /** Whether the session has ended (closed, evicted past its TTL, or the server closed). */
  get closed(): boolean {
    return this.#endedBy !== undefined;
  }

  /**
   * Sends `payload` to the client with the same guarantee as the client's `send()`: resolves
   * when the client's application received it; exactly once and in order across reconnects.
   */
  send(payload: Payload): Promise<PeerSendReceipt> {
    return new Promise((resolve, reject) => {
      this.enqueue(toBuffer(payload), 0, 0, reject, resolve);
    });
  }

  /** Sends `value` as JSON. */
  sendJson(value: unknown): Promise<PeerSendReceipt> {
    return this.send(JSON.stringify(value));
  }

  /**
   * Sends a file to this client (into its `downloadDir`): resumable, verified by SHA-256,
   * interleaved with messages, queued while the client is away (until the session expires).
   */
  sendFile(path: string, options: SendFileOptions = {}): Transfer {
    return this.files.sendFile(path, options);
  }

  /** Ends the session: the client is told (ERROR with code CLOSED) and cannot resume it. */
  close(): void {
    this.#host.closePeer(this, new TetherError(ErrorCode.CLOSED, 'the server closed this session'));
  }

  /** A snapshot of this peer's counters. */
  stats(): PeerStats {
    return {
      id: this.id,
      clientId: this.clientId,
      remoteAddress: this.remoteAddress,
      connected: this.connected,
      rtt: this.rtt.stats,
      lastSeen: this.lastSeen,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      queueDepth: this.outbound.count,
      queueBytes: this.outbound.bytes,
      transfers: this.#files?.activeTransfers ?? 0,
    };
  }

  /** @internal Queues a DATA frame (message or response) in the reliable stream. */
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

  /** @internal Resolves messages the client acknowledged with their receipts. */
  released(entries: readonly PeerPendingSend[]): void {
    for (const entry of entries) entry.resolve({ id: `${this.id}:${entry.seq}`, seq: entry.seq });
  }

  /** @internal Marks the session ended and rejects what it still holds. */
  end(error: TetherError): void {
    if (this.#endedBy !== undefined) return;
    this.#endedBy = error;
    clearTimeout(this.ttlTimer);
    this.ttlTimer = undefined;
    for (const entry of this.outbound.clear()) entry.reject(error);
  }
}

function ignore(): void {}
