// Interleaved repetitions: each repetition runs every system of a cell once, in an order rotated
// by one system per repetition, so whatever else the machine does falls on all systems alike, and
// the ratio of two systems can be taken within each repetition.
import { flagsOf, ratiosOf, rotated } from '../lib/cell-stats.js';
import {
  type Cell,
  type CpuByProcess,
  type CpuFigure,
  median,
  type Row,
  type SystemName,
} from '../lib/common.js';
import { type Context, failedRow } from './context.js';
import { type LoadSnapshot, loadBetween } from './load.js';
import type { SystemPair } from './system-pair.js';

/** One system's run in one repetition. */
export interface Measurement {
  /** The cell's metric (msgs/s, p50 µs, MB/s, % of a core). */
  value: number;
  /** Work done, for CPU per unit: messages, round trips, MB (idle: seconds of rest). */
  units: number;
  /** CPU of each process of the system over the run, µs. */
  cpuUs: CpuByProcess;
  /** Further figures of the run (p99 ...). */
  detail?: Record<string, number>;
}

export interface RepetitionResult {
  order: SystemName[];
  results: Map<SystemName, Measurement>;
}

export interface CellSpec {
  scenario: string;
  payloadBytes: number;
  /** idle-connections only. */
  connections?: number;
  metric: NonNullable<Cell['metric']>;
  /** Throughput: higher is better; latency and CPU: lower. */
  higherIsBetter: boolean;
}

/**
 * Runs `warmups` unrecorded and then `repetitions` recorded rounds over `pairs`. A system that
 * fails leaves the lineup (its pair is killed, a failed row says why); the others go on.
 */
export async function runInterleaved(
  ctx: Context,
  pairs: SystemPair[],
  spec: CellSpec,
  plan: { warmups: number; repetitions: number },
  measure: (pair: SystemPair, warmup: boolean) => Promise<Measurement>,
): Promise<RepetitionResult[]> {
  const out: RepetitionResult[] = [];
  const failed = new Set<SystemName>();
  for (let round = 0; round < plan.warmups + plan.repetitions; round++) {
    const warmup = round < plan.warmups;
    const order = rotated(pairs, round);
    const results = new Map<SystemName, Measurement>();
    for (const pair of order) {
      try {
        results.set(pair.system, await measure(pair, warmup));
      } catch (error) {
        failed.add(pair.system);
        drop(ctx, pairs, pair, spec, error);
      }
    }
    if (!warmup) out.push({ order: order.map((p) => p.system), results });
  }
  // A system that failed in the cell has no row of figures, so none of its runs count.
  for (const r of out) for (const system of failed) r.results.delete(system);
  return out;
}

/** Takes a failed system out of the lineup for good: a failed row says why, its pair is killed. */
export function drop(
  ctx: Context,
  pairs: SystemPair[],
  pair: SystemPair,
  spec: Pick<CellSpec, 'scenario' | 'payloadBytes'>,
  error: unknown,
): void {
  ctx.rows.push(failedRow(ctx, pair.system, spec.scenario, spec.payloadBytes, error));
  const i = pairs.indexOf(pair);
  if (i >= 0) pairs.splice(i, 1);
  pair.kill();
}

/** A system's measurements over the recorded repetitions, in order. */
export function measurementsOf(reps: RepetitionResult[], system: SystemName): Measurement[] {
  return reps.flatMap((r) => {
    const m = r.results.get(system);
    return m ? [m] : [];
  });
}

/**
 * CPU per unit over the repetitions: the repetition with the median total (the lower of the two
 * middle ones for an even count), with its split by process, so that the split adds up.
 */
export function cpuFigure(per: CpuFigure['per'], ms: Measurement[]): CpuFigure | null {
  if (!ms.length) return null;
  const perUnit = ms.map((m) => {
    const byProcess: Record<string, number> = {};
    for (const [name, us] of Object.entries(m.cpuUs)) byProcess[name] = us / m.units;
    return { us: Object.values(byProcess).reduce((a, b) => a + b, 0), byProcess };
  });
  const sorted = [...perUnit].sort((a, b) => a.us - b.us);
  const mid = sorted[(sorted.length - 1) >> 1] as (typeof perUnit)[number];
  return {
    per,
    us: mid.us,
    min: (sorted[0] as (typeof perUnit)[number]).us,
    max: (sorted[sorted.length - 1] as (typeof perUnit)[number]).us,
    byProcess: mid.byProcess,
  };
}

/** The figures every interleaved row has: main metric median, min – max, values, runs. */
export function rowBase(
  spec: CellSpec,
  system: SystemName,
  ms: Measurement[],
): Pick<Row, 'system' | 'scenario' | 'payloadBytes' | 'runs' | 'min' | 'max' | 'values'> & {
  median: number;
} {
  const values = ms.map((m) => m.value);
  return {
    system,
    scenario: spec.scenario,
    payloadBytes: spec.payloadBytes,
    runs: values.length,
    min: Math.min(...values),
    max: Math.max(...values),
    values,
    median: median(values),
  };
}

/** Records the cell (repetitions, ratios, flags, load) and logs its flags. */
export function recordCell(
  ctx: Context,
  spec: CellSpec,
  reps: RepetitionResult[],
  before: LoadSnapshot,
  after: LoadSnapshot,
): Cell {
  const repetitions = reps.map((r) => ({
    order: r.order,
    values: Object.fromEntries([...r.results].map(([s, m]) => [s, m.value])),
  }));
  const ratios = ratiosOf(repetitions, spec.higherIsBetter);
  const cell: Cell = {
    scenario: spec.scenario,
    payloadBytes: spec.payloadBytes,
    ...(spec.connections === undefined ? {} : { connections: spec.connections }),
    metric: spec.metric,
    systems: [...new Set(repetitions.flatMap((r) => Object.keys(r.values)))],
    repetitions,
    ratios,
    load: loadBetween(before, after),
    flags: flagsOf(repetitions, ratios),
  };
  if (cell.flags.length) {
    const list = cell.flags.map((f) => `${f.what} ${f.spread.toFixed(2)}x`).join(', ');
    ctx.log(`    flagged (repetitions more than 2x apart): ${list}`);
  }
  ctx.cells.push(cell);
  return cell;
}
