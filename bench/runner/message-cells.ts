// The throughput and rtt cells. One server worker and one client worker per system stay up for
// all of them (throughput first, then the servers switch to echo for rtt); every cell calibrates
// each system, then runs interleaved repetitions (runner/interleave.ts).
import type { SystemName } from '../lib/common.js';
import { IDLE_ONLY, median } from '../lib/common.js';
import type { SpanResult } from '../lib/span.js';
import type { RttResult } from '../scenarios/rtt.js';
import { THROUGHPUT_SIZES } from '../scenarios/throughput.js';
import type { Context } from './context.js';
import {
  type CellSpec,
  cpuFigure,
  drop,
  measurementsOf,
  recordCell,
  rowBase,
  runInterleaved,
} from './interleave.js';
import { loadSnapshot } from './load.js';
import { type SystemPair, startPairs, stopPairs } from './system-pair.js';

/** How long one throughput run is calibrated to last, ms. */
const RUN_MS = { full: 500, quick: 60, smoke: 100 };

export async function runMessageCells(ctx: Context): Promise<void> {
  const { options } = ctx;
  const withThroughput = options.scenarios.includes('throughput');
  const withRtt = options.scenarios.includes('rtt');
  const pairs = await startPairs(
    ctx,
    options.systems.filter((s) => !IDLE_ONLY.includes(s)),
    withThroughput ? 'throughput' : 'rtt',
    () => ({ mode: withThroughput ? 'sink' : 'echo' }),
  );
  try {
    if (withThroughput) {
      ctx.log('# throughput');
      const sizes = options.sizes ?? (options.smoke ? [128] : THROUGHPUT_SIZES);
      for (const size of sizes) await throughputCell(ctx, pairs, size);
    }
    if (withRtt) {
      ctx.log('# rtt');
      if (withThroughput) {
        for (const pair of [...pairs]) {
          await pair
            .op('mode', { echo: true }, 10_000)
            .catch((error) =>
              drop(ctx, pairs, pair, { scenario: 'rtt', payloadBytes: 128 }, error),
            );
        }
      }
      await rttCell(ctx, pairs, 'rtt');
      await rttCell(ctx, pairs, 'rtt-open-loop');
    }
  } finally {
    await stopPairs(ctx, pairs);
  }
}

const opTimeout = (ctx: Context) => (ctx.options.quick ? 60_000 : 120_000);
const repetitions = (ctx: Context) => (ctx.options.smoke ? 3 : 5);

async function throughputCell(ctx: Context, pairs: SystemPair[], size: number): Promise<void> {
  const { options } = ctx;
  const spec: CellSpec = {
    scenario: 'throughput',
    payloadBytes: size,
    metric: 'msgsPerSec',
    higherIsBetter: true,
  };
  const t0 = performance.now();
  const before = await loadSnapshot();
  // Each system's count gives it runs of about the same length (its first runs warm it up).
  const runMs = options.smoke ? RUN_MS.smoke : options.quick ? RUN_MS.quick : RUN_MS.full;
  const counts = new Map<SystemName, number>();
  for (const pair of [...pairs]) {
    try {
      const { count } = await pair.op<{ count: number }>(
        'calibrate',
        { size, runMs },
        opTimeout(ctx),
      );
      counts.set(pair.system, count);
    } catch (error) {
      drop(ctx, pairs, pair, spec, error);
    }
  }
  const reps = await runInterleaved(
    ctx,
    pairs,
    spec,
    { warmups: options.quick ? 1 : 2, repetitions: repetitions(ctx) },
    async (pair) => {
      const count = counts.get(pair.system) as number;
      const { result, cpuUs } = await pair.measure<SpanResult>(
        'throughput',
        { size, count },
        opTimeout(ctx),
      );
      return { value: count / result.seconds, units: count, cpuUs };
    },
  );
  const after = await loadSnapshot();
  recordCell(ctx, spec, reps, before, after);
  for (const pair of pairs) {
    const ms = measurementsOf(reps, pair.system);
    if (!ms.length) continue;
    const { median: mps, ...base } = rowBase(spec, pair.system, ms);
    ctx.rows.push({
      ...base,
      msgsPerSec: mps,
      mbPerSec: (mps * size) / 1e6,
      p50Us: null,
      p99Us: null,
      p999Us: null,
      cpu: cpuFigure('message', ms),
      extra: { messagesPerRun: counts.get(pair.system) ?? null },
    });
  }
  ctx.log(`  ${sizeLabel(size)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

async function rttCell(
  ctx: Context,
  pairs: SystemPair[],
  scenario: 'rtt' | 'rtt-open-loop',
): Promise<void> {
  const { options } = ctx;
  const spec: CellSpec = { scenario, payloadBytes: 128, metric: 'p50Us', higherIsBetter: false };
  const t0 = performance.now();
  const closed = scenario === 'rtt';
  const perRun = options.smoke ? 300 : options.quick ? 1000 : 10_000;
  const rate = options.quick ? 2000 : 5000;
  const seconds = options.smoke ? 0.25 : options.quick ? 0.3 : 2;
  const before = await loadSnapshot();
  const reps = await runInterleaved(
    ctx,
    pairs,
    spec,
    { warmups: 1, repetitions: repetitions(ctx) },
    async (pair, warmup) => {
      const { result, cpuUs } = closed
        ? await pair.measure<RttResult>(
            'closed',
            { count: warmup ? Math.max(200, perRun / 2) : perRun },
            opTimeout(ctx),
          )
        : await pair.measure<RttResult>(
            'open',
            { rate, seconds: warmup ? Math.min(seconds, 0.2) : seconds },
            opTimeout(ctx),
          );
      return {
        value: result.p50,
        units: result.count,
        cpuUs,
        detail: { p99: result.p99, p999: result.p999 },
      };
    },
  );
  const after = await loadSnapshot();
  recordCell(ctx, spec, reps, before, after);
  for (const pair of pairs) {
    const ms = measurementsOf(reps, pair.system);
    if (!ms.length) continue;
    const { median: p50, ...base } = rowBase(spec, pair.system, ms);
    ctx.rows.push({
      ...base,
      msgsPerSec: null,
      mbPerSec: null,
      p50Us: p50,
      p99Us: median(ms.map((m) => m.detail?.p99 ?? 0)),
      p999Us: median(ms.map((m) => m.detail?.p999 ?? 0)),
      cpu: cpuFigure('round trip', ms),
      extra: closed ? { messagesPerRun: perRun } : { ratePerSec: rate, secondsPerRun: seconds },
    });
  }
  ctx.log(`  ${scenario} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

const sizeLabel = (b: number): string =>
  b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
