const NONE: never[] = [];

/**
 * Array-backed FIFO queue with O(1) amortised push and shift. `Array#shift` is O(n), which
 * turns a 10,000-message backlog into a quadratic drain.
 */
export class Fifo<T> {
  // An empty queue shares NONE (never written) instead of an array of its own: a session keeps
  // two queues, empty while it is idle.
  #items: (T | undefined)[] = NONE;
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    if (this.#items === NONE) this.#items = [item];
    else this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** The item `index` places from the head. */
  at(index: number): T | undefined {
    return this.#items[this.#head + index];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    // Compact once the dead prefix is large and at least half the array.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns every item for which `predicate` holds, keeping the order of the rest. */
  removeWhere(predicate: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: T[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      (predicate(item) ? removed : kept).push(item);
    }
    if (removed.length > 0) {
      this.#items = kept.length > 0 ? kept : NONE;
      this.#head = 0;
    }
    return removed;
  }

  /** Removes and returns every item. */
  clear(): T[] {
    const all = this.#items.slice(this.#head) as T[];
    this.#items = NONE;
    this.#head = 0;
    return all;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }
}
