// Paired windows inside one process: the same server (and client) alternates short windows with
// a treatment on and off, so a difference of a few percent is not lost between two processes.
// Each round holds a test pair (treatment on in one window, off in the other) and a control pair
// (off in both: an A/A comparison); the order of the pairs and of the windows in them alternates
// from round to round, so a drift of the machine over the run falls on both sides alike.
import { median } from './common.js';

/** One pair of adjacent windows: `subject` is the treatment's (or, for a control, its twin's). */
export interface PlannedPair {
  kind: 'test' | 'control';
  /** The subject's window comes second. */
  subjectSecond: boolean;
}

/**
 * The pairs of `rounds` rounds, in the order they run. Round k: the subject second when k is
 * even; the test pair first in rounds 0, 1, 4, 5, ... and second in rounds 2, 3, 6, 7, ..., so
 * over four rounds every pair takes every position.
 */
export function pairPlan(rounds: number): PlannedPair[] {
  const out: PlannedPair[] = [];
  for (let k = 0; k < rounds; k++) {
    const subjectSecond = k % 2 === 0;
    const test: PlannedPair = { kind: 'test', subjectSecond };
    const control: PlannedPair = { kind: 'control', subjectSecond };
    out.push(...((k >> 1) % 2 === 0 ? [test, control] : [control, test]));
  }
  return out;
}

/** What a set of per-pair ratios says. */
export interface RatioSummary {
  pairs: number;
  median: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation of the ratios (0 for fewer than two). */
  sd: number;
  /**
   * Two standard errors of the mean (2 sd / √n): the mean is within this of the true ratio in
   * about 95 % of runs. For the A/A control, the smallest difference the run tells apart.
   */
  halfWidth: number;
}

export function summarize(ratios: readonly number[]): RatioSummary {
  const n = ratios.length;
  if (n === 0) throw new Error('summarize: no ratios');
  const mean = ratios.reduce((a, b) => a + b, 0) / n;
  const sd = n < 2 ? 0 : Math.sqrt(ratios.reduce((a, r) => a + (r - mean) ** 2, 0) / (n - 1));
  return {
    pairs: n,
    median: median([...ratios]),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    mean,
    sd,
    halfWidth: n < 2 ? Number.POSITIVE_INFINITY : (2 * sd) / Math.sqrt(n),
  };
}
