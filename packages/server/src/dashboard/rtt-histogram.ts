import { NO_SHARED_LABELS, RegistryMetric, type SeriesValue } from './read-metric.js';

/** RTT buckets in seconds: loopback (sub-millisecond) to a satellite link under load. */
export const RTT_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/**
 * Every RTT sample of every session, counted into fixed buckets as it comes (one per PONG:
 * 2,000 a second at 10,000 idle clients). A sample costs a few comparisons and one increment;
 * prom-client's `Histogram.observe` builds label objects and hashes them for each.
 */
export class RttHistogram {
  /** Upper bounds in seconds, ascending. */
  readonly #bounds: readonly number[];
  /** Samples per bucket (not cumulative); the last one is above every bound. */
  readonly #counts: Float64Array;
  #sumSeconds = 0;
  #count = 0;

  constructor(bucketsSeconds: readonly number[] = RTT_BUCKETS_SECONDS) {
    this.#bounds = [...bucketsSeconds];
    this.#counts = new Float64Array(bucketsSeconds.length + 1);
  }

  /** One sample, in ms. Counted in seconds, as prom-client would: the same buckets, the same sum. */
  observe(ms: number): void {
    const seconds = ms / 1000;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    (this.#counts[i] as number)++;
    this.#sumSeconds += seconds;
    this.#count++;
  }

  /** Samples so far. */
  get count(): number {
    return this.#count;
  }

  /** Cumulative counts per upper bound (seconds), then `+Inf`; the sum in seconds. */
  snapshot(): { buckets: [number, number][]; sumSeconds: number; count: number } {
    const buckets: [number, number][] = [];
    let running = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      running += this.#counts[i] as number;
      buckets.push([this.#bounds[i] as number, running]);
    }
    return { buckets, sumSeconds: this.#sumSeconds, count: this.#count };
  }
}

/**
 * A {@link RttHistogram} as a prom-client metric, with the series a prom-client `Histogram` has
 * (`_bucket` with `le`, `+Inf`, `_sum`, `_count`).
 */
export class RttHistogramMetric extends RegistryMetric {
  readonly type = 'histogram';
  readonly #histogram: RttHistogram;

  constructor(name: string, help: string, histogram: RttHistogram) {
    super(name, help, []);
    this.#histogram = histogram;
  }

  protected series(): SeriesValue[] {
    const { buckets, sumSeconds, count } = this.#histogram.snapshot();
    const bucket = `${this.name}_bucket`;
    const shared = NO_SHARED_LABELS;
    const values = buckets.map(
      ([le, value]): SeriesValue => ({
        labels: { le },
        value,
        metricName: bucket,
        sharedLabels: shared,
      }),
    );
    values.push(
      { labels: { le: '+Inf' }, value: count, metricName: bucket, sharedLabels: shared },
      { labels: {}, value: sumSeconds, metricName: `${this.name}_sum`, sharedLabels: shared },
      { labels: {}, value: count, metricName: `${this.name}_count`, sharedLabels: shared },
    );
    return values;
  }
}
