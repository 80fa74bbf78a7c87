import type { FileEngine } from '@tether/files';
import {
  type DataFrame,
  type LinkEvents,
  type LinkState,
  MEMORY_LOG,
  type OutboundEntry,
  type ProtocolError,
  ReliableInbound,
  type ReliableOutbound,
  RttEstimator,
  type RttStats,
  type SessionLog,
} from '@tether/protocol';
import type { Connection } from './connection.js';

/**
 * One session as both sides hold it: the two reliable streams (messages sent and not yet
 * acknowledged; the position delivered), the RTT estimate, the resume token and the file
 * transfers in progress. It outlives its connections: each connection runs a link over it, and
 * a reconnect runs a new link over the same state.
 *
 * Subclasses are the application side of the session: the link hands them its data,
 * acknowledgements and RTT samples directly, and they make the session's transfer engine.
 */
export abstract class Session<E extends OutboundEntry> implements LinkState<E>, LinkEvents<E> {
  /** Public session id, from WELCOME; '' until there is one. */
  id = '';
  /** Secret token that resumes the session; '' until there is one. */
  resumeToken = '';
  readonly outbound: ReliableOutbound<E>;
  inbound: ReliableInbound;
  readonly rttEstimator: RttEstimator = new RttEstimator();
  /** Where stream positions are made durable; memory by default. */
  readonly log: SessionLog;
  /** The connection running the session now, if any (the newest, after a take-over). */
  connection: Connection<E> | undefined;
  /** Bytes received and written on every connection of the session. */
  bytesIn = 0;
  bytesOut = 0;
  /** Wall-clock time (ms since epoch) of the last inbound byte. */
  lastSeen: number = Date.now();
  /** Made at first use: most sessions never move a file. */
  #files: FileEngine | undefined;

  constructor(
    outbound: ReliableOutbound<E>,
    inbound: ReliableInbound = new ReliableInbound(),
    log: SessionLog = MEMORY_LOG,
  ) {
    this.outbound = outbound;
    this.inbound = inbound;
    this.log = log;
  }

  /** A DATA frame delivered for the first time, in order. */
  abstract data(frame: DataFrame): void;
  /** The peer acknowledged these messages, oldest first. */
  abstract acked(entries: E[]): void;
  /** A PONG gave a new RTT sample. */
  abstract rtt(stats: RttStats): void;
  /** Makes the session's file engine (called once, at first use). */
  protected abstract makeFiles(): FileEngine;

  /** File transfers of the session, both ways; made at first use, attached when a link is up. */
  get files(): FileEngine {
    if (this.#files === undefined) {
      this.#files = this.makeFiles();
      this.connection?.attachFiles(this.#files);
    }
    return this.#files;
  }

  /** The file engine if one was made. */
  get filesIfStarted(): FileEngine | undefined {
    return this.#files;
  }

  /**
   * The peer took the session up again: `peerDelivered` (its HELLO or WELCOME) acknowledges what
   * it delivered. Returns the messages that released and those to send again, in order.
   */
  resume(peerDelivered: number): { released: E[]; resend: E[] } | ProtocolError {
    return this.outbound.resume(peerDelivered);
  }
}
