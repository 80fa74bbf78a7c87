import type { Metric } from 'prom-client';

/** Label names to values of one series. */
export type Labels = Record<string, string | number>;

/** One series of a metric as a registry reads it (prom-client's `MetricValue`). */
export interface SeriesValue {
  labels: Labels;
  value: number;
  /** Set for the series of a histogram (`_bucket`, `_sum`, `_count`). */
  metricName?: string;
  sharedLabels: Labels;
}

/**
 * The `sharedLabels` of every series we give a registry. prom-client's registry caches the
 * text of a series' `sharedLabels` in a WeakMap keyed by that object, and gives a series
 * without them a new `{}`: one WeakMap entry per series per scrape for the GC to clear. One
 * frozen object is one entry for all of them.
 */
export const NO_SHARED_LABELS: Labels = Object.freeze({}) as Labels;

/** Types of {@link ReadMetric}. */
export const ReadMetricType = {
  COUNTER: 'counter',
  GAUGE: 'gauge',
} as const;
export type ReadMetricType = (typeof ReadMetricType)[keyof typeof ReadMetricType];

/**
 * What a prom-client registry asks of a metric (`name`, `help`, `type`, `aggregator`, `get()`,
 * `reset()`), so the registry writes one of ours as its own; subclasses give its series.
 */
export abstract class RegistryMetric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: string;
  readonly aggregator = 'sum';
  readonly labelNames: string[];

  constructor(name: string, help: string, labelNames: string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** The series at this scrape. */
  protected abstract series(): SeriesValue[];

  /** The metric's values, as prom-client's own metrics give them. */
  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: SeriesValue[];
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.series(),
    };
  }

  /**
   * `registry.resetMetrics()` leaves it as it is: every scrape reads the server's own figures,
   * which count since it (or its dashboard) started.
   */
  reset(): void {}

  /** For `registry.registerMetric`, whose type names prom-client's own classes only. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}

/**
 * A counter or gauge whose series are read from the server when scraped. prom-client's
 * `Counter` and `Gauge` would be reset and set again at each scrape (hashing every series'
 * labels, and a counter can only go up by `inc()`); this hands the values over as they are.
 */
export class ReadMetric extends RegistryMetric {
  readonly type: ReadMetricType;
  readonly #read: () => [Labels, number][];

  constructor(
    name: string,
    help: string,
    type: ReadMetricType,
    labelNames: string[],
    read: () => [Labels, number][],
  ) {
    super(name, help, labelNames);
    this.type = type;
    this.#read = read;
  }

  protected series(): SeriesValue[] {
    const values: SeriesValue[] = [];
    for (const [labels, value] of this.#read()) {
      values.push({ labels, value, sharedLabels: NO_SHARED_LABELS });
    }
    return values;
  }
}
