import { encodePing, encodePong } from './encode.js';
import { ProtocolError } from './errors.js';
import { FrameType } from './frame-types.js';
import type { DataFrame, Frame } from './frames.js';
import { type HeartbeatDecision, HeartbeatMonitor, type HeartbeatOptions } from './heartbeat.js';
import { OutputBatch } from './output-batch.js';
import { InboundVerdict, type ReliableInbound } from './reliable-inbound.js';
import type { OutboundEntry, ReliableOutbound } from './reliable-outbound.js';
import type { RttEstimator, RttStats } from './rtt.js';
import { MEMORY_LOG, type SessionLog } from './session-log.js';

/** What a {@link ReliableLink} reports to the session it runs for (the application side). */
export interface LinkEvents<Entry extends OutboundEntry> {
  /** A DATA frame delivered for the first time, in order. */
  data(frame: DataFrame): void;
  /** The peer acknowledged these messages, oldest first. */
  acked(entries: Entry[]): void;
  /** A PONG gave a new RTT sample. */
  rtt(stats: RttStats): void;
}

/** What a {@link ReliableLink} asks of the I/O layer that runs it. */
export interface LinkOutput {
  /** Frames started waiting in `batch`: schedule a write. */
  flush(): void;
  /** The session log could not commit: end the connection (nothing that depends on it was sent). */
  logFailed(error: unknown): void;
}

/** The session state a link runs over; it outlives the link. */
export interface LinkState<Entry extends OutboundEntry> {
  readonly outbound: ReliableOutbound<Entry>;
  readonly inbound: ReliableInbound;
  readonly rttEstimator: RttEstimator;
  /** Where stream positions are made durable; `MEMORY_LOG` when the session lives in memory. */
  readonly log?: SessionLog;
}

/** Settings of one link. */
export interface LinkOptions {
  heartbeat: HeartbeatOptions;
  /** Most payload bytes in flight (sent, unacknowledged) at once. */
  maxInFlightBytes: number;
}

// PING stamps are microseconds of the sender's monotonic clock; only the sender reads them.
const STAMP_PER_MS = 1000;
// PINGs whose PONG may still come (more than one only on a link slower than the ping interval).
const PINGS_REMEMBERED = 4;
const NO_PINGS: number[] = [];

/**
 * One established connection of a session, without I/O: the part of the protocol both sides run
 * once the handshake is done. It answers PINGs, measures RTT, delivers DATA exactly once and in
 * order, coalesces ACKs per read burst, releases acknowledged messages, keeps the in-flight
 * window, and runs the heartbeat. Sequence state (`outbound`, `inbound`) belongs to the session
 * and outlives the link; a reconnect makes a new link over the same state.
 */
export class ReliableLink<Entry extends OutboundEntry = OutboundEntry> {
  readonly batch: OutputBatch = new OutputBatch();
  readonly heartbeat: HeartbeatMonitor;
  readonly #outbound: ReliableOutbound<Entry>;
  readonly #inbound: ReliableInbound;
  readonly #rtt: RttEstimator;
  readonly #log: SessionLog;
  readonly #events: LinkEvents<Entry>;
  readonly #output: LinkOutput;
  readonly #maxInFlightBytes: number;
  /**
   * Stamps of our PINGs not answered yet, oldest first: only their PONGs are RTT samples. None
   * waiting, it is NO_PINGS (never written): an idle link keeps no array of its own.
   */
  #pings: number[] = NO_PINGS;
  /** Writes waiting for the log's commit, in order (only with a durable log). */
  #committing: Promise<void> | undefined;
  #closed = false;

  /** `events` gets what the application needs (data, acknowledgements, RTT); `output` is the I/O. */
  constructor(
    state: LinkState<Entry>,
    options: LinkOptions,
    events: LinkEvents<Entry>,
    output: LinkOutput,
    now: number,
  ) {
    this.#outbound = state.outbound;
    this.#inbound = state.inbound;
    this.#rtt = state.rttEstimator;
    this.#log = state.log ?? MEMORY_LOG;
    this.#events = events;
    this.#output = output;
    this.#maxInFlightBytes = options.maxInFlightBytes;
    this.heartbeat = new HeartbeatMonitor(options.heartbeat, now);
    // The peer may not have our last ACK: repeat it on every new link.
    this.#inbound.resetAck();
  }

  /** Writes a raw encoded frame. */
  write(frame: Buffer): void {
    if (this.batch.push(frame)) this.#output.flush();
  }

  /** The connection ended: writes still waiting for the log are dropped (the next link resends). */
  close(): void {
    this.#closed = true;
  }

  /** Sends again messages the peer had not delivered (after resume), then anything queued. */
  start(resend: readonly Entry[], now: number): void {
    for (const entry of resend) this.#writeData(entry);
    if (resend.length > 0) this.heartbeat.outboundPending(now);
    this.endOfBurst();
    this.pump(now);
  }

