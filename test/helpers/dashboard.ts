import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';

/**
 * Parses a `/metrics` body with a Prometheus text-format parser and checks the conventions a
 * scraper relies on: every family has HELP and a TYPE, names are snake_case; and for Tether's own
 * families (`tether_`), histogram buckets are cumulative and end at +Inf with the count, and
 * counters and only counters end in `_total` (prom-client's process metrics have a gauge that
 * does). Returns the families by name.
 */
export function parseMetrics(text: string): Map<string, PromFamily> {
  const families = parsePrometheusTextFormat(text);
  const byName = new Map<string, PromFamily>();
  for (const family of families) {
    if (byName.has(family.name)) throw new Error(`family ${family.name} appears twice`);
    if (!/^[a-z_][a-z0-9_]*$/.test(family.name)) throw new Error(`bad name ${family.name}`);
    if (family.help === '') throw new Error(`${family.name} has no HELP`);
    if (family.type === 'UNTYPED') throw new Error(`${family.name} has no TYPE`);
    if (family.type === 'COUNTER' && !family.name.endsWith('_total')) {
      throw new Error(`counter ${family.name} does not end in _total`);
    }
    const ours = family.name.startsWith('tether_');
    if (ours && family.type !== 'COUNTER' && family.name.endsWith('_total')) {
      throw new Error(`${family.type} ${family.name} ends in _total`);
    }
    // Our histograms must be exact; prom-client's own GC histogram is observed from a
    // PerformanceObserver while the registry collects asynchronously, and was once seen with its
    // +Inf bucket one behind its count.
    if (ours && family.type === 'HISTOGRAM') {
      for (const sample of family.metrics) checkHistogram(family.name, sample);
    }
    byName.set(family.name, family);
  }
  return byName;
}

function checkHistogram(name: string, sample: PromFamily['metrics'][number]): void {
  const buckets = Object.entries(sample.buckets ?? {}).map(([le, n]) => [
    le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le),
    Number(n),
  ]);
  if (buckets.length === 0) throw new Error(`${name} has no buckets`);
  buckets.sort((a, b) => (a[0] as number) - (b[0] as number));
  for (let i = 1; i < buckets.length; i++) {
    if ((buckets[i]?.[1] as number) < (buckets[i - 1]?.[1] as number)) {
      throw new Error(`${name} buckets are not cumulative`);
    }
  }
  const last = buckets.at(-1) as number[];
  if (last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${name} has no +Inf bucket`);
  if (last[1] !== Number(sample.count)) throw new Error(`${name} +Inf bucket is not the count`);
}

/** The value of one series of a counter or gauge (labels must match exactly). */
export function seriesValue(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(name);
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const sample = family?.metrics.find(
    (m) => JSON.stringify(Object.entries(m.labels ?? {}).sort()) === wanted,
  );
  return sample?.value === undefined ? undefined : Number(sample.value);
}
