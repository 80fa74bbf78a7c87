/** Sums run results and prints the table `pnpm chaos` ends with. */
import type { RunResult, Suite } from './run-result.js';

export interface SuiteTotals {
  runs: number;
  failed: number;
  skipped: number;
  messages: number;
  requests: number;
  fileBytes: number;
  lost: number;
  unexpected: number;
  duplicated: number;
  reordered: number;
  redelivered: number;
  overflows: number;
  sessionLosses: number;
  worstDetectionMs: number | undefined;
  worstIndirectDetectionMs: number | undefined;
  worstRecoveryMs: number | undefined;
  faults: Record<string, number>;
  durationMs: number;
}

export function totals(results: readonly RunResult[]): SuiteTotals {
  const t: SuiteTotals = {
    runs: 0,
    failed: 0,
    skipped: 0,
    messages: 0,
    requests: 0,
    fileBytes: 0,
    lost: 0,
    unexpected: 0,
    duplicated: 0,
    reordered: 0,
    redelivered: 0,
    overflows: 0,
    sessionLosses: 0,
    worstDetectionMs: undefined,
    worstIndirectDetectionMs: undefined,
    worstRecoveryMs: undefined,
    faults: {},
    durationMs: 0,
  };
  for (const r of results) {
    if (r.skipped !== undefined) {
      t.skipped++;
      continue;
    }
    t.runs++;
    t.durationMs += r.durationMs;
    if (!r.ok) t.failed++;
    const s = r.stats;
    if (s === undefined) continue;
    t.messages += s.messages;
    t.requests += s.requests;
    t.fileBytes += s.fileBytes;
    t.lost += s.lost;
    t.unexpected += s.unexpected;
    t.duplicated += s.duplicated;
    t.reordered += s.reordered;
    t.redelivered += s.redelivered;
    t.overflows += s.overflows;
    t.sessionLosses += s.sessionLosses;
    for (const d of s.detectionsMs) t.worstDetectionMs = Math.max(t.worstDetectionMs ?? 0, d);
    for (const d of s.indirectDetectionsMs)
      t.worstIndirectDetectionMs = Math.max(t.worstIndirectDetectionMs ?? 0, d);
    for (const d of s.recoveriesMs) t.worstRecoveryMs = Math.max(t.worstRecoveryMs ?? 0, d);
    for (const [kind, n] of Object.entries(s.faults)) t.faults[kind] = (t.faults[kind] ?? 0) + n;
  }
  return t;
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(0)} ms`);

/** The summary table, one row per suite and a total. */
export function formatTable(results: readonly RunResult[], suites: readonly Suite[]): string {
  const header = [
    'suite',
    'runs',
    'failed',
    'faults',
    'messages',
    'requests',
    'file bytes',
    'lost',
    'unexpected',
    'duplicated',
    'reordered',
    'redelivered*',
    'overflows',
    'worst detection',
    'worst recovery',
  ];
  const rows: string[][] = [header];
  const row = (name: string, t: SuiteTotals): string[] => [
    name,
    `${t.runs}${t.skipped > 0 ? ` (+${t.skipped} skipped)` : ''}`,
    String(t.failed),
    String(Object.values(t.faults).reduce((a, b) => a + b, 0)),
    String(t.messages),
    String(t.requests),
    String(t.fileBytes),
    String(t.lost),
    String(t.unexpected),
    String(t.duplicated),
    String(t.reordered),
    String(t.redelivered),
    String(t.overflows),
    ms(t.worstDetectionMs),
    ms(t.worstRecoveryMs),
  ];
  for (const suite of suites)
    rows.push(row(suite, totals(results.filter((r) => r.suite === suite))));
  if (suites.length > 1) rows.push(row('total', totals(results)));
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]): string =>
    `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const all = totals(results);
  const faults = Object.entries(all.faults)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  return [
    line(header),
    rule,
    ...rows.slice(1).map(line),
    '',
    `faults by kind: ${faults || 'none'}`,
    ...lossLine(results),
    `worst detection by the side that only lost its outbound direction of a one-way cut: ${ms(all.worstIndirectDetectionMs)} (bound: both deadlines + 10% + allowance)`,
    `session losses (server restarts, TTL): ${all.sessionLosses}`,
    '* redelivered: second deliveries after a session loss (at-least-once, deduped by message id; not a violation)',
  ].join('\n');
}

/** Lines for a failing run: seed, violations and the command that replays it. */
export function formatFailure(r: RunResult): string {
  const lines = [
    `FAILED ${r.suite} run, seed ${r.seed}`,
    `  replay: pnpm chaos --suite ${r.suite} --seed ${r.seed}`,
    `  settings: ${r.settings}`,
  ];
  for (const v of r.violations) lines.push(`  - ${v.check}: ${v.detail}`);
  if (r.timeline !== undefined) lines.push(`  timeline: ${r.timeline}`);
  lines.push(`  plan: ${r.plan.length > 1500 ? `${r.plan.slice(0, 1500)} ...` : r.plan}`);
  return lines.join('\n');
}

/** Loss suite: how many uploads were late, by the drop that hit them and by the traffic beside. */
function lossLine(results: readonly RunResult[]): string[] {
  const runs = results.filter((r) => r.loss !== undefined);
  if (runs.length === 0) return [];
  const count = (keyOf: (loss: NonNullable<RunResult['loss']>) => string): string => {
    const by = new Map<string, { late: number; runs: number }>();
    for (const r of runs) {
      const loss = r.loss as NonNullable<RunResult['loss']>;
      const entry = by.get(keyOf(loss)) ?? { late: 0, runs: 0 };
      entry.runs++;
      if (loss.late) entry.late++;
      by.set(keyOf(loss), entry);
    }
    return [...by]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([key, e]) => `${key} ${e.late}/${e.runs}`)
      .join(', ');
  };
  // The tightest margin among uploads that made it: how close the bound came to failing them.
  let tightest: NonNullable<RunResult['loss']> | undefined;
  const share = (l: NonNullable<RunResult['loss']>): number =>
    (l.receivedAfterHealMs ?? 0) / (l.boundMs ?? 1);
  for (const r of runs) {
    const loss = r.loss as NonNullable<RunResult['loss']>;
    if (loss.receivedAfterHealMs === undefined || loss.boundMs === undefined) continue;
    if (tightest === undefined || share(loss) > share(tightest)) tightest = loss;
  }
  return [
    `loss: uploads late after a drop during them, by drop: ${count((l) => l.uploadDrop)}; by traffic beside: ${count((l) => l.traffic)}`,
    `loss: closest to its bound, an upload received ${ms(tightest?.receivedAfterHealMs)} after its drop healed (bound ${ms(tightest?.boundMs)})`,
  ];
}
