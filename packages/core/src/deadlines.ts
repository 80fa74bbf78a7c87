import type { Scheduler, TimerHandle } from './scheduler.js';

/** Something with one pending deadline; its slot is the schedule's bookkeeping, not its own. */
export interface Scheduled {
  /** Position in the schedule; -1 while not scheduled. */
  deadlineSlot: number;
  /** When it is due (the schedule's clock). */
  deadlineAt: number;
}

/** How a {@link Deadlines} schedule finds where an item's deadline stands now. */
export interface DeadlinesOptions<T> {
  /**
   * Where `item`'s deadline stands now: the time it was scheduled for, or later. Items whose
   * deadline moves later all the time (a heartbeat check pushed back by every inbound byte) then
   * need not reschedule on every move: the schedule asks once, when the deadline's slot comes
   * up (up to `slotMs` before it is due), and files the item anew if it moved past that slot.
   * A move after that is not seen: the item fires at the time it told, and its `fire` finds it
   * has nothing to do yet (as a heartbeat check does). `Infinity`: the item has no deadline any
   * more and leaves the schedule without firing.
   */
  current(item: T): number;
  /** Width of a slot in ms (default 1000): how early the schedule asks. */
  slotMs?: number;
}

const DEFAULT_SLOT_MS = 1000;

// `deadlineSlot` encodes where an item is: >= 0 its index in the heap of deadlines due in slots
// that came up, <= -2 its index (-2 - slot) in the list of the slot of its `deadlineAt`.
const UNSCHEDULED = -1;

/**
 * One timer for the deadlines of many connections (HELLO deadline, heartbeat checks): a binary
 * min-heap by due time, and a single Node timer armed for the earliest. An idle connection then
 * costs a heap slot instead of a Timeout object and a closure, and ten thousand connections
 * cost one timer.
 *
 * With {@link DeadlinesOptions.current}, deadlines not due in a slot that came up wait in a
 * wheel of coarse slots instead (a list each, O(1) to file and to take out); the timer then wakes
 * once per slot to ask the items of the next one where their deadlines stand, and again only for
 * those due within it. An idle server's heartbeat checks, pushed back by every PING before they
 * come due, then cost no wake-up and no heap sift each. Every deadline still fires at its time.
 */
export class Deadlines<T extends Scheduled> {
  readonly #heap: T[] = [];
  readonly #scheduler: Scheduler;
  readonly #fire: (item: T, dueAt: number) => void;
  readonly #current: ((item: T) => number) | undefined;
  readonly #slotMs: number;
  /** The wheel: items by slot number (floor of their due time over the slot width). */
  readonly #slots = new Map<number, T[]>();
  /** The slot numbers of #slots, a min-heap (a number may stay after its slot emptied). */
  readonly #slotOrder: number[] = [];
  #size = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** While due items fire: the timer is armed once, after the last (not once per item). */
  #firing = false;

  /** `fire` runs once per due item, after the item was taken off the schedule. */
  constructor(
    scheduler: Scheduler,
    fire: (item: T, dueAt: number) => void,
    options?: DeadlinesOptions<T>,
  ) {
    this.#scheduler = scheduler;
    this.#fire = fire;
    this.#current = options?.current;
    const slotMs = options?.slotMs ?? DEFAULT_SLOT_MS;
    if (!(slotMs > 0 && Number.isFinite(slotMs))) {
      throw new TypeError(`slotMs must be a positive number, got ${slotMs}`);
    }
    this.#slotMs = slotMs;
  }

  /** Items scheduled. */
  get size(): number {
    return this.#size;
  }

  /** Schedules `item` at `at`, replacing its earlier deadline if it had one. */
  schedule(item: T, at: number): void {
    const slot = item.deadlineSlot;
    const now = this.#scheduler.now();
    if (slot >= 0 && this.#inHeap(at, now)) {
      const earlier = at < item.deadlineAt;
      item.deadlineAt = at;
      if (earlier) this.#up(slot);
      else this.#down(slot);
    } else {
      if (slot !== UNSCHEDULED) this.#remove(item);
      this.#file(item, at, now);
    }
    this.#arm();
  }

