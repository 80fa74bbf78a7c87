import { performance } from 'node:perf_hooks';

/** Milliseconds on a monotonic clock. */
export function now(): number {
  return performance.now();
}

/** A chunk of data, or `null` for end-of-stream. */
export type Item = Buffer | null;

/**
 * Releases items in the order they were pushed, each no earlier than its due time. Due times never
 * go backwards (an item is due no earlier than the one before it), which is what keeps order under
 * jitter. One timer at a time; a timer that fires early (libuv caches its clock per loop turn) is
 * simply re-armed, so no item ever leaves before its time.
 */
export class DelayQueue {
  #items: Item[] = [];
  #due: number[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;
  #disposed = false;
  #lastDue = 0;
  readonly #release: (item: Item) => void;

  constructor(release: (item: Item) => void) {
    this.#release = release;
  }

  /** Due time of the last item pushed (0 when none yet). */
  get lastDue(): number {
    return this.#lastDue;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Queues an item to be released at `due` (or when the item before it is, if later). */
  push(item: Item, due: number): void {
    if (this.#disposed) return;
    this.#lastDue = Math.max(due, this.#lastDue);
    this.#items.push(item);
    this.#due.push(this.#lastDue);
    if (this.#timer === undefined) this.#arm();
  }

  /** Releases everything now, in order. */
  flush(): void {
    this.#clearTimer();
    while (!this.#disposed && this.length > 0) this.#release(this.#shift());
  }

  /** Drops everything and stops the timer; returns the number of data bytes dropped. */
  dispose(): number {
    this.#disposed = true;
    this.#clearTimer();
    let dropped = 0;
    for (let i = this.#head; i < this.#items.length; i++) dropped += this.#items[i]?.length ?? 0;
    this.#items = [];
    this.#due = [];
    this.#head = 0;
    return dropped;
  }

  #shift(): Item {
    const item = this.#items[this.#head] ?? null;
    this.#head++;
    // Compact now and then so a long-lived queue neither grows nor pays O(n) per shift.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#due = this.#due.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  #arm(): void {
    const due = this.#due[this.#head];
    if (due === undefined) return;
    const wait = Math.max(0, Math.ceil(due - now()));
    this.#timer = setTimeout(this.#onTimer, wait);
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const time = now();
    // Release may re-enter (a later stage closes the link and disposes this queue): check each turn.
    while (!this.#disposed && this.length > 0 && (this.#due[this.#head] ?? 0) <= time) {
      this.#release(this.#shift());
    }
    if (!this.#disposed && this.#timer === undefined) this.#arm();
  };

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
