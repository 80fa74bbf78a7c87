import { DelayQueue, type Item, now } from './delay-queue.js';
import { type Random, randomInt } from './prng.js';
import type { Toxic } from './toxic.js';

/** Where a stage sends what it lets through: the next stage, or the destination socket. */
export interface Outlet {
  push(chunk: Buffer): void;
  end(): void;
}

/** What a stage may do besides passing data on. */
export interface StageContext {
  readonly out: Outlet;
  /** This toxic's own seeded stream for this link and direction. */
  readonly random: Random;
  /** Reports bytes the stage discarded, so the pipe's count of bytes in flight stays right. */
  drop(bytes: number): void;
  /** Closes the link (FIN both ways) once this direction's end-of-stream reaches the destination. */
  closeAfterEnd(): void;
  /** Closes the link now (FIN both ways); data still inside toxics is discarded. */
  close(): void;
  /** Resets the link now (RST both ways). */
  reset(): void;
}

/**
 * One toxic acting on one direction of one link. Data and end-of-stream come in through `push` and
 * `end`, and leave (or not) through the context's outlet.
 */
export interface Stage {
  push(chunk: Buffer): void;
  end(): void;
  /** The toxic is being removed: pass on at once whatever it still holds (dropped data stays dropped). */
  flush(): void;
  /** The link is going away: stop timers, forget held data. */
  dispose(): void;
}

function release(out: Outlet): (item: Item) => void {
  return (item) => (item === null ? out.end() : out.push(item));
}

/** `latency` ms ± `jitter` ms per chunk; end-of-stream is delayed by `latency` too, like a FIN. */
class LatencyStage implements Stage {
  readonly #queue: DelayQueue;
  readonly #random: Random;
  readonly #latency: number;
  readonly #jitter: number;
  constructor(ctx: StageContext, latency: number, jitter: number) {
    this.#queue = new DelayQueue(release(ctx.out));
    this.#random = ctx.random;
    this.#latency = latency;
    this.#jitter = jitter;
  }
  push(chunk: Buffer): void {
    const offset = this.#jitter > 0 ? (this.#random() * 2 - 1) * this.#jitter : 0;
    this.#queue.push(chunk, now() + Math.max(0, this.#latency + offset));
  }
  end(): void {
    this.#queue.push(null, now() + this.#latency);
  }
  flush(): void {
    this.#queue.flush();
  }
  dispose(): void {
    this.#queue.dispose();
  }
}

/**
 * A link of `rate` KB/s: each byte takes 1/rate ms on the wire, and a piece is released when its last
 * byte would have arrived. Chunks are cut into pieces of at most 100 ms worth (as Toxiproxy does) so
 * a slow rate still delivers steadily rather than in one late lump.
 */
