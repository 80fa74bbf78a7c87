import { encodeAck, encodePing, encodePong } from './encode.js';
import { ProtocolError } from './errors.js';
import { FrameType } from './frame-types.js';
import type { DataFrame, Frame } from './frames.js';
import { type HeartbeatDecision, HeartbeatMonitor, type HeartbeatOptions } from './heartbeat.js';
import { OutputBatch } from './output-batch.js';
import { InboundVerdict, type ReliableInbound } from './reliable-inbound.js';
import type { OutboundEntry, ReliableOutbound } from './reliable-outbound.js';
import type { RttEstimator, RttStats } from './rtt.js';

/** What a {@link ReliableLink} reports to the side that owns it. */
export interface LinkEvents<Entry extends OutboundEntry> {
  /** A DATA frame delivered for the first time, in order. */
  data(frame: DataFrame): void;
  /** The peer acknowledged these messages, oldest first. */
  acked(entries: Entry[]): void;
  /** A PONG gave a new RTT sample. */
  rtt(stats: RttStats): void;
  /** Frames are waiting in `batch`: schedule a flush. */
  flush(): void;
}

/** Settings of one link. */
export interface LinkOptions {
  heartbeat: HeartbeatOptions;
  /** Most payload bytes in flight (sent, unacknowledged) at once. */
  maxInFlightBytes: number;
}

// PING stamps are microseconds of the sender's monotonic clock; only the sender reads them.
const STAMP_PER_MS = 1000;

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
  readonly #events: LinkEvents<Entry>;
  readonly #maxInFlightBytes: number;

  constructor(
    outbound: ReliableOutbound<Entry>,
    inbound: ReliableInbound,
    rtt: RttEstimator,
    options: LinkOptions,
    events: LinkEvents<Entry>,
    now: number,
  ) {
    this.#outbound = outbound;
    this.#inbound = inbound;
    this.#rtt = rtt;
    this.#events = events;
    this.#maxInFlightBytes = options.maxInFlightBytes;
    this.heartbeat = new HeartbeatMonitor(options.heartbeat, now);
    // The peer may not have our last ACK: repeat it on every new link.
    this.#inbound.resetAck();
  }

  /** Writes a raw encoded frame. */
  write(frame: Buffer): void {
    if (this.batch.push(frame)) this.#events.flush();
  }

  /** Sends again messages the peer had not delivered (after resume), then anything queued. */
  start(resend: readonly Entry[], now: number): void {
    for (const entry of resend) this.#writeData(entry);
    if (resend.length > 0) this.heartbeat.outboundPending(now);
    this.endOfBurst();
    this.pump(now);
  }

  /** Transmits queued messages while the in-flight window has room. */
  pump(now: number): void {
    const sendable = this.#outbound.takeSendable(this.#maxInFlightBytes);
    if (sendable.length === 0) return;
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
        const stats = this.#rtt.sample(now - frame.stamp / STAMP_PER_MS);
        if (stats !== undefined) this.#events.rtt({ ...stats });
        return true;
      }
      default:
        return false;
    }
  }

  /** Call after handling every frame of one read: sends one cumulative ACK if due. */
  endOfBurst(): void {
    const ack = this.#inbound.takeAck();
    if (ack !== undefined) this.write(encodeAck(ack));
  }

  /** Runs the heartbeat at `now` (`dueAt`: when the timer was meant to fire); PINGs if needed. */
  check(now: number, dueAt: number): HeartbeatDecision {
    const decision = this.heartbeat.check(now, dueAt);
    if (decision.ping) this.write(encodePing(Math.round(now * STAMP_PER_MS)));
    return decision;
  }

  /** Sends a PING now, outside the heartbeat schedule (a probe the owner wants on demand). */
  ping(now: number): void {
    this.heartbeat.pinged(now);
    this.write(encodePing(Math.round(now * STAMP_PER_MS)));
  }

  #writeData(entry: Entry): void {
    if (this.batch.pushData(entry)) this.#events.flush();
  }
}
