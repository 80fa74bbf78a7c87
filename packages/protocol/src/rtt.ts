/** Round-trip time figures, in milliseconds. */
export interface RttStats {
  /** Most recent sample. */
  last: number;
  /** Smallest sample seen. */
  min: number;
  /** Smoothed RTT (RFC 6298 SRTT). */
  srtt: number;
  /** RTT variation (RFC 6298 RTTVAR). */
  rttvar: number;
  /** Number of samples. */
  samples: number;
}

/**
 * RTT estimator with TCP's smoothing (RFC 6298 section 2): the first sample sets SRTT = R and
 * RTTVAR = R/2; later ones RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, SRTT = 7/8 SRTT + 1/8 R.
 */
export class RttEstimator {
  #stats: RttStats | undefined;

  /**
   * Adds a sample and returns the new figures; a negative or non-finite sample (a clock step, a
   * forged stamp) is ignored and returns undefined.
   */
  sample(rttMs: number): RttStats | undefined {
    if (!(rttMs >= 0 && Number.isFinite(rttMs))) return undefined;
    const s = this.#stats;
    if (s === undefined) {
      this.#stats = { last: rttMs, min: rttMs, srtt: rttMs, rttvar: rttMs / 2, samples: 1 };
    } else {
      s.rttvar = 0.75 * s.rttvar + 0.25 * Math.abs(s.srtt - rttMs);
      s.srtt = 0.875 * s.srtt + 0.125 * rttMs;
      s.last = rttMs;
      s.min = Math.min(s.min, rttMs);
      s.samples++;
    }
    return this.#stats;
  }

  /** A copy of the current figures, or undefined before the first sample. */
  get stats(): RttStats | undefined {
    return this.#stats === undefined ? undefined : { ...this.#stats };
  }
}