class BandwidthStage implements Stage {
  readonly #queue: DelayQueue;
  /** Bytes per millisecond: 1 KB/s = 1000 B/s = 1 B/ms. */
  readonly #bytesPerMs: number;
  readonly #piece: number;
  #wireFreeAt = 0;
  constructor(ctx: StageContext, rate: number) {
    this.#queue = new DelayQueue(release(ctx.out));
    this.#bytesPerMs = rate;
    this.#piece = Math.max(1, Math.floor(rate * 100));
  }
  push(chunk: Buffer): void {
    for (let offset = 0; offset < chunk.length; offset += this.#piece) {
      const piece = chunk.subarray(offset, offset + this.#piece);
      const start = Math.max(now(), this.#wireFreeAt);
      this.#wireFreeAt = start + piece.length / this.#bytesPerMs;
      this.#queue.push(piece, this.#wireFreeAt);
    }
  }
  end(): void {
    this.#queue.push(null, now());
  }
  flush(): void {
    this.#queue.flush();
  }
  dispose(): void {
    this.#queue.dispose();
  }
}

/** Pieces of `average_size` ± `size_variation` bytes, `delay` µs apart (0: all at once, as separate writes). */
class SlicerStage implements Stage {
  readonly #queue: DelayQueue;
  readonly #ctx: StageContext;
  readonly #min: number;
  readonly #max: number;
  readonly #delayMs: number;
  constructor(ctx: StageContext, average: number, variation: number, delayMs: number) {
    this.#queue = new DelayQueue(release(ctx.out));
    this.#ctx = ctx;
    this.#min = Math.max(1, average - variation);
    this.#max = average + variation;
    this.#delayMs = delayMs;
  }
  push(chunk: Buffer): void {
    let due = Math.max(now(), this.#queue.lastDue);
    for (let offset = 0; offset < chunk.length; ) {
      const size = randomInt(this.#ctx.random, this.#min, this.#max);
      const piece = chunk.subarray(offset, offset + size);
      offset += size;
      if (this.#delayMs === 0) {
        this.#ctx.out.push(piece);
      } else {
        due += this.#delayMs;
        this.#queue.push(piece, due);
      }
    }
  }
  end(): void {
    if (this.#queue.length === 0) this.#ctx.out.end();
    else this.#queue.push(null, this.#queue.lastDue);
  }
  flush(): void {
    this.#queue.flush();
  }
  dispose(): void {
    this.#queue.dispose();
  }
}

/** Passes the first `bytes` bytes, then ends this direction and closes the link behind them. */
class LimitDataStage implements Stage {
  readonly #ctx: StageContext;
  readonly #limit: number;
  #passed = 0;
  #done = false;
  constructor(ctx: StageContext, limit: number) {
    this.#ctx = ctx;
    this.#limit = limit;
  }
  push(chunk: Buffer): void {
    if (this.#done) {
      this.#ctx.drop(chunk.length);
      return;
    }
    const room = this.#limit - this.#passed;
    if (chunk.length < room) {
      this.#passed += chunk.length;
      this.#ctx.out.push(chunk);
      return;
    }
    this.#done = true;
    this.#passed = this.#limit;
    if (room > 0) this.#ctx.out.push(chunk.subarray(0, room));
    this.#ctx.drop(chunk.length - room);
    this.#ctx.closeAfterEnd();
    this.#ctx.out.end();
  }
  end(): void {
    if (!this.#done) this.#ctx.out.end();
  }
  flush(): void {}
  dispose(): void {}
}

/**
 * Drops data and holds end-of-stream (blackhole, half_open, timeout). Removing the toxic passes a
 * held end-of-stream on, as TCP would retransmit a FIN once the path heals; dropped data stays lost.
 */
class HoleStage implements Stage {
  readonly #ctx: StageContext;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;
  constructor(ctx: StageContext, closeAfterMs = 0) {
    this.#ctx = ctx;
    if (closeAfterMs > 0) this.#timer = setTimeout(() => ctx.close(), closeAfterMs);
  }
  push(chunk: Buffer): void {
    this.#ctx.drop(chunk.length);
  }
  end(): void {
    this.#ended = true;
  }
  flush(): void {
    this.dispose();
    if (this.#ended) this.#ctx.out.end();
    this.#ended = false;
  }
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Lets everything through for `timeout` ms, then resets the link. */
class ResetPeerStage implements Stage {
  readonly #out: Outlet;
  #timer: NodeJS.Timeout | undefined;
  constructor(ctx: StageContext, timeout: number) {
    this.#out = ctx.out;
    this.#timer = setTimeout(() => ctx.reset(), timeout);
  }
  push(chunk: Buffer): void {
    this.#out.push(chunk);
  }
  end(): void {
    this.#out.end();
  }
  flush(): void {
    this.dispose();
  }
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Holds end-of-stream for `delay` ms; data passes untouched. */
class SlowCloseStage implements Stage {
  readonly #out: Outlet;
  readonly #delay: number;
  #timer: NodeJS.Timeout | undefined;
  constructor(ctx: StageContext, delay: number) {
    this.#out = ctx.out;
    this.#delay = delay;
  }
  push(chunk: Buffer): void {
    this.#out.push(chunk);
  }
  end(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#out.end();
    }, this.#delay);
  }
  flush(): void {
    if (this.#timer === undefined) return;
    this.dispose();
    this.#out.end();
  }
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Drops whole chunks while active (each with `probability`, drawn from the toxic's own stream);
 * end-of-stream always passes, so the link is never closed by it. Active from `after` ms after the
 * toxic applies, for `duration` ms, or until removed when `duration` is 0. It holds nothing, so
 * removal only stops its timers.
 */
class DropStage implements Stage {
  readonly #ctx: StageContext;
  readonly #probability: number;
  readonly #duration: number;
  #active: boolean;
  #timer: NodeJS.Timeout | undefined;
  constructor(ctx: StageContext, probability: number, after: number, duration: number) {
    this.#ctx = ctx;
    this.#probability = probability;
    this.#duration = duration;
    this.#active = after === 0;
    if (after > 0) this.#timer = setTimeout(this.#start, after);
    else if (duration > 0) this.#timer = setTimeout(this.#stop, duration);
  }
  push(chunk: Buffer): void {
    const p = this.#probability;
    // Draw only when it matters, so probability 1 (and 0) leave the stream untouched.
    const drop = this.#active && (p >= 1 || (p > 0 && this.#ctx.random() < p));
    if (drop) this.#ctx.drop(chunk.length);
    else this.#ctx.out.push(chunk);
  }
  end(): void {
    this.#ctx.out.end();
  }
  flush(): void {
    this.dispose();
  }
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
  readonly #start = (): void => {
    this.#active = true;
    this.#timer = this.#duration > 0 ? setTimeout(this.#stop, this.#duration) : undefined;
  };
  readonly #stop = (): void => {
    this.#timer = undefined;
    this.#active = false;
  };
}

/** Builds the stage for one toxic on one direction of one link. */
export function createStage(toxic: Toxic, ctx: StageContext): Stage {
  switch (toxic.type) {
    case 'latency':
      return new LatencyStage(ctx, toxic.latency, toxic.jitter);
    case 'bandwidth':
      return new BandwidthStage(ctx, toxic.rate);
    case 'slicer':
      return new SlicerStage(ctx, toxic.average_size, toxic.size_variation, toxic.delay / 1000);
    case 'limit_data':
      return new LimitDataStage(ctx, toxic.bytes);
    case 'timeout':
      return new HoleStage(ctx, toxic.timeout);
    case 'blackhole':
    case 'half_open':
      return new HoleStage(ctx);
    case 'reset_peer':
      return new ResetPeerStage(ctx, toxic.timeout);
    case 'slow_close':
      return new SlowCloseStage(ctx, toxic.delay);
    case 'drop':
      return new DropStage(ctx, toxic.probability, toxic.after, toxic.duration);
  }
}
