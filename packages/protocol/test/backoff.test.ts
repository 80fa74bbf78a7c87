import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, resolveBackoff, retryAfterDelay } from '../src/index.js';

/** Seeded Math.random stand-in (mulberry32): values in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const opts = resolveBackoff({ minDelayMs: 100, maxDelayMs: 10_000, factor: 2, jitter: 0.5 });
const delays = (random: () => number): number[] =>
  Array.from({ length: 8 }, (_, i) => backoffDelay(i + 1, opts, random));

describe('backoff', () => {
  it('backoff - defaults are 100 ms to 10 s, factor 2, jitter 0.5', () => {
    expect(DEFAULT_BACKOFF).toEqual({
      minDelayMs: 100,
      maxDelayMs: 10_000,
      factor: 2,
      jitter: 0.5,
    });
    expect(resolveBackoff()).toEqual(DEFAULT_BACKOFF);
    expect(resolveBackoff({ factor: 3 })).toEqual({ ...DEFAULT_BACKOFF, factor: 3 });
  });

  it('backoff - attempts 1..8 with random 0 give the full exponential delays, capped', () => {
    expect(delays(() => 0)).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000]);
  });

  it('backoff - attempts 1..8 with random 0.999 give base * (1 - 0.5 * 0.999)', () => {
    expect(delays(() => 0.999)).toEqual([50, 100, 200, 400, 801, 1602, 3203, 5005]);
  });

  it('backoff - jitter 0 gives the exact exponential sequence whatever the random value', () => {
    const noJitter = resolveBackoff({ jitter: 0 });
    expect(backoffDelay(3, noJitter, () => 0.9)).toBe(400);
    expect(backoffDelay(30, noJitter, () => 0.9)).toBe(10_000);
  });

  it('backoff - attempt 0 and below behave as the first retry', () => {
    expect(backoffDelay(0, opts, () => 0)).toBe(100);
    expect(backoffDelay(-5, opts, () => 0)).toBe(100);
  });

  it('backoff - jitter survives the cap: 1,000 clients at attempt 20 spread over [5000, 10000]', () => {
    const random = seeded(20_240_601);
    const all = Array.from({ length: 1000 }, () => backoffDelay(20, opts, random));
    const min = Math.min(...all);
    const max = Math.max(...all);
    expect(min).toBeGreaterThanOrEqual(5000);
    expect(max).toBeLessThanOrEqual(10_000);
    expect(min).toBeLessThan(5600);
    expect(max).toBeGreaterThan(9400);
    expect(new Set(all).size).toBeGreaterThanOrEqual(500);
    // Contrast: randomizing before the cap (p-retry's `randomize`) collapses every client onto
    // the cap at this attempt, so they would all retry in lockstep.
    const pRetryStyle = Array.from({ length: 1000 }, () =>
      Math.min(10_000, Math.round((1 + random()) * 100 * 2 ** 19)),
    );
    expect(new Set(pRetryStyle)).toEqual(new Set([10_000]));
  });

  it('backoff - huge attempt numbers give a finite delay within the cap', () => {
    for (const attempt of [1e6, 1e9, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
      for (const r of [0, 0.5, 0.999]) {
        const d = backoffDelay(attempt, opts, () => r);
        expect(Number.isFinite(d)).toBe(true);
        expect(d).toBeLessThanOrEqual(10_000);
        expect(d).toBeGreaterThanOrEqual(5000);
      }
    }
    expect(backoffDelay(1e6, resolveBackoff({ factor: 10 }), () => 0)).toBe(10_000);
  });

  it('backoff - huge attempt numbers with minDelayMs 0 stay finite (0)', () => {
    // minDelayMs 0 is accepted by resolveBackoff; 0 * factor ** 1024 must not become NaN.
    const zeroMin = resolveBackoff({ minDelayMs: 0 });
    expect(backoffDelay(10, zeroMin, () => 0)).toBe(0);
    expect(backoffDelay(1e6, zeroMin, () => 0)).toBe(0);
  });

  it('backoff - resolveBackoff throws TypeError on bad options', () => {
    expect(() => resolveBackoff({ minDelayMs: -1 })).toThrow(TypeError);
    expect(() => resolveBackoff({ minDelayMs: Number.NaN })).toThrow(TypeError);
    expect(() => resolveBackoff({ minDelayMs: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => resolveBackoff({ minDelayMs: 500, maxDelayMs: 499 })).toThrow(TypeError);
    expect(() => resolveBackoff({ maxDelayMs: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => resolveBackoff({ factor: 0.99 })).toThrow(TypeError);
    expect(() => resolveBackoff({ factor: Number.NaN })).toThrow(TypeError);
    expect(() => resolveBackoff({ jitter: 1.01 })).toThrow(TypeError);
    expect(() => resolveBackoff({ jitter: -0.1 })).toThrow(TypeError);
    expect(() => resolveBackoff({ jitter: Number.NaN })).toThrow(TypeError);
    expect(() => resolveBackoff({ minDelayMs: -1 })).toThrow(/minDelayMs/);
    expect(() => resolveBackoff({ factor: 0.5 })).toThrow(/factor/);
  });

  it('backoff - resolveBackoff accepts the edges', () => {
    expect(resolveBackoff({ minDelayMs: 0, maxDelayMs: 0, factor: 1, jitter: 1 })).toEqual({
      minDelayMs: 0,
      maxDelayMs: 0,
      factor: 1,
      jitter: 1,
    });
    expect(resolveBackoff({ minDelayMs: 200, maxDelayMs: 200, jitter: 0 }).maxDelayMs).toBe(200);
  });

  it('backoff - retryAfterDelay is never below the asked value and at most a quarter above', () => {
    expect(retryAfterDelay(1000, () => 0)).toBe(1000);
    expect(retryAfterDelay(1000, () => 0.999)).toBe(1250);
    expect(retryAfterDelay(0, () => 0.7)).toBe(0);
    const random = seeded(7);
    for (let i = 0; i < 1000; i++) {
      const asked = Math.floor(random() * 60_000);
      const d = retryAfterDelay(asked, random);
      expect(d).toBeGreaterThanOrEqual(asked);
      expect(d).toBeLessThanOrEqual(Math.round(asked * 1.25));
    }
  });

  it('backoff - retryAfterDelay spreads a fleet told the same value', () => {
    const random = seeded(99);
    const all = Array.from({ length: 1000 }, () => retryAfterDelay(4000, random));
    expect(Math.min(...all)).toBeGreaterThanOrEqual(4000);
    expect(Math.max(...all)).toBeLessThanOrEqual(5000);
    expect(new Set(all).size).toBeGreaterThan(500);
  });
});
