import { Counter, Gauge, Registry, type RegistryContentType } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { NO_SHARED_LABELS, ReadMetric, ReadMetricType } from '../src/dashboard/read-metric.js';
import { RttHistogram, RttHistogramMetric } from '../src/dashboard/rtt-histogram.js';

describe('dashboard metrics - read when scraped', () => {
  it('writes the same text as prom-client Counters and Gauges holding the same values', async () => {
    // Either format: Prometheus text first, OpenMetrics below.
    const ours = new Registry<RegistryContentType>();
    const theirs = new Registry<RegistryContentType>();
    let closes: [Record<string, string>, number][] = [];
    let sessions = 0;
    ours.registerMetric(
      new ReadMetric('tether_sessions', 'Live sessions.', ReadMetricType.GAUGE, [], () => [
        [{}, sessions],
      ]).asMetric(),
    );
    ours.registerMetric(
      new ReadMetric(
        'tether_connection_closes_total',
        'Closes "by" code\\n.',
        ReadMetricType.COUNTER,
        ['code'],
        () => closes,
      ).asMetric(),
    );
    const gauge = new Gauge({
      name: 'tether_sessions',
      help: 'Live sessions.',
      registers: [theirs],
    });
    const counter = new Counter({
      name: 'tether_connection_closes_total',
      help: 'Closes "by" code\\n.',
      labelNames: ['code'],
      registers: [theirs],
    });

    // A counter with no series yet, then values that change between scrapes (read again each
    // time, nothing kept), in both formats prom-client writes.
    expect(await ours.metrics()).toBe(await theirs.metrics());
    sessions = 3;
    closes = [
      [{ code: 'EVICTED' }, 2],
      [{ code: 'CONNECTION_LOST' }, 5],
    ];
    gauge.set(3);
    counter.inc({ code: 'EVICTED' }, 2);
    counter.inc({ code: 'CONNECTION_LOST' }, 5);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('tether_connection_closes_total{code="EVICTED"} 2\n');
    expect(text).toContain('tether_sessions 3\n');
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // resetMetrics() (an application resetting its registry) leaves the server's figures alone.
    ours.resetMetrics();
    expect(await ours.metrics()).toContain('tether_sessions 3\n');
  });

  it('gives every series the one shared-labels object (no per-series entry in prom-client cache)', async () => {
    const metric = new ReadMetric(
      'tether_x_total',
      'X.',
      ReadMetricType.COUNTER,
      ['direction'],
      () => [
        [{ direction: 'in' }, 1],
        [{ direction: 'out' }, 2],
      ],
    );
    const histogram = new RttHistogram();
    histogram.observe(3);
    const rtt = new RttHistogramMetric('tether_rtt_seconds', 'RTT.', histogram);
    const values = [...(await metric.get()).values, ...(await rtt.get()).values];
    expect(values.length).toBeGreaterThan(2);
    for (const value of values) expect(value.sharedLabels).toBe(NO_SHARED_LABELS);
    expect(Object.isFrozen(NO_SHARED_LABELS)).toBe(true);
    expect(Object.keys(NO_SHARED_LABELS)).toEqual([]);
  });
});
