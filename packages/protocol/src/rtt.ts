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
  // The figures as fields of their own, not an object: one object less per session (its own
  // header and slots, some 64 bytes of each idle connection).
  #samples = 0;
  #last = 0;
  #min = 0;
  #srtt = 0;
  #rttvar = 0;

  /**
   * Adds a sample and returns the new figures (a fresh object); a negative or non-finite sample
   * (a clock step, a forged stamp) is ignored and returns undefined.
   */
  sample(rttMs: number): RttStats | undefined {
    if (!(rttMs >= 0 && Number.isFinite(rttMs))) return undefined;
    if (this.#samples === 0) {
      this.#min = rttMs;
      this.#srtt = rttMs;
      this.#rttvar = rttMs / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rttMs);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rttMs;
      this.#min = Math.min(this.#min, rttMs);
    }
    this.#last = rttMs;
    this.#samples++;
    return this.stats;
  }

  /** A copy of the current figures, or undefined before the first sample. */
  get stats(): RttStats | undefined {
    if (this.#samples === 0) return undefined;
    return {
      last: this.#last,
      min: this.#min,
      srtt: this.#srtt,
      rttvar: this.#rttvar,
      samples: this.#samples,
    };
  }
}
