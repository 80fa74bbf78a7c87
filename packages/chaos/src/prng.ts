import { randomBytes } from 'node:crypto';

/** A source of uniform numbers in [0, 1), like `Math.random` but seeded. */
export type Random = () => number;

/**
 * mulberry32 (Tommy Ettinger): 32 bits of state, period 2^32, a few instructions per number. Far
 * from cryptographic, but uniform enough to decide faults, and the same seed always replays the same
 * sequence on every platform (only 32-bit integer math).
 */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/**
 * Mixes a seed and some integers (link id, toxic serial, direction) into a new 32-bit seed with the
 * murmur3 finaliser. Every link, toxic and direction gets its own stream, so what one of them draws
 * never depends on how the event loop interleaved the others: the same seed replays the same faults.
 */
export function deriveSeed(seed: number, ...parts: readonly number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0xcc9e2d51);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** An integer in [min, max], both inclusive. */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A fresh 32-bit seed from the OS (used when the caller gives none; report it to replay). */
export function randomSeed(): number {
  return randomBytes(4).readUInt32LE(0);
}