  /**
   * Transmits queued messages while the in-flight window has room, once the log has recorded
   * their sequence numbers (at once in memory).
   */
  pump(now: number): void {
    // Every ACK pumps: nothing queued (the usual case) costs no array.
    if (this.#outbound.queuedCount === 0) return;
    const sendable = this.#outbound.takeSendable(this.#maxInFlightBytes);
    if (sendable.length === 0) return;
    this.#log.sent(sendable);
    const commit = this.#log.commit();
    if (commit === undefined && this.#committing === undefined) {
      this.#writeSendable(sendable, now);
      return;
    }
    this.#afterCommit(commit, () => this.#writeSendable(sendable, now));
  }

  #writeSendable(sendable: readonly Entry[], now: number): void {
    for (const entry of sendable) this.#writeData(entry);
    this.heartbeat.outboundPending(now);
  }

  /**
   * Handles a frame of the reliable stream. Returns true when handled, false for frames the
   * owner handles itself (control and file frames), or the protocol error that ends the link.
   */
  handle(frame: Frame, now: number): boolean | ProtocolError {
    switch (frame.type) {
      case FrameType.DATA: {
        const verdict = this.#inbound.accept(frame.seq);
        if (verdict instanceof ProtocolError) return verdict;
        if (verdict === InboundVerdict.DELIVER) this.#events.data(frame);
        return true;
      }
      case FrameType.ACK: {
        const released = this.#outbound.ack(frame.seq);
        if (released instanceof ProtocolError) return released;
        if (released.length > 0) {
          this.#log.acked(frame.seq);
          this.heartbeat.ackProgress(now, this.#outbound.inFlightCount > 0);
          this.#events.acked(released);
          this.pump(now);
        }
        return true;
      }
      case FrameType.PING:
        this.write(encodePong(frame.stamp));
        return true;
      case FrameType.PONG: {
        // A PONG that answers no PING of ours (a hostile flood, or a stale one) is no sample: it
        // costs a comparison, not an RTT update and an event each.
        const index = this.#pings.indexOf(frame.stamp);
        if (index < 0) return true;
        if (index === this.#pings.length - 1) this.#pings = NO_PINGS;
        else this.#pings.splice(0, index + 1);
        const stats = this.#rtt.sample(now - frame.stamp / STAMP_PER_MS);
        if (stats !== undefined) this.#events.rtt(stats);
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * Call after handling every frame of one read: sends one cumulative ACK if due, once the log
   * has recorded the delivered position it carries (at once in memory).
   */
  endOfBurst(): void {
    const ack = this.#inbound.takeAck();
    if (ack === undefined) return;
    this.#log.delivered(ack);
    const commit = this.#log.commit();
    if (commit === undefined && this.#committing === undefined) {
      this.#writeAck(ack);
      return;
    }
    this.#afterCommit(commit, () => this.#writeAck(ack));
  }

  /** Runs the heartbeat at `now` (`dueAt`: when the timer was meant to fire); PINGs if needed. */
  check(now: number, dueAt: number): HeartbeatDecision {
    const decision = this.heartbeat.check(now, dueAt);
    if (decision.ping) this.#sendPing(now);
    return decision;
  }

  /** Sends a PING now, outside the heartbeat schedule (a probe the owner wants on demand). */
  ping(now: number): void {
    this.heartbeat.pinged(now);
    this.#sendPing(now);
  }

  #sendPing(now: number): void {
    const stamp = Math.round(now * STAMP_PER_MS);
    if (this.#pings === NO_PINGS) this.#pings = [stamp];
    else {
      if (this.#pings.length === PINGS_REMEMBERED) this.#pings.shift();
      this.#pings.push(stamp);
    }
    this.write(encodePing(stamp));
  }

  // Encoded into the batch's run as it is written (no Buffer of its own).
  #writeAck(seq: number): void {
    if (this.batch.pushAck(seq)) this.#output.flush();
  }

  #writeData(entry: Entry): void {
    if (this.batch.pushData(entry)) this.#output.flush();
  }

  // Runs `write` once `commit` (what the log recorded so far) is durable, after the writes already
  // waiting. The callers write at once, without a closure, when nothing waits and the log has
  // nothing to wait for (memory: every message and ACK).
  #afterCommit(commit: Promise<void> | undefined, write: () => void): void {
    const previous = this.#committing ?? Promise.resolve();
    const next = Promise.all([previous, commit]).then(() => {
      if (!this.#closed) write();
    });
    this.#committing = next;
    void next.then(
      () => {
        if (this.#committing === next) this.#committing = undefined;
      },
      (error: unknown) => {
        if (!this.#closed) this.#output.logFailed(error);
      },
    );
  }
}
