/** Reconnect backoff settings. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 100 ms. */
  minDelayMs?: number;
  /** Cap on the delay, before jitter. Default 10 s. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Fraction of the delay that is random, 0..1. Default 0.5: delays fall uniformly in
   * [delay/2, delay]. The jitter applies after the cap, so clients that all reached the cap
   * still spread over [max/2, max] instead of retrying in lockstep.
   */
  jitter?: number;
}

/** The defaults DESIGN.md agreed on. */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  minDelayMs: 100,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.5,
};

/** Validates backoff options and fills in defaults; throws a TypeError that names the field. */
export function resolveBackoff(options: BackoffOptions = {}): Required<BackoffOptions> {
  const resolved = { ...DEFAULT_BACKOFF, ...options };
  const { minDelayMs, maxDelayMs, factor, jitter } = resolved;
  if (!(minDelayMs >= 0 && Number.isFinite(minDelayMs))) {
    throw new TypeError(`backoff.minDelayMs must be a finite number >= 0, got ${minDelayMs}`);
  }
  if (!(maxDelayMs >= minDelayMs && Number.isFinite(maxDelayMs))) {
    throw new TypeError(`backoff.maxDelayMs must be finite and >= minDelayMs, got ${maxDelayMs}`);
  }
  if (!(factor >= 1 && Number.isFinite(factor))) {
    throw new TypeError(`backoff.factor must be a finite number >= 1, got ${factor}`);
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new TypeError(`backoff.jitter must be between 0 and 1, got ${jitter}`);
  }
  return resolved;
}

/**
 * Delay before retry number `attempt` (1 for the first retry): exponential, capped, then
 * jittered. `random` returns values in [0, 1) and is injected so tests are deterministic.
 */
export function backoffDelay(
  attempt: number,
  options: Required<BackoffOptions>,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  // factor ** exponent may reach Infinity; 0 * Infinity would be NaN, so zero stays zero.
  const grown = options.minDelayMs === 0 ? 0 : options.minDelayMs * options.factor ** exponent;
  const base = Math.min(options.maxDelayMs, grown);
  return Math.round(base * (1 - options.jitter * random()));
}

/**
 * Delay honouring a server's GOAWAY retry-after: never earlier than asked, spread over up to a
 * quarter more so that a whole fleet told the same value does not return at one instant.
 */
export function retryAfterDelay(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.round(retryAfterMs * (1 + 0.25 * random()));
}
