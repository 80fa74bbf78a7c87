import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LineLimiter } from '../src/line-limit.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function limiter(options: ConstructorParameters<typeof LineLimiter>[1] = {}): {
  lines: string[];
  limit: LineLimiter;
} {
  const lines: string[] = [];
  return { lines, limit: new LineLimiter((line) => lines.push(line), options) };
}

describe('line-limit', () => {
  it('line-limit - prints the first lines of a window, then one summary with the count', () => {
    const { lines, limit } = limiter({ burst: 3, intervalMs: 10_000 });
    for (let i = 0; i < 50; i++) limit.line('10.0.0.1', `error ${i}`);
    expect(lines).toEqual(['error 0', 'error 1', 'error 2']);
    vi.advanceTimersByTime(9999);
    expect(lines).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(lines).toEqual([
      'error 0',
      'error 1',
      'error 2',
      '10.0.0.1: 47 more lines suppressed in the last 10.0 s',
    ]);
    expect(limit.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('line-limit - a steady flood costs burst + 1 lines per window', () => {
    const { lines, limit } = limiter({ burst: 5, intervalMs: 10_000 });
    // 20 lines a second for a minute.
    for (let ms = 0; ms < 60_000; ms += 50) {
      limit.line('10.0.0.1', `error at ${ms}`);
      vi.advanceTimersByTime(50);
    }
    expect(lines).toHaveLength(6 * 6);
    const summaries = lines.filter((l) => l.includes('suppressed'));
    expect(summaries).toEqual(
      Array(6).fill('10.0.0.1: 195 more lines suppressed in the last 10.0 s'),
    );
  });

  it('line-limit - a quiet window prints no summary and the next line starts afresh', () => {
    const { lines, limit } = limiter({ burst: 2, intervalMs: 1000 });
    limit.line('a', 'one');
    limit.line('a', 'two');
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual(['one', 'two']);
    expect(vi.getTimerCount()).toBe(0);
    limit.line('a', 'three');
    limit.line('a', 'four');
    limit.line('a', 'five');
    expect(lines).toEqual(['one', 'two', 'three', 'four']);
    vi.advanceTimersByTime(1000);
    expect(lines.at(-1)).toBe('a: 1 more lines suppressed in the last 1.0 s');
  });

  it('line-limit - keys are limited separately', () => {
    const { lines, limit } = limiter({ burst: 1, intervalMs: 1000 });
    for (let i = 0; i < 10; i++) limit.line('flooder', `flood ${i}`);
    limit.line('other', 'other 0');
    expect(lines).toEqual(['flood 0', 'other 0']);
    vi.advanceTimersByTime(1000);
    expect(lines).toEqual([
      'flood 0',
      'other 0',
      'flooder: 9 more lines suppressed in the last 1.0 s',
    ]);
  });

  it('line-limit - past maxKeys, new keys share one window', () => {
    const { lines, limit } = limiter({ burst: 2, intervalMs: 1000, maxKeys: 2 });
    for (let i = 0; i < 100; i++) limit.line(`10.0.${i}.1`, `error from 10.0.${i}.1`);
    expect(lines).toEqual([
      'error from 10.0.0.1',
      'error from 10.0.1.1',
      'error from 10.0.2.1',
      'error from 10.0.3.1',
    ]);
    expect(limit.size).toBe(3);
    expect(vi.getTimerCount()).toBe(3);
    vi.advanceTimersByTime(1000);
    expect(lines.slice(4)).toEqual([
      '(other addresses): 96 more lines suppressed in the last 1.0 s',
    ]);
  });

  it('line-limit - close prints the summaries due and leaves no timer', () => {
    const { lines, limit } = limiter({
      burst: 1,
      summary: (key, n) => `error ${key}: ${n} more errors suppressed`,
    });
    limit.line('a', 'a 1');
    limit.line('a', 'a 2');
    limit.line('b', 'b 1');
    limit.close();
    expect(lines).toEqual(['a 1', 'b 1', 'error a: 1 more errors suppressed']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
