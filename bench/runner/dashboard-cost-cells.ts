// The dashboard-cost cells (`pnpm bench:dashboard`): what a watched dashboard costs Tether's
// server, in paired windows inside ONE server process (and one client process for throughput).
// The server runs with its dashboard on; the runner watches it (lib/paired-windows.ts plans
// the windows): in a window "on" the live page's stream is open and /metrics is scraped every
// second (systems/dashboard-watcher.ts, in the runner's process, as a browser and Prometheus
// are elsewhere), in a window "off" nobody is connected to the dashboard. Each test pair puts
// an on window beside an off one, each control pair two off windows (A/A): per pair the ratio,
// over the pairs the median and spread, and from the control the run's resolution. Two
// processes of the same code measured up to 30 % apart (a throughput client even runs at one
// of two speeds for its whole life): inside one process that difference is gone.
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bareRow, type CpuByProcess, median, type Row, sleep } from '../lib/common.js';
import { type PlannedPair, pairPlan, summarize } from '../lib/paired-windows.js';
import {
  addPerfCounts,
  noPerfCounts,
  type PerfCounts,
  type PerfMap,
  PerfRecording,
  perfUsable,
  readPerfMap,
} from '../lib/perf-share.js';
import {
  addCounts,
  noCounts,
  type ProfileCounts,
  shareOf,
  topFunctions,
} from '../lib/profile-share.js';
import type { SpanResult } from '../lib/span.js';
import { type DashboardWatcher, watchDashboard } from '../systems/dashboard-watcher.js';
import { type Context, failedRow } from './context.js';
import {
  type CellSpec,
  type Measurement,
  type RepetitionResult,
  recordCell,
} from './interleave.js';
import { loadSnapshot } from './load.js';
import { SystemPair, startClientWorker, startServerWorker } from './system-pair.js';
import type { WorkerProcess } from './worker-process.js';

/**
 * Per mode: throughput runs (calibrated length), windows and rounds of each part, and how often
 * the watcher scrapes `/metrics` (Prometheus's every second; the smoke run's 1 s windows scrape
 * every 100 ms, so the dashboard's code is sure to be sampled in them).
 */
const PLAN = {
  full: {
    scrapeEveryMs: 1000,
    runMs: 250,
    throughput: { windowMs: 1500, rounds: 8 },
    idle: { windowMs: 5000, rounds: 5, connections: 10_000 },
  },
  quick: {
    scrapeEveryMs: 1000,
    runMs: 100,
    throughput: { windowMs: 1000, rounds: 4 },
    idle: { windowMs: 5000, rounds: 3, connections: 10_000 },
  },
  smoke: {
    scrapeEveryMs: 100,
    runMs: 50,
    throughput: { windowMs: 1000, rounds: 2 },
    idle: { windowMs: 1000, rounds: 2, connections: 200 },
  },
};
type Plan = (typeof PLAN)['full'];

/**
 * Between switching the watcher (and the full GC) and a window: the stream's opening (its
 * first update, with up to 100 log entries) and the first scrape, or the connections'
 * closing, and the GC's concurrent sweeping fall outside it.
 */
const SETTLE_MS = 300;

const SIZE = 128;

/**
 * The server's sampling profiler's interval in every window (watched and unwatched alike, so its
 * cost falls on both sides of a pair): 200 µs gives some 5,000 samples per busy second.
 */
const SAMPLING_INTERVAL_US = 200;

/**
 * `perf record`'s rate in every profiled window, per second of the server main thread's CPU
 * time (it samples only while the thread runs: some 350 samples a second of an idle window).
 */
const PERF_HZ = 4999;

/** The server's main thread for `perf record`, and which of its frames are the dashboard's. */
interface PerfTarget {
  tid: number;
  isPart: (symbol: string) => boolean;
}

/**
 * The dashboard's frames as perf names them: the server's `dashboard/` modules (built, or their
 * sources with `--source`) and prom-client's.
 */
function perfDashboardSymbols(): (symbol: string) => boolean {
  const built = fileURLToPath(new URL('./dashboard/', import.meta.resolve('@tether/server')));
  const sources = built.replace(/\/dist\/dashboard\/$/, '/src/dashboard/');
  return (symbol) =>
    symbol.includes(built) ||
    symbol.includes(sources) ||
    symbol.includes('/node_modules/prom-client/');
}

