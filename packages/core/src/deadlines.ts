import type { Scheduler, TimerHandle } from './scheduler.js';

/** Something with one pending deadline; its slot is the schedule's bookkeeping, not its own. */
export interface Scheduled {
  /** Position in the schedule; -1 while not scheduled. */
  deadlineSlot: number;
  /** When it is due (the schedule's clock). */
  deadlineAt: number;
}

/**
 * One timer for the deadlines of many connections (HELLO deadline, heartbeat checks): a binary
 * min-heap by due time, and a single Node timer armed for the earliest. An idle connection then
 * costs a heap slot instead of a Timeout object and a closure, and ten thousand connections
 * cost one timer.
 */
export class Deadlines<T extends Scheduled> {
  readonly #heap: T[] = [];
  readonly #scheduler: Scheduler;
  readonly #fire: (item: T, dueAt: number) => void;
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** While due items fire: the timer is armed once, after the last (not once per item). */
  #firing = false;

  /** `fire` runs once per due item, after the item was taken off the schedule. */
  constructor(scheduler: Scheduler, fire: (item: T, dueAt: number) => void) {
    this.#scheduler = scheduler;
    this.#fire = fire;
  }

  /** Items scheduled. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `item` at `at`, replacing its earlier deadline if it had one. */
  schedule(item: T, at: number): void {
    if (item.deadlineSlot >= 0) {
      const earlier = at < item.deadlineAt;
      item.deadlineAt = at;
      if (earlier) this.#up(item.deadlineSlot);
      else this.#down(item.deadlineSlot);
    } else {
      item.deadlineAt = at;
      item.deadlineSlot = this.#heap.length;
      this.#heap.push(item);
      this.#up(item.deadlineSlot);
    }
    this.#arm();
  }

  /** Takes `item` off the schedule (no-op if it is not on it). */
  cancel(item: T): void {
    const slot = item.deadlineSlot;
    if (slot < 0) return;
    const last = this.#heap.pop() as T;
    item.deadlineSlot = -1;
    if (last !== item) {
      this.#heap[slot] = last;
      last.deadlineSlot = slot;
      this.#up(slot);
      this.#down(last.deadlineSlot);
    }
    if (this.#heap.length === 0 && !this.#firing) this.#disarm();
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#scheduler.now();
    this.#firing = true;
    try {
      // Items a `fire` schedules again for now or earlier wait for the next turn of the timer.
      for (let budget = this.#heap.length; budget > 0; budget--) {
        const first = this.#heap[0];
        if (first === undefined || first.deadlineAt > now) break;
        const dueAt = first.deadlineAt;
        this.cancel(first);
        this.#fire(first, dueAt);
      }
    } finally {
      this.#firing = false;
      this.#arm();
    }
  };

  #arm(): void {
    if (this.#firing) return;
    const first = this.#heap[0];
    if (first === undefined) {
      this.#disarm();
      return;
    }
    if (first.deadlineAt >= this.#timerAt) return;
    this.#scheduler.clearTimeout(this.#timer);
    this.#timerAt = first.deadlineAt;
    this.#timer = this.#scheduler.setTimeout(
      this.#onTimer,
      Math.max(0, first.deadlineAt - this.#scheduler.now()),
    );
  }

  #disarm(): void {
    this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #up(slot: number): void {
    const heap = this.#heap;
    const item = heap[slot] as T;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot] as T;
      if (parent.deadlineAt <= item.deadlineAt) break;
      heap[slot] = parent;
      parent.deadlineSlot = slot;
      slot = parentSlot;
    }
    heap[slot] = item;
    item.deadlineSlot = slot;
  }

  #down(slot: number): void {
    const heap = this.#heap;
    const item = heap[slot] as T;
    const n = heap.length;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= n) break;
      const right = left + 1;
      const child =
        right < n && (heap[right] as T).deadlineAt < (heap[left] as T).deadlineAt ? right : left;
      const next = heap[child] as T;
      if (next.deadlineAt >= item.deadlineAt) break;
      heap[slot] = next;
      next.deadlineSlot = slot;
      slot = child;
    }
    heap[slot] = item;
    item.deadlineSlot = slot;
  }
}
