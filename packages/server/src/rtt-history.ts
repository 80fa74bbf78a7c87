/**
 * A session's last RTT samples, oldest first when read: what the dashboard's graph of a peer
 * shows. Kept in the session itself, so a sample lands beside the state its PONG just touched;
 * kept by the dashboard, in a table of all sessions, each sample cost it some 1.5 µs of cache
 * misses (330 a second at 10,000 idle clients, watched or not). A plain array that grows to its
 * size: each session makes one at its first sample (10,000 within seconds when 10,000 clients
 * connected together), and a typed array costs several times more to create.
 */
export class RttHistory {
  readonly #size: number;
  readonly #values: number[] = [];
  #next = 0;

  constructor(size: number) {
    this.#size = size;
  }

  push(ms: number): void {
    this.#values[this.#next] = ms;
    this.#next = this.#next + 1 === this.#size ? 0 : this.#next + 1;
  }

  /** The samples in ms (to 0.01 ms), oldest first. */
  toArray(): number[] {
    const values = this.#values;
    const count = values.length;
    const out: number[] = new Array(count);
    // Full, the oldest is at #next; filling, at 0 (#next is then the length).
    const start = count === this.#size ? this.#next : 0;
    for (let i = 0; i < count; i++) {
      out[i] = Math.round((values[(start + i) % count] as number) * 100) / 100;
    }
    return out;
  }
}