/** The figures of one window. */
interface WindowFigures {
  /** msgs/s (throughput) or % of one core (idle). */
  value: number;
  /** Messages (throughput) or seconds (idle). */
  units: number;
  cpuUs: CpuByProcess;
  /** Live page updates and scrapes the watcher completed in the window. */
  updates: number;
  scrapes: number;
  /** The server's main-thread GC pauses in the window, ms. */
  gcMs: number;
  /** The server's profile over the window, its samples counted for the dashboard (none at rest). */
  profile: ProfileCounts;
  /** How long the window's measurement ran (and the profiler, if it ran), µs. */
  profiledUs: number;
  /** perf's samples of the server's main thread over the window (none when perf did not run). */
  cpu: PerfCounts | undefined;
}

/** What a window's measurement gives; the cell adds the rest. */
type Measured = Omit<
  WindowFigures,
  'updates' | 'scrapes' | 'gcMs' | 'profile' | 'profiledUs' | 'cpu'
>;

/** Opens and closes the watcher; a failure after it opened ends the cell at the next window. */
class Watch {
  readonly #port: number;
  readonly #scrapeEveryMs: number;
  #watcher: DashboardWatcher | undefined;
  #failure: Error | undefined;

  constructor(port: number, scrapeEveryMs: number) {
    this.#port = port;
    this.#scrapeEveryMs = scrapeEveryMs;
  }

