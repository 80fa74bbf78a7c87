import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';
import { Fifo } from './fifo.js';

/**
 * One outbound message, from `enqueue` until the peer acknowledges it. Owners extend it with
 * their own bookkeeping (promise callbacks, deadlines), so a message costs one object.
 */
export interface OutboundEntry {
  readonly payload: Buffer;
  /** DATA flags (request, response, error). */
  readonly flags: number;
  readonly requestId: number;
  /** Sequence number, assigned at first transmission; 0 while queued. */
  seq: number;
}

/**
 * The sending half of the reliable stream, without I/O. Messages wait in a queue until the link
 * can take them; `takeSendable` gives them sequence numbers (so a message dropped from the queue
 * never leaves a gap) and keeps them as in flight until a cumulative ACK releases them. After a
 * reconnect `resume` says which in-flight messages to send again.
 */
export class ReliableOutbound<Entry extends OutboundEntry = OutboundEntry> {
  #queued = new Fifo<Entry>();
  #inFlight = new Fifo<Entry>();
  #queuedBytes = 0;
  #inFlightBytes = 0;
  /** Highest sequence the peer acknowledged. */
  #acked: number;
  /** Highest sequence handed out. */
  #sent: number;

  /** @param acked highest sequence already acknowledged (sequences continue after it). */
  constructor(acked = 0) {
    this.#acked = acked;
    this.#sent = acked;
  }

  /** Highest sequence the peer acknowledged. */
  get acked(): number {
    return this.#acked;
  }

  /** Highest sequence assigned so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Messages not yet transmitted. */
  get queuedCount(): number {
    return this.#queued.length;
  }

  /** Messages transmitted and not yet acknowledged. */
  get inFlightCount(): number {
    return this.#inFlight.length;
  }

  /** Every message not yet acknowledged. */
  get count(): number {
    return this.#queued.length + this.#inFlight.length;
  }

  /** Payload bytes of every message not yet acknowledged. */
  get bytes(): number {
    return this.#queuedBytes + this.#inFlightBytes;
  }

  /** Payload bytes in flight. */
  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }

  /** Queues `entry` (its `seq` must be 0: it is assigned at first transmission). */
  enqueue(entry: Entry): Entry {
    this.#queued.push(entry);
    this.#queuedBytes += entry.payload.length;
    return entry;
  }

  /**
   * Moves queued messages to in flight, assigning sequence numbers, while the in-flight payload
   * stays within `maxInFlightBytes` (at least one message always moves when none is in flight).
   */
  takeSendable(maxInFlightBytes: number = Number.POSITIVE_INFINITY): Entry[] {
    const out: Entry[] = [];
    for (;;) {
      const next = this.#queued.peek();
      if (next === undefined) break;
      const fits = this.#inFlightBytes + next.payload.length <= maxInFlightBytes;
      if (!fits && this.#inFlight.length > 0) break;
      this.#queued.shift();
      this.#queuedBytes -= next.payload.length;
      next.seq = ++this.#sent;
      this.#inFlight.push(next);
      this.#inFlightBytes += next.payload.length;
      out.push(next);
    }
    return out;
  }

  /**
   * Applies a cumulative ACK. Returns the messages it releases, oldest first (empty for a stale
   * ACK). An ACK beyond the highest sequence sent is a protocol error.
   */
  ack(seq: number): Entry[] | ProtocolError {
    if (seq > this.#sent) {
      return new ProtocolError(
        ErrorCode.ACK_OUT_OF_RANGE,
        `peer acknowledged sequence ${seq} but only ${this.#sent} were sent`,
      );
    }
    const released: Entry[] = [];
    while (seq > this.#acked) {
      const entry = this.#inFlight.shift() as Entry;
      this.#inFlightBytes -= entry.payload.length;
      this.#acked = entry.seq;
      released.push(entry);
    }
    return released;
  }

  /**
   * After a reconnect to the same session: `peerDelivered` is the highest sequence the peer
   * delivered (it counts as an ACK). Returns the in-flight messages to send again, in order.
   */
  resume(peerDelivered: number): { released: Entry[]; resend: Entry[] } | ProtocolError {
    const released = this.ack(peerDelivered);
    if (released instanceof ProtocolError) return released;
    return { released, resend: [...this.#inFlight] };
  }

  /**
   * The peer lost the session (new session): it expects sequences after its `acked` base, which
   * is ours. In-flight messages keep their sequence numbers and are all sent again, so a message
   * keeps its id (at-least-once). Returns the messages to resend.
   */
  restart(): Entry[] {
    return [...this.#inFlight];
  }

  /** Removes queued (never transmitted) messages for which `predicate` holds. */
  dropQueued(predicate: (entry: Entry) => boolean): Entry[] {
    const dropped = this.#queued.removeWhere(predicate);
    for (const entry of dropped) this.#queuedBytes -= entry.payload.length;
    return dropped;
  }

  /** Removes and returns the oldest queued message, if any. */
  dropOldestQueued(): Entry | undefined {
    const entry = this.#queued.shift();
    if (entry !== undefined) this.#queuedBytes -= entry.payload.length;
    return entry;
  }

  /** Removes and returns every message, in flight first, for failing them all at close. */
  clear(): Entry[] {
    const all = [...this.#inFlight.clear(), ...this.#queued.clear()];
    this.#queuedBytes = 0;
    this.#inFlightBytes = 0;
    return all;
  }

  /** The oldest message not yet acknowledged: the first in flight, else the first queued. */
  oldest(): Entry | undefined {
    return this.#inFlight.peek() ?? this.#queued.peek();
  }

  /** Queued messages, oldest first. */
  queued(): Iterable<Entry> {
    return this.#queued;
  }
}
