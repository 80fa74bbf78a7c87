import { readFile } from 'node:fs/promises';
import type { ClientStats } from '@tether/client';
import { type DemoContext, type FileState, type MessageCounts, sha256 } from './demo-context.js';
import { DEAD_AFTER_MS, type Detection } from './demo-stack.js';
import { formatMs, table } from './term.js';

// A dead link must be detected within this long of the fault (dead-after plus slack).
const DETECTION_LIMIT_MS = 2500;

/** One line of the verification table. */
export interface Check {
  name: string;
  detail: string;
  ok: boolean;
}

/** What the run produced, for {@link verify}. */
export interface RunOutcome {
  counts: MessageCounts;
  /** Message indices as the server's application received them. */
  received: number[];
  files: FileState[];
  detections: Detection[];
  /** The client's stats when the run settled, and whether it was connected then. */
  stats: ClientStats;
  endedConnected: boolean;
}

/** Lost, duplicated, reordered and unexpected messages in what the server received. */
function deliveryFaults(total: number, counts: MessageCounts, received: number[]) {
  const seen = new Map<number, number>();
  let outOfOrder = 0;
  for (let i = 0; i < received.length; i++) {
    const index = received[i] ?? -1;
    seen.set(index, (seen.get(index) ?? 0) + 1);
    if (i > 0 && index <= (received[i - 1] ?? -1)) outOfOrder++;
  }
  const duplicates = [...seen.values()].reduce((n, c) => n + (c > 1 ? c - 1 : 0), 0);
  const lost = counts.ackedIndices.filter((i) => !seen.has(i)).length;
  const unexpected = [...seen.keys()].filter(
    (i) => !(Number.isInteger(i) && i >= 0 && i < counts.sent),
  ).length;
  const exact = received.length === total && received.every((index, i) => index === i);
  return { lost, duplicates, outOfOrder, unexpected, exact };
}

/**
 * Whether a file arrived byte-identical: the client's result, the hash the server verified and
 * the stored file re-read all give the source's SHA-256.
 */
async function fileIntact(f: FileState): Promise<boolean> {
  if (f.result === undefined || f.stored === undefined) return false;
  const stored = sha256(await readFile(f.stored.path));
  return f.result.sha256 === f.sha256 && f.stored.sha256 === f.sha256 && stored === f.sha256;
}

/** The seven checks of the demo, Jepsen-style: nothing acknowledged lost, nothing extra. */
export async function verify(demo: DemoContext, run: RunOutcome): Promise<Check[]> {
  const { total } = demo;
  const { counts, received, files, detections, stats } = run;
  const { lost, duplicates, outOfOrder, unexpected, exact } = deliveryFaults(
    total,
    counts,
    received,
  );
  const verified = (await Promise.all(files.map(fileIntact))).filter(Boolean).length;
  const resumed = files.filter((f) => f.result !== undefined && f.cuts > 0).length;
  const worst = detections.reduce((m, d) => Math.max(m, d.ms), 0);
  return [
    { name: 'messages sent', detail: `${counts.sent} of ${total}`, ok: counts.sent === total },
    {
      name: 'messages acknowledged',
      detail: `${counts.acked} (${counts.failed} failed)`,
      ok: counts.acked === total && counts.failed === 0,
    },
    {
      name: 'delivered exactly once, in order',
      detail: `${received.length} delivered; ${lost} lost, ${duplicates} duplicated, ${outOfOrder} out of order, ${unexpected} unexpected`,
      ok: exact && lost === 0 && duplicates === 0 && outOfOrder === 0 && unexpected === 0,
    },
    {
      name: 'files verified by SHA-256',
      detail: `${verified} of ${files.length} byte-identical (${resumed} resumed after link drops)`,
      ok: verified === files.length,
    },
    {
      name: 'dead links detected',
      detail: `${detections.length} of 2 (${detections.map((d) => `${d.fault} ${formatMs(d.ms)}`).join(', ')})`,
      ok: detections.length === 2,
    },
    {
      name: 'worst detection time',
      detail: `${formatMs(worst)} (limit ${formatMs(DETECTION_LIMIT_MS)}, dead after ${formatMs(DEAD_AFTER_MS)})`,
      ok: detections.length > 0 && worst <= DETECTION_LIMIT_MS,
    },
    {
      name: 'client ends connected',
      detail: `${stats.reconnects} reconnects, last RTT ${formatMs(stats.rtt?.last)}`,
      ok: run.endedConnected,
    },
  ];
}

/**
 * Prints the verification table, a line of totals and `RESULT: PASS (7/7 checks) in 14.2 s` (or
 * FAIL); returns whether every check held.
 */
export function printSummary(demo: DemoContext, checks: Check[], totals: string): boolean {
  const { out } = demo;
  const passed = checks.filter((c) => c.ok).length;
  const ok = passed === checks.length;
  const seconds = ((performance.now() - demo.start) / 1000).toFixed(1);
  out.line('');
  out.line('=== Tether demo: verification summary ===');
  for (const row of table([
    ['CHECK', 'RESULT', 'DETAIL'],
    ...checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', c.detail]),
  ])) {
    out.line(row);
  }
  out.line(totals);
  out.line(
    ok
      ? `RESULT: PASS (${passed}/${checks.length} checks) in ${seconds} s`
      : `RESULT: FAIL (${passed}/${checks.length} checks) in ${seconds} s`,
  );
  return ok;
}