  async set(on: boolean): Promise<void> {
    this.check();
    if (on && this.#watcher === undefined) {
      this.#watcher = await watchDashboard({
        port: this.#port,
        scrapeEveryMs: this.#scrapeEveryMs,
        onFailure: (error) => {
          this.#failure = error;
        },
      });
    } else if (!on && this.#watcher !== undefined) {
      this.#watcher.close();
      this.#watcher = undefined;
    }
  }

  counts(): { updates: number; scrapes: number } {
    return { updates: this.#watcher?.updates ?? 0, scrapes: this.#watcher?.scrapes ?? 0 };
  }

  check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

export async function runDashboardCostCells(ctx: Context): Promise<void> {
  const { options } = ctx;
  const base = options.smoke ? PLAN.smoke : options.quick ? PLAN.quick : PLAN.full;
  // --rounds N: longer runs, for a resolution the default 4 minutes do not give.
  const rounds = options.rounds;
  const plan: Plan =
    rounds === undefined
      ? base
      : {
          ...base,
          throughput: { ...base.throughput, rounds },
          idle: { ...base.idle, rounds },
        };
  ctx.log('# dashboard-cost (paired windows in one process: watched / unwatched, and A/A)');
  // One profiler per window: V8's sampler wakes the main thread 5,000 times a second, which
  // would more than double the thread's CPU that perf divides up.
  const perf = ctx.options.attribution === 'perf';
  if (perf && !perfUsable()) {
    throw new Error(
      '--attribution perf: `perf record` is not usable here (not installed, or not allowed)',
    );
  }
  await throughputPart(ctx, plan, perf).catch((error) => {
    ctx.rows.push(failedRow(ctx, 'tether-watched', 'dashboard-cost', SIZE, error));
  });
  let connections = plan.idle.connections;
  const limit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
  if (connections > 1000 && limit < connections + 500) {
    ctx.notes.push(
      `dashboard-cost: ulimit -n is ${limit}; ${connections} connections need more, ran 1,000.`,
    );
    connections = 1000;
  }
  await idlePart(ctx, { ...plan.idle, connections }, plan.scrapeEveryMs, perf).catch((error) => {
    ctx.rows.push(failedRow(ctx, 'tether-watched', 'dashboard-cost', 0, error));
  });
}

/** One server and one client for the whole part; windows of back-to-back throughput runs. */
async function throughputPart(ctx: Context, plan: Plan, perf: boolean): Promise<void> {
  const t0 = performance.now();
  const started = await startServerWorker(ctx, 'tether', 'throughput', {
    mode: 'sink',
    dashboard: true,
    perfMap: perf,
  });
  let pair: SystemPair | undefined;
  let watch: Watch | undefined;
  try {
    const client = await startClientWorker(ctx, 'tether', 'throughput', started.port);
    pair = new SystemPair('tether', started.worker, client);
    watch = new Watch(dashboardPort(started.dashboardPort), plan.scrapeEveryMs);
    const timeout = 60_000;
    const { count } = await pair.op<{ count: number }>(
      'calibrate',
      { size: SIZE, runMs: plan.runMs },
      timeout,
    );
    const p = pair;
    const measure = async (): Promise<Measured> => {
      const before = await p.serverCpu();
      const start = performance.now();
      let messages = 0;
      let seconds = 0;
      let clientUs = 0;
      do {
        const r = await p.op<SpanResult>('throughput', { size: SIZE, count }, timeout);
        messages += count;
        seconds += r.seconds;
        clientUs += r.cpuUs;
      } while (performance.now() - start < plan.throughput.windowMs);
      const after = await p.serverCpu();
      return {
        value: messages / seconds,
        units: messages,
        cpuUs: { client: clientUs, server: (after.server ?? 0) - (before.server ?? 0) },
      };
    };
    const spec: CellSpec = {
      scenario: 'dashboard-cost',
      payloadBytes: SIZE,
      metric: 'msgsPerSec',
      higherIsBetter: true,
    };
    await pairedCell(
      ctx,
      spec,
      watch,
      measure,
      plan.throughput,
      () => p.gc(),
      () => p.serverGcTime(),
      p,
      perfTarget(perf, started.worker),
    );
  } finally {
    watch?.close();
    if (pair) await pair.stop(ctx);
    else started.worker.kill();
  }
  ctx.log(`  throughput 128 B (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/** One server with N idle clients; windows of rest, the server's CPU over each. */
async function idlePart(
  ctx: Context,
  plan: Plan['idle'],
  scrapeEveryMs: number,
  perf: boolean,
): Promise<void> {
  const t0 = performance.now();
  const started = await startServerWorker(ctx, 'tether', 'idle-connections', {
    mode: 'sink',
    dashboard: true,
    perfMap: perf,
  });
  let pair: SystemPair | undefined;
  let watch: Watch | undefined;
  try {
    const client = await startClientWorker(ctx, 'tether', 'idle-connections', started.port);
    pair = new SystemPair('tether', started.worker, client);
    watch = new Watch(dashboardPort(started.dashboardPort), scrapeEveryMs);
    const connected = await pair.op<{ connections: number }>(
      'connect',
      { connections: plan.connections },
      180_000,
    );
    ctx.log(`  x ${connected.connections} up (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    // Every client has pinged once before the first window (the ping interval is 5 s).
    await sleep(Math.min(plan.windowMs, 5000));
    const p = pair;
    const measure = async (): Promise<Measured> => {
      const before = await p.serverCpu();
      const start = performance.now();
      await sleep(plan.windowMs);
      const after = await p.serverCpu();
      const seconds = (performance.now() - start) / 1000;
      const us = (after.server ?? 0) - (before.server ?? 0);
      return { value: (us / 1e6 / seconds) * 100, units: seconds, cpuUs: { server: us } };
    };
    const spec: CellSpec = {
      scenario: 'dashboard-cost',
      payloadBytes: 0,
      connections: connected.connections,
      metric: 'cpuAtRestPercent',
      higherIsBetter: false,
    };
    // The client process's heap (10,000 clients) is left alone: only the server is measured.
    await pairedCell(
      ctx,
      spec,
      watch,
      measure,
      plan,
      async () => {
        p.server.post({ type: 'gc' });
        await p.server.next('gc', 10_000);
      },
      () => p.serverGcTime(),
      p,
      perfTarget(perf, started.worker),
    );
  } finally {
    watch?.close();
    if (pair) await pair.stop(ctx, 5000);
    else started.worker.kill();
  }
  ctx.log(`  x ${plan.connections} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

function perfTarget(perf: boolean, worker: WorkerProcess): PerfTarget | undefined {
  const tid = worker.child.pid;
  // Node's main thread is the process's first: its thread id is the process id.
  return perf && tid !== undefined ? { tid, isPart: perfDashboardSymbols() } : undefined;
}

function dashboardPort(port: number | undefined): number {
  if (port === undefined) throw new Error('the server worker reported no dashboard port');
  return port;
}

/**
 * The server at rest in a cell's rest windows, unwatched and without the profiler: what the
 * dashboard's attributed time is put against.
 */
interface Rest {
  windows: WindowFigures[];
}

/** A measured pair: the subject's window (on, or off for a control) and the off one. */
interface MeasuredPair {
  planned: PlannedPair;
  subject: WindowFigures;
  off: WindowFigures;
}

/**
 * One warm-up pair (the dashboard's code paths compiled, not recorded), then the planned pairs;
 * records the cell (repetitions: one per pair) and a row per comparison.
 */
async function pairedCell(
  ctx: Context,
  spec: CellSpec,
  watch: Watch,
  measure: () => Promise<Measured>,
  plan: { windowMs: number; rounds: number },
  gc: () => Promise<void>,
  gcTime: () => Promise<{ pauseUs: number }>,
  profiler: Pick<SystemPair, 'serverProfileStart' | 'serverProfileStop'>,
  perf: PerfTarget | undefined,
): Promise<void> {
  // `profiled` false: a rest window (unwatched), the server's CPU without the profiler's cost.
  const window = async (on: boolean, profiled = true): Promise<WindowFigures> => {
    await watch.set(on);
    // Every window starts from a collected heap: whether V8's occasional full GC (tenths of a
    // second at 10,000 sessions, as much as the dashboard costs in a minute) falls inside a
    // window or not is then not what tells two windows apart.
    await gc();
    await sleep(SETTLE_MS);
    const before = watch.counts();
    const gcBefore = await gcTime();
    // Started and stopped (and the profiles counted) outside measure()'s CPU readings.
    const recording =
      profiled && perf !== undefined ? await PerfRecording.start(perf.tid, PERF_HZ) : undefined;
    const sampled = profiled && perf === undefined;
    if (sampled) await profiler.serverProfileStart(SAMPLING_INTERVAL_US);
    const profiledFrom = performance.now();
    const fromNs = process.hrtime.bigint();
    const figures = await measure();
    const toNs = process.hrtime.bigint();
    const map = recording !== undefined && perf !== undefined ? readPerfMap(perf.tid) : undefined;
    const profiledUs = (performance.now() - profiledFrom) * 1000;
    const profile = sampled ? await profiler.serverProfileStop() : noCounts();
    let cpu: PerfCounts | undefined;
    if (recording !== undefined && perf !== undefined) {
      try {
        await recording.stop();
        cpu = await recording.count(map as PerfMap, perf.isPart, fromNs, toNs);
      } finally {
        recording.discard();
      }
    }
    const gcAfter = await gcTime();
    const after = watch.counts();
    watch.check();
    return {
      ...figures,
      updates: after.updates - before.updates,
      scrapes: after.scrapes - before.scrapes,
      gcMs: (gcAfter.pauseUs - gcBefore.pauseUs) / 1000,
      profile,
      profiledUs,
      cpu,
    };
  };
  await window(true);
  await window(false);
  const loadBefore = await loadSnapshot();
  const measured: MeasuredPair[] = [];
  const rest: Rest = { windows: [] };
  for (const [i, planned] of pairPlan(plan.rounds).entries()) {
    const subjectOn = planned.kind === 'test';
    if (planned.subjectSecond) {
      const off = await window(false);
      measured.push({ planned, off, subject: await window(subjectOn) });
    } else {
      const subject = await window(subjectOn);
      measured.push({ planned, subject, off: await window(false) });
    }
    // One rest window per round (after its two pairs), so a drift of the machine is in them too.
    if (i % 2 === 1) rest.windows.push(await window(false, false));
  }
  await watch.set(false);
  const loadAfter = await loadSnapshot();
  const name = (p: PlannedPair) => (p.kind === 'test' ? 'tether-watched' : 'tether-twin');
  const measurement = (w: WindowFigures): Measurement => ({
    value: w.value,
    units: w.units,
    cpuUs: w.cpuUs,
  });
  const reps: RepetitionResult[] = measured.map((m) => ({
    order: m.planned.subjectSecond ? ['tether', name(m.planned)] : [name(m.planned), 'tether'],
    results: new Map([
      ['tether', measurement(m.off)],
      [name(m.planned), measurement(m.subject)],
    ]),
  }));
  recordCell(ctx, spec, reps, loadBefore, loadAfter);
  for (const kind of ['test', 'control'] as const) {
    const these = measured.filter((m) => m.planned.kind === kind);
    ctx.rows.push(
      pairRow(spec, kind === 'test' ? 'tether-watched' : 'tether-twin', these, plan, rest),
    );
  }
}

/** The row of one comparison: its per-pair ratios in `values`, what they say in `extra`. */
function pairRow(
  spec: CellSpec,
  system: 'tether-watched' | 'tether-twin',
  pairs: MeasuredPair[],
  plan: { windowMs: number },
  rest: Rest,
): Row {
  const ratios = pairs.map((m) => m.subject.value / m.off.value);
  const s = summarize(ratios);
  const perUnit = (w: WindowFigures, process: string) => (w.cpuUs[process] ?? 0) / w.units;
  const medianOf = (f: (m: MeasuredPair) => number) => median(pairs.map(f));
  const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
  const extra: NonNullable<Row['extra']> = {
    part: spec.metric === 'msgsPerSec' ? 'throughput' : 'idle',
    connections: spec.connections ?? null,
    windowSeconds: plan.windowMs / 1000,
    pairs: s.pairs,
    medianRatio: s.median,
    meanRatio: s.mean,
    sdRatio: s.sd,
    halfWidth: s.halfWidth,
    subjectMedian: medianOf((m) => m.subject.value),
    offMedian: medianOf((m) => m.off.value),
    subjectGcMs: round(
      medianOf((m) => m.subject.gcMs),
      1,
    ),
    offGcMs: round(
      medianOf((m) => m.off.gcMs),
      1,
    ),
    updates: pairs.reduce((a, m) => a + m.subject.updates, 0),
    scrapes: pairs.reduce((a, m) => a + m.subject.scrapes, 0),
    ...profileFields(pairs),
  };
  if (spec.metric === 'msgsPerSec') {
    extra.serverUsPerMsgRatio = medianOf(
      (m) => perUnit(m.subject, 'server') / perUnit(m.off, 'server'),
    );
    extra.clientUsPerMsgRatio = medianOf(
      (m) => perUnit(m.subject, 'client') / perUnit(m.off, 'client'),
    );
    extra.subjectServerUsPerMsg = round(
      medianOf((m) => perUnit(m.subject, 'server')),
      3,
    );
    extra.offServerUsPerMsg = round(
      medianOf((m) => perUnit(m.off, 'server')),
      3,
    );
    extra.subjectClientUsPerMsg = round(
      medianOf((m) => perUnit(m.subject, 'client')),
      3,
    );
    extra.offClientUsPerMsg = round(
      medianOf((m) => perUnit(m.off, 'client')),
      3,
    );
  } else {
    // What the dashboard adds, in % of one core (the subject's window less the off one's).
    extra.deltaPercentOfCore = medianOf((m) => m.subject.value - m.off.value);
  }
  // The dashboard's main-thread time (its frames and the HTTP server's) against the server
  // process's CPU over the same windows (all its threads): what "idle CPU changes by" asks.
  const serverCpuMs = pairs.reduce((a, m) => a + (m.subject.cpuUs.server ?? 0) / 1000, 0);
  const profiledSeconds = pairs.reduce((a, m) => a + m.subject.profiledUs / 1e6, 0);
  extra.dashboardPercentOfServerCpu =
    serverCpuMs > 0
      ? round(
          (((extra.dashboardMsPerSecond as number) + (extra.httpMsPerSecond as number)) *
            profiledSeconds *
            100) /
            serverCpuMs,
          3,
        )
      : null;
  Object.assign(extra, restFields(pairs, rest), cpuFields(pairs, rest));
  if (extra.cpuSamples !== null) {
    // perf sampled the windows instead of V8: V8's figures would be of no samples.
    for (const key of V8_ONLY_FIELDS) extra[key] = null;
  }
  return {
    ...bareRow(system, spec.scenario, spec.payloadBytes),
    runs: s.pairs,
    min: s.min,
    max: s.max,
    values: ratios,
    extra,
  };
}

/**
 * `attributed` ms/s (± `attributedSe`) in % of the server's CPU at rest (the rest windows' mean,
 * ± sd / √n), its standard error by the delta method.
 */
function ofRest(attributed: number, attributedSe: number, rest: Rest) {
  const r = summarize(rest.windows.map((w) => (w.cpuUs.server ?? 0) / 1000 / (w.profiledUs / 1e6)));
  const restSe = r.sd / Math.sqrt(r.pairs);
  const percent = (attributed / r.mean) * 100;
  const se =
    attributed > 0
      ? percent * Math.sqrt((attributedSe / attributed) ** 2 + (restSe / r.mean) ** 2)
      : 0;
  return { r, restSe, percent, se };
}

/**
 * The figure for the 2 % criterion: the dashboard's attributed main-thread time (its frames and
 * the HTTP server's, ms per second of the row's subject windows) against the server's CPU at
 * rest in the same run (ms per second of the rest windows: unwatched, no profiler), in %. Its
 * standard error combines the attributed time's (the larger of the binomial one and that of
 * the per-window figures) and the rest CPU's (sd of the rest windows / √n) by the delta method.
 */
function restFields(pairs: MeasuredPair[], rest: Rest): NonNullable<Row['extra']> {
  const round = (v: number) => Math.round(v * 1000) / 1000;
  if (rest.windows.length === 0) return { restWindows: 0 };
  const attributedOf = (c: ProfileCounts) => ((c.part + c.http) / Math.max(c.samples, 1)) * 1000;
  // Over all subject windows: (dashboard + HTTP samples) / all samples × 1000.
  const sum = pairs.reduce((a, m) => addCounts(a, m.subject.profile), noCounts());
  const attributed = attributedOf(sum);
  const q = attributed / 1000;
  const binomialSe = Math.sqrt((q * (1 - q)) / Math.max(sum.samples, 1)) * 1000;
  const perWindow = pairs.map((m) => attributedOf(m.subject.profile));
  const windowSe = perWindow.length < 2 ? 0 : summarize(perWindow).sd / Math.sqrt(perWindow.length);
  const attributedSe = Math.max(binomialSe, windowSe);
  const { r, restSe, percent, se } = ofRest(attributed, attributedSe, rest);
  return {
    restWindows: r.pairs,
    restCpuMsPerSecond: round(r.mean),
    restCpuSeMsPerSecond: round(restSe),
    attributedMsPerSecond: round(attributed),
    attributedSeMsPerSecond: round(attributedSe),
    dashboardPercentOfRestCpu: round(percent),
    dashboardPercentOfRestCpuSe: round(se),
  };
}

/** Row fields from V8's samples (profileFields, restFields): null where perf sampled instead. */
const V8_ONLY_FIELDS = [
  'samplingIntervalUs',
  'dashboardMsPerSecond',
  'httpMsPerSecond',
  'profileSamples',
  'profileAllSamples',
  'effectiveIntervalUs',
  'dashboardSharePercent',
  'dashboardShareSePercent',
  'dashboardShareWindowSePercent',
  'httpSharePercent',
  'gcSharePercent',
  'programSharePercent',
  'offProfileSamples',
  'offDashboardSharePercent',
  'offDashboardShareSePercent',
  'dashboardTop',
  'dashboardPercentOfServerCpu',
  'attributedMsPerSecond',
  'attributedSeMsPerSecond',
  'dashboardPercentOfRestCpu',
  'dashboardPercentOfRestCpuSe',
] as const;

/**
 * The same figure from CPU time (lib/perf-share.ts): perf's samples of the server's main thread
 * on its CPU whose stack holds a frame of the dashboard or of Node's HTTP server, over the row's
 * subject windows, as ms of CPU per second of window, against the rest windows' CPU. Its
 * standard error: the larger of the count's (Poisson, √n) and that of the per-window figures.
 * Empty when perf did not run.
 */
function cpuFields(pairs: MeasuredPair[], rest: Rest): NonNullable<Row['extra']> {
  const windows = pairs.map((m) => m.subject).filter((w) => w.cpu !== undefined);
  if (windows.length === 0 || rest.windows.length === 0) return { cpuSamples: null };
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const seconds = windows.reduce((a, w) => a + w.profiledUs / 1e6, 0);
  const sum = windows.reduce((a, w) => addPerfCounts(a, w.cpu as PerfCounts), noPerfCounts());
  const msOf = (samples: number, s: number) => ((samples / PERF_HZ) * 1000) / s;
  const attributed = msOf(sum.part + sum.http, seconds);
  const countSe = msOf(Math.sqrt(sum.part + sum.http), seconds);
  const perWindow = windows.map((w) => {
    const c = w.cpu as PerfCounts;
    return msOf(c.part + c.http, w.profiledUs / 1e6);
  });
  const windowSe = perWindow.length < 2 ? 0 : summarize(perWindow).sd / Math.sqrt(perWindow.length);
  const attributedSe = Math.max(countSe, windowSe);
  const { percent, se } = ofRest(attributed, attributedSe, rest);
  const share = (sum.part + sum.http) / Math.max(sum.samples, 1);
  return {
    perfHz: PERF_HZ,
    cpuSamples: sum.samples,
    cpuDashboardSamples: sum.part,
    cpuHttpSamples: sum.http,
    cpuMainThreadMsPerSecond: round(msOf(sum.samples, seconds)),
    cpuAttributedMsPerSecond: round(attributed),
    cpuAttributedSeMsPerSecond: round(attributedSe),
    cpuPercentOfRestCpu: round(percent),
    cpuPercentOfRestCpuSe: round(se),
    // The share of the main thread's samples: perf's own cost per sample falls on every sample
    // alike, so it does not bias this one; the main thread being part of the process, it bounds
    // the dashboard's share of the server's CPU from above.
    cpuSharePercent: round(share * 100),
    cpuShareSePercent: round(Math.sqrt((share * (1 - share)) / Math.max(sum.samples, 1)) * 100),
  };
}

/**
 * The dashboard's share of the server's CPU by attribution (lib/profile-share.ts): the samples
 * of the subject windows (all of them together) whose stack holds a frame of the dashboard or
 * prom-client, of the samples not `(idle)`, in %, with the binomial standard error and, as a
 * check of it, the standard error of the per-window shares; the same for the off windows.
 */
function profileFields(pairs: MeasuredPair[]): NonNullable<Row['extra']> {
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const sum = (side: 'subject' | 'off') =>
    pairs.reduce((a, m) => addCounts(a, m[side].profile), noCounts());
  const subject = sum('subject');
  const off = sum('off');
  const share = shareOf(subject, subject.part);
  const offShare = shareOf(off, off.part);
  const perWindow = pairs.map((m) => shareOf(m.subject.profile, m.subject.profile.part).percent);
  const windowSe =
    perWindow.length < 2 ? null : summarize(perWindow).sd / Math.sqrt(perWindow.length);
  // Each sample stands for the profiled time / all samples: the dashboard's main-thread time per
  // second of window (wall time: a descheduled thread is sampled in the frame it stopped in).
  const profiledUs = pairs.reduce((a, m) => a + m.subject.profiledUs, 0);
  const msPerSecond = (count: number) => (count / Math.max(subject.samples, 1)) * 1000;
  return {
    samplingIntervalUs: SAMPLING_INTERVAL_US,
    dashboardMsPerSecond: round(msPerSecond(subject.part)),
    httpMsPerSecond: round(msPerSecond(subject.http)),
    profileSamples: share.busy,
    // The interval the samples came at: on a loaded machine the sampler thread waits for a core.
    profileAllSamples: subject.samples,
    effectiveIntervalUs: Math.round(profiledUs / Math.max(subject.samples, 1)),
    dashboardSharePercent: round(share.percent),
    dashboardShareSePercent: round(share.sePercent),
    dashboardShareWindowSePercent: windowSe === null ? null : round(windowSe),
    httpSharePercent: round(shareOf(subject, subject.http).percent),
    gcSharePercent: round(shareOf(subject, subject.gc).percent),
    programSharePercent: round(shareOf(subject, subject.program).percent),
    offProfileSamples: offShare.busy,
    offDashboardSharePercent: round(offShare.percent),
    offDashboardShareSePercent: round(offShare.sePercent),
    dashboardTop: topFunctions(subject, 6),
  };
}
