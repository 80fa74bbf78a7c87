import type { DataFrame, SessionLog } from '@tether/protocol';

/** Stream positions the owner writes to the store, each only ever raised. */
export interface Positions {
  /** Server→client seq the client acknowledged. */
  ack: number;
  /** Client→server seq that may have reached the application (raised before it does). */
  mark: number;
  /** Client→server seq delivered to the application (what an ACK may carry). */
  in: number;
}

/** What the log asks of the store and the session. */
export interface LogHost {
  /** Writes `positions` for the session; resolves once durable (rejects when fenced or away). */
  write(positions: Positions): Promise<void>;
  /** Hands a held frame to the application, in order. */
  deliver(frame: DataFrame): void;
  /**
   * Frames held past `maxHeldBytes`: stop reading the client (true) until they fall to half
   * (false). A client that ignores its window cannot make us hold more while Redis is slow.
   */
  backpressure(paused: boolean): void;
}

interface Waiter {
  ack: number;
  in: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The {@link SessionLog} of a session kept in Redis. Per session, one write is in flight at a
 * time and whatever is recorded meanwhile goes into the next one, so a burst of reads costs one
 * round trip, never one per message (and the store pipelines the writes of every session made in
 * the same tick).
 *
 * Inbound messages are held until the store has raised `mark` past them, and only then handed
 * to the application; `in` follows in the next write, and the link's ACK waits for that. So:
 * an ACK means the messages it covers were delivered and recorded (a client's resolved send is
 * never lost), and after a crash the next owner knows exactly which messages may have reached
 * the application already, `(in, mark]`: those, and only those, are delivered again, marked
 * `redelivered`. Server→client sequence numbers are assigned by the store when a message is
 * appended, so `sent` records nothing.
 */
export class RedisSessionLog implements SessionLog {
  readonly #host: LogHost;
  /** What the store holds (as last confirmed). */
  readonly #durable: Positions;
  /** Raised by the link and by held frames; written by the next write. */
  #ack: number;
  #wantIn: number;
  #mark: number;
  /** Frames delivered by the link and not yet handed to the application (mark not durable). */
  #held: DataFrame[] = [];
  #heldBytes = 0;
  readonly #maxHeldBytes: number;
  #paused = false;
  /** Highest client seq handed to the application. */
  #emitted: number;
  #writing = false;
  #waiters: Waiter[] = [];
  /** Set once the session left this instance: nothing is written or delivered any more. */
  #stopped: unknown;

  constructor(host: LogHost, durable: Positions, maxHeldBytes: number = Number.POSITIVE_INFINITY) {
    this.#host = host;
    this.#maxHeldBytes = maxHeldBytes;
    this.#durable = { ...durable };
    this.#ack = durable.ack;
    this.#mark = durable.mark;
    this.#wantIn = durable.in;
    this.#emitted = durable.in;
  }

  /** Payload bytes of the frames held for their mark. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Whether everything recorded is durable and every held frame was handed over. */
  get settled(): boolean {
    return (
      !this.#writing &&
      this.#held.length === 0 &&
      this.#durable.ack >= this.#ack &&
      this.#durable.in >= this.#wantIn &&
      this.#durable.mark >= this.#mark
    );
  }

  sent(): void {}

  acked(seq: number): void {
    if (seq > this.#ack) this.#ack = seq;
  }

  delivered(seq: number): void {
    if (seq > this.#wantIn) this.#wantIn = seq;
  }

  /**
   * A DATA frame the link delivered: handed to the application at once if the store already
   * marks it (a message a crashed owner may have delivered, now redelivered), else once it does.
   */
  hold(frame: DataFrame): void {
    if (this.#stopped !== undefined) return;
    if (
      this.#held.length === 0 &&
      frame.seq <= this.#durable.mark &&
      frame.seq === this.#emitted + 1
    ) {
      this.#emitted = frame.seq;
      this.#host.deliver(frame);
      return;
    }
    this.#held.push(frame);
    this.#heldBytes += frame.payload.length;
    if (frame.seq > this.#mark) this.#mark = frame.seq;
    if (!this.#paused && this.#heldBytes > this.#maxHeldBytes) {
      this.#paused = true;
      this.#host.backpressure(true);
    }
  }

  commit(): Promise<void> | undefined {
    if (this.#stopped !== undefined) return Promise.reject(this.#stopped);
    if (this.settled) return undefined;
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ ack: this.#ack, in: this.#wantIn, resolve, reject });
      this.#flush();
    });
  }

  /**
   * Writes until everything recorded so far is durable and every held frame handed over;
   * resolves then (rejects when the store fails or the session left).
   */
  settle(): Promise<void> {
    return this.commit() ?? Promise.resolve();
  }

  /** Writes again what a failed write left (the store is back). */
  retry(): void {
    if (!this.settled) this.#flush();
  }

  /** The session left this instance (taken, fenced, ended): drop what is held. */
  stop(error: unknown): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = error;
    this.#held = [];
    this.#heldBytes = 0;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  #flush(): void {
    if (this.#writing || this.#stopped !== undefined) return;
    const frames = this.#held;
    this.#held = [];
    const positions: Positions = { ack: this.#ack, mark: this.#mark, in: this.#emitted };
    const d = this.#durable;
    if (positions.ack <= d.ack && positions.mark <= d.mark && positions.in <= d.in) {
      // Nothing new to write (frames already marked): hand them over and write `in` next.
      this.#emit(frames);
      this.#resolveDurable();
      if (!this.settled) this.#flush();
      return;
    }
    this.#writing = true;
    this.#host.write(positions).then(
      () => {
        this.#writing = false;
        if (this.#stopped !== undefined) return;
        if (positions.ack > d.ack) d.ack = positions.ack;
        if (positions.mark > d.mark) d.mark = positions.mark;
        if (positions.in > d.in) d.in = positions.in;
        this.#emit(frames);
        this.#resolveDurable();
        if (!this.settled) this.#flush();
      },
      (error: unknown) => {
        this.#writing = false;
        if (this.#stopped !== undefined) return;
        // Keep the frames (in order, before any held since): the next write marks them.
        this.#held = frames.concat(this.#held);
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const waiter of waiters) waiter.reject(error);
      },
    );
  }

  #emit(frames: readonly DataFrame[]): void {
    for (const frame of frames) {
      if (this.#stopped !== undefined) return;
      this.#heldBytes -= frame.payload.length;
      this.#emitted = frame.seq;
      this.#host.deliver(frame);
    }
    if (this.#paused && this.#heldBytes <= this.#maxHeldBytes / 2) {
      this.#paused = false;
      this.#host.backpressure(false);
    }
  }

  #resolveDurable(): void {
    const d = this.#durable;
    const left: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.ack <= d.ack && waiter.in <= d.in) waiter.resolve();
      else left.push(waiter);
    }
    this.#waiters = left;
  }
}