  /** Takes `item` off the schedule (no-op if it is not on it). */
  cancel(item: T): void {
    if (item.deadlineSlot === UNSCHEDULED) return;
    this.#remove(item);
    if (this.#size === 0 && !this.#firing) this.#disarm();
  }

  // In the heap: due in a slot that came up (or no wheel). Else in the wheel, in its slot.
  #inHeap(at: number, now: number): boolean {
    return this.#current === undefined || Math.floor(at / this.#slotMs) * this.#slotMs <= now;
  }

  #file(item: T, at: number, now: number): void {
    item.deadlineAt = at;
    this.#size++;
    if (this.#inHeap(at, now)) {
      item.deadlineSlot = this.#heap.length;
      this.#heap.push(item);
      this.#up(item.deadlineSlot);
      return;
    }
    const number = Math.floor(at / this.#slotMs);
    let list = this.#slots.get(number);
    if (list === undefined) {
      list = [];
      this.#slots.set(number, list);
      this.#pushSlotNumber(number);
    }
    item.deadlineSlot = -2 - list.length;
    list.push(item);
  }

  #remove(item: T): void {
    const slot = item.deadlineSlot;
    item.deadlineSlot = UNSCHEDULED;
    this.#size--;
    if (slot >= 0) {
      const last = this.#heap.pop() as T;
      if (last !== item) {
        this.#heap[slot] = last;
        last.deadlineSlot = slot;
        this.#up(slot);
        this.#down(last.deadlineSlot);
      }
      return;
    }
    const list = this.#slots.get(Math.floor(item.deadlineAt / this.#slotMs)) as T[];
    const index = -2 - slot;
    const last = list.pop() as T;
    if (last !== item) {
      list[index] = last;
      last.deadlineSlot = slot;
    }
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#scheduler.now();
    this.#firing = true;
    try {
      this.#openSlots(now);
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

  // Every slot that came up: its items' deadlines as they stand now go to the heap if due in a
  // slot that came up, else to the wheel again (moved on by the items themselves).
  #openSlots(now: number): void {
    const current = this.#current;
    if (current === undefined) return;
    const order = this.#slotOrder;
    for (;;) {
      const number = order[0];
      if (number === undefined || number * this.#slotMs > now) return;
      this.#popSlotNumber();
      const list = this.#slots.get(number);
      this.#slots.delete(number);
      if (list === undefined) continue;
      for (const item of list) {
        item.deadlineSlot = UNSCHEDULED;
        this.#size--;
        const at = current(item);
        if (at !== Number.POSITIVE_INFINITY) this.#file(item, Math.max(at, item.deadlineAt), now);
      }
    }
  }

  #arm(): void {
    if (this.#firing) return;
    let at = this.#heap[0]?.deadlineAt ?? Number.POSITIVE_INFINITY;
    const order = this.#slotOrder;
    // Slots emptied by cancels need no wake-up.
    while (order.length > 0 && (this.#slots.get(order[0] as number)?.length ?? 0) === 0) {
      this.#slots.delete(order[0] as number);
      this.#popSlotNumber();
    }
    const number = order[0];
    if (number !== undefined) at = Math.min(at, number * this.#slotMs);
    if (at === Number.POSITIVE_INFINITY) {
      this.#disarm();
      return;
    }
    if (at >= this.#timerAt) return;
    this.#scheduler.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#scheduler.setTimeout(
      this.#onTimer,
      Math.max(0, at - this.#scheduler.now()),
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

  // The slot numbers' min-heap (few: the spread of the deadlines over the slot width).
  #pushSlotNumber(number: number): void {
    const order = this.#slotOrder;
    let i = order.length;
    order.push(number);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((order[parent] as number) <= number) break;
      order[i] = order[parent] as number;
      i = parent;
    }
    order[i] = number;
  }

  #popSlotNumber(): void {
    const order = this.#slotOrder;
    const last = order.pop() as number;
    const n = order.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && (order[right] as number) < (order[left] as number) ? right : left;
      if ((order[child] as number) >= last) break;
      order[i] = order[child] as number;
      i = child;
    }
    order[i] = last;
  }
}
