// With `pnpm bench --profile`: the worker's garbage collections by kind (count and pause time),
// written next to its CPU profile when it exits, so a profile's GC share can be told apart into
// scavenges and mark-compacts (a `.cpuprofile` has one "(garbage collector)" node for all).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental-marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};

/** Starts counting when this process writes a CPU profile (`--cpu-prof-dir`); else does nothing. */
export function recordGcStats(): void {
  const at = process.execArgv.indexOf('--cpu-prof-dir');
  const dir = at >= 0 ? process.execArgv[at + 1] : undefined;
  if (dir === undefined) return;
  const byKind: Record<string, { count: number; ms: number }> = {};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1;
      const name = KINDS[kind] ?? `kind-${kind}`;
      const k = byKind[name] ?? { count: 0, ms: 0 };
      byKind[name] = k;
      k.count++;
      k.ms += entry.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => {
    // Node makes the folder when it writes the profile, after this: a throw here would lose both.
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `gc-stats.${process.pid}.json`), JSON.stringify(byKind));
    } catch {}
  });
}
