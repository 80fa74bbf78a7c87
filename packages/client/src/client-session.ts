import { Session } from '@tether/core';
import type { FileEngine } from '@tether/files';
import {
  type DataFrame,
  ProtocolError,
  ReliableInbound,
  type ReliableOutbound,
  type RttStats,
  type SessionLog,
  type WelcomeBody,
} from '@tether/protocol';
import type { PendingSend } from './outbox.js';

/** What the client's session reports to the client. */
export interface ClientSessionHost {
  /** A DATA frame from the server, delivered once and in order. */
  data(frame: DataFrame): void;
  /** The server acknowledged these messages. */
  acked(entries: PendingSend[]): void;
  rtt(stats: RttStats): void;
  /** Makes the file engine (once). */
  transferEngine(): FileEngine;
}

/** What a WELCOME means for the streams: resend these, and whether the session was kept. */
export interface Adopted {
  resumed: boolean;
  /** The session before this WELCOME, if any. */
  previousId: string | undefined;
  resend: PendingSend[];
}

/**
 * The client's side of its session: the shared session state over the client's outbox. The
 * outbound stream belongs to the outbox and lives as long as the client (message ids stay
 * stable across sessions); the inbound stream restarts with each new session.
 */
export class ClientSession extends Session<PendingSend> {
  readonly #host: ClientSessionHost;

  /**
   * Without `restored`, the session lives in memory. With it, it is a session restored from the
   * client's store (id and token, '' for none; the position in the server's stream), recorded
   * through `log`.
   */
  constructor(
    outbound: ReliableOutbound<PendingSend>,
    host: ClientSessionHost,
    restored?: { sessionId: string; resumeToken: string; delivered: number; log: SessionLog },
  ) {
    super(outbound, new ReliableInbound(restored?.delivered ?? 0), restored?.log);
    this.#host = host;
    if (restored !== undefined) {
      this.id = restored.sessionId;
      this.resumeToken = restored.resumeToken;
    }
  }

  override data(frame: DataFrame): void {
    this.#host.data(frame);
  }

  override acked(entries: PendingSend[]): void {
    if (entries.length > 0) this.#host.acked(entries);
  }

  override rtt(stats: RttStats): void {
    this.#host.rtt(stats);
  }

  protected override makeFiles(): FileEngine {
    return this.#host.transferEngine();
  }

  /**
   * Takes up what WELCOME says (PROTOCOL.md section 10): on a resume of our session, its
   * `delivered` acknowledges what the server delivered and the rest is sent again; on a new
   * session the server's sequences start again, ours continue, and every message in flight is
   * sent again with its original seq.
   */
  adopt(welcome: WelcomeBody): Adopted | ProtocolError {
    const previousId = this.id === '' ? undefined : this.id;
    let resend: PendingSend[];
    const resumed = welcome.resumed && welcome.sessionId === previousId;
    if (resumed) {
      const outcome = this.resume(welcome.delivered);
      if (outcome instanceof ProtocolError) return outcome;
      this.acked(outcome.released);
      resend = outcome.resend;
    } else {
      this.inbound = new ReliableInbound();
      resend = this.outbound.restart();
    }
    this.id = welcome.sessionId;
    this.resumeToken = welcome.resumeToken;
    return { resumed, previousId, resend };
  }
}
