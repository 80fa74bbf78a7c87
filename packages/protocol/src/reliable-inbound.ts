import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';

/** What to do with an inbound DATA frame. */
export const InboundVerdict = {
  /** Next in order: hand it to the application. */
  DELIVER: 'deliver',
  /** Already delivered before a reconnect: drop it (it is acknowledged again). */
  DUPLICATE: 'duplicate',
} as const;
export type InboundVerdict = (typeof InboundVerdict)[keyof typeof InboundVerdict];

/**
 * The receiving half of the reliable stream, without I/O: tracks the highest sequence delivered
 * in order, drops duplicates, refuses gaps, and coalesces acknowledgements: the caller asks
 * `takeAck` once per read burst, so a burst of 500 messages costs one ACK, not 500.
 */
export class ReliableInbound {
  #delivered: number;
  #acked: number;

  /** @param delivered highest sequence already delivered (0 for a new session). */
  constructor(delivered = 0) {
    this.#delivered = delivered;
    this.#acked = delivered;
  }

  /** Highest sequence delivered in order. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Classifies `seq`; DELIVER advances the delivered counter. */
  accept(seq: number): InboundVerdict | ProtocolError {
    if (seq === this.#delivered + 1) {
      this.#delivered = seq;
      return InboundVerdict.DELIVER;
    }
    if (seq <= this.#delivered) {
      // A resend of something delivered before the link dropped: ACK again so the peer stops.
      this.#acked = Math.min(this.#acked, seq - 1);
      return InboundVerdict.DUPLICATE;
    }
    return new ProtocolError(
      ErrorCode.SEQUENCE_GAP,
      `expected sequence ${this.#delivered + 1}, received ${seq}`,
    );
  }

  /** The cumulative ACK to send now, or undefined when the peer already has it. */
  takeAck(): number | undefined {
    if (this.#acked === this.#delivered) return undefined;
    this.#acked = this.#delivered;
    return this.#delivered;
  }

  /** Forget which ACK was sent: after a reconnect, the next `takeAck` repeats the current one. */
  resetAck(): void {
    this.#acked = -1;
  }
}
