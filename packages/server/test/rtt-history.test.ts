import { describe, expect, it } from 'vitest';
import { RttHistory } from '../src/rtt-history.js';

describe('RttHistory', () => {
  it('keeps the last `size` samples, oldest first, to 0.01 ms', () => {
    const history = new RttHistory(3);
    expect(history.toArray()).toEqual([]);
    history.push(1.234);
    history.push(2);
    expect(history.toArray()).toEqual([1.23, 2]);
    history.push(3);
    expect(history.toArray()).toEqual([1.23, 2, 3]);
    for (const ms of [4, 5, 6, 7.006]) history.push(ms);
    expect(history.toArray()).toEqual([5, 6, 7.01]);
  });
});
