import { describe, expect, it } from 'vitest';
import { RttEstimator } from '../src/index.js';

describe('rtt', () => {
  it('rtt - no stats before the first sample', () => {
    expect(new RttEstimator().stats).toBeUndefined();
  });

  it('rtt - the first sample sets SRTT = R and RTTVAR = R/2', () => {
    const rtt = new RttEstimator();
    expect(rtt.sample(100)).toEqual({ last: 100, min: 100, srtt: 100, rttvar: 50, samples: 1 });
    expect(rtt.stats).toEqual({ last: 100, min: 100, srtt: 100, rttvar: 50, samples: 1 });
  });

  it('rtt - later samples follow RFC 6298 (RTTVAR from the old SRTT, then SRTT)', () => {
    const rtt = new RttEstimator();
    rtt.sample(100);
    // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5
    expect(rtt.sample(200)).toEqual({ last: 200, min: 100, srtt: 112.5, rttvar: 62.5, samples: 2 });
    // RTTVAR = 3/4 * 62.5 + 1/4 * |112.5 - 40| = 65; SRTT = 7/8 * 112.5 + 1/8 * 40 = 103.4375
    expect(rtt.sample(40)).toEqual({ last: 40, min: 40, srtt: 103.4375, rttvar: 65, samples: 3 });
  });

  it('rtt - matches the formulas over a long series', () => {
    const rtt = new RttEstimator();
    const series = [30, 31, 29, 120, 35, 33, 34, 5, 200, 33];
    let srtt = 0;
    let rttvar = 0;
    series.forEach((r, i) => {
      if (i === 0) {
        srtt = r;
        rttvar = r / 2;
      } else {
        rttvar = (3 / 4) * rttvar + (1 / 4) * Math.abs(srtt - r);
        srtt = (7 / 8) * srtt + (1 / 8) * r;
      }
      const s = rtt.sample(r);
      expect(s?.srtt).toBeCloseTo(srtt, 10);
      expect(s?.rttvar).toBeCloseTo(rttvar, 10);
    });
    expect(rtt.stats).toMatchObject({ last: 33, min: 5, samples: series.length });
  });

  it('rtt - min keeps the smallest sample seen', () => {
    const rtt = new RttEstimator();
    for (const r of [50, 20, 70, 21]) rtt.sample(r);
    expect(rtt.stats?.min).toBe(20);
    rtt.sample(0);
    expect(rtt.stats?.min).toBe(0);
    expect(rtt.stats?.samples).toBe(5);
  });

  it('rtt - negative and non-finite samples are ignored', () => {
    const rtt = new RttEstimator();
    expect(rtt.sample(-1)).toBeUndefined();
    expect(rtt.sample(Number.NaN)).toBeUndefined();
    expect(rtt.stats).toBeUndefined();
    rtt.sample(10);
    rtt.sample(-5);
    rtt.sample(Number.POSITIVE_INFINITY);
    expect(rtt.stats).toEqual({ last: 10, min: 10, srtt: 10, rttvar: 5, samples: 1 });
  });

  it('rtt - stats is a copy the caller cannot corrupt', () => {
    const rtt = new RttEstimator();
    rtt.sample(10);
    const copy = rtt.stats;
    if (copy === undefined) throw new Error('expected stats');
    copy.srtt = 999;
    copy.samples = 42;
    expect(rtt.stats).toEqual({ last: 10, min: 10, srtt: 10, rttvar: 5, samples: 1 });
  });
});
