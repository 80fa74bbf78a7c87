import type { PeerPendingSend } from '../peer-session.js';

/**
 * Puts a session's server→client messages in seq order before they are queued. The store gives
 * every message its seq, whoever appended it: this instance's application (the answer to its
 * append) or another instance's (a message on the channel), and the two arrive on different
 * connections, so a later seq may come first. It waits here until the ones before it arrive;
 * a gap that stays open (a missed channel message) is read from the store by `fill`.
 */
export class OutboundSequencer {
  /** The next seq to queue. */
  #next: number;
  readonly #waiting = new Map<number, PeerPendingSend>();
  readonly #queue: (entry: PeerPendingSend) => void;

  /** `next`: the seq after the last one the session holds; `queue` takes them in order. */
  constructor(next: number, queue: (entry: PeerPendingSend) => void) {
    this.#next = next;
    this.#queue = queue;
  }

  /** The next seq to queue (everything before it is queued). */
  get next(): number {
    return this.#next;
  }

  /** The lowest seq waiting for a gap before it to close, if any. */
  get gapEnd(): number | undefined {
    if (this.#waiting.size === 0) return undefined;
    let lowest = Number.POSITIVE_INFINITY;
    for (const seq of this.#waiting.keys()) if (seq < lowest) lowest = seq;
    return lowest;
  }

  /** Adds message `seq`; returns false for a seq already queued (a second copy). */
  add(seq: number, entry: PeerPendingSend): boolean {
    if (seq < this.#next || this.#waiting.has(seq)) return false;
    entry.storeSeq = seq;
    if (seq !== this.#next) {
      this.#waiting.set(seq, entry);
      return true;
    }
    this.#queue(entry);
    this.#next++;
    for (;;) {
      const following = this.#waiting.get(this.#next);
      if (following === undefined) break;
      this.#waiting.delete(this.#next);
      this.#queue(following);
      this.#next++;
    }
    return true;
  }

  /** Removes and returns the messages still waiting (the session leaves this instance). */
  clear(): PeerPendingSend[] {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    return waiting;
  }
}
