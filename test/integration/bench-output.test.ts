// `pnpm bench --smoke` runs end to end (server and client in separate processes) and writes
// well-formed results whose figures agree with each other. The benchmark itself is not part of
// `pnpm test`; this checks its shape and its arithmetic (ratios per repetition, medians, flags).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  comparisonsOf,
  flagsOf,
  limitOf,
  ratiosOf,
  rotated,
  spreadOf,
} from '../../bench/lib/cell-stats.js';
import { median } from '../../bench/lib/common.js';
import { pairPlan, summarize } from '../../bench/lib/paired-windows.js';
import { perfUsable } from '../../bench/lib/perf-share.js';
import { parseOptions } from '../../bench/runner/options.js';

const run = promisify(execFile);

/** `pnpm bench <args> --source --out <tmp>` through tsx; its stdout and latest.json. */
async function bench(args: string[]): Promise<{ stdout: string; result: Result; out: string }> {
  const out = await mkdtemp(join(tmpdir(), 'tether-bench-test-'));
  cleanups.push(() => rm(out, { recursive: true, force: true }));
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tether/source',
      'bench/index.ts',
      ...args,
      '--source',
      '--out',
      out,
    ],
    { cwd: root, timeout: 90_000 },
  );
  const result = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as Result;
  return { stdout, result, out };
}

interface Load {
  loadavgBefore: number[];
  loadavgAfter: number[];
  busyPercent: number;
  stealPercent: number;
  othersPercent: number;
  [key: string]: unknown;
}
interface Repetition {
  order: string[];
  values: Record<string, number>;
}
interface Result {
  schema: string;
  mode: string;
  tetherFrom: string;
  machine: { cpu: string; cores: number; node: string; versions: Record<string, string> };
  load: Load;
  cells: {
    scenario: string;
    payloadBytes: number;
    connections?: number;
    metric: string | null;
    repetitions: Repetition[];
    ratios: { system: string; against: string; perRepetition: number[]; median: number }[];
    load: Load;
    flags: { what: string }[];
  }[];
  rows: Row[];
}
const root = join(import.meta.dirname, '..', '..');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const nullableNumber = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));
const percent = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 100;

interface Row {
  system: string;
  scenario: string;
  payloadBytes: number;
  msgsPerSec: number;
  runs: number;
  min: number;
  max: number;
  values: number[];
  cpu: { per: string; us: number; min: number; max: number; byProcess: Record<string, number> };
  extra?: Record<string, unknown>;
  note?: string;
  [key: string]: unknown;
}

it('bench - pnpm bench --smoke writes latest.json and latest.md in the --out directory', async () => {
  const { stdout, result, out } = await bench(['--smoke']);
  expect(stdout).toContain('| system |');
  expect(stdout).toContain('| 128 B | tether vs raw-net |');
  const md = await readFile(join(out, 'latest.md'), 'utf8');
  expect(md).toBe(stdout);
  expect(result.schema).toBe('tether-bench/3');
  expect(result.mode).toBe('smoke');
  expect(result.tetherFrom).toBe('source');
  expect(typeof result.machine.cpu).toBe('string');
  expect(stdout).toContain(`CPU ${result.machine.cpu}`);
  expect(result.machine.cores).toBeGreaterThan(0);
  expect(typeof result.machine.node).toBe('string');
  expect(typeof result.machine.versions).toBe('object');
  for (const load of [result.load, ...result.cells.map((c) => c.load)]) {
    expect(load.loadavgBefore).toHaveLength(3);
    expect(load.loadavgAfter).toHaveLength(3);
    for (const key of ['busyPercent', 'stealPercent', 'othersPercent']) {
      expect(percent(load[key]), key).toBe(true);
    }
    expect(load.othersPercent).toBeLessThanOrEqual(load.busyPercent);
  }

  const rows: Row[] = result.rows;
  expect(rows.map((r) => r.system).sort()).toEqual(['raw-net', 'tether']);
  for (const row of rows) {
    expect(row.note, `${row.system} failed`).toBeUndefined();
    expect(row.scenario).toBe('throughput');
    expect(row.payloadBytes).toBe(128);
    for (const key of ['msgsPerSec', 'mbPerSec', 'p50Us', 'p99Us', 'p999Us']) {
      expect(nullableNumber(row[key]), key).toBe(true);
    }
    expect(row.runs).toBe(3);
    expect(row.values).toHaveLength(3);
    expect(row.msgsPerSec).toBe(median(row.values));
    expect(row.min).toBe(Math.min(...row.values));
    expect(row.max).toBe(Math.max(...row.values));
    expect(row.msgsPerSec).toBeGreaterThan(0);
    // CPU of both processes of the system, per delivered message.
    expect(row.cpu.per).toBe('message');
    expect(Object.keys(row.cpu.byProcess).sort()).toEqual(['client', 'server']);
    expect(row.cpu.byProcess.client).toBeGreaterThan(0);
    expect(row.cpu.byProcess.server).toBeGreaterThan(0);
    const split = Object.values(row.cpu.byProcess).reduce((a, b) => a + b, 0);
    expect(split).toBeCloseTo(row.cpu.us, 6);
    expect(row.cpu.us).toBeGreaterThanOrEqual(row.cpu.min);
    expect(row.cpu.us).toBeLessThanOrEqual(row.cpu.max);
  }

  // One cell, whose repetitions ran both systems in a rotated order and hold the rows' values.
  expect(result.cells).toHaveLength(1);
  const cell = result.cells[0] as Result['cells'][number];
  expect(cell.scenario).toBe('throughput');
  expect(cell.metric).toBe('msgsPerSec');
  expect(cell.repetitions).toHaveLength(3);
  const first = cell.repetitions[0]?.order as string[];
  expect([...first].sort()).toEqual(['raw-net', 'tether']);
  cell.repetitions.forEach((rep, i) => {
    expect(rep.order).toEqual(rotated(first, i));
    for (const row of rows) expect(rep.values[row.system]).toBe(row.values[i]);
  });
  const tether = rows.find((r) => r.system === 'tether') as Row;
  const raw = rows.find((r) => r.system === 'raw-net') as Row;
  const ratio = cell.ratios.find((r) => r.system === 'tether' && r.against === 'raw-net');
  const perRepetition = tether.values.map((v, i) => v / (raw.values[i] as number));
  expect(ratio?.perRepetition).toEqual(perRepetition);
  expect(ratio?.median).toBe(median(perRepetition));
  // Flagged exactly when runs (or the ratio) are more than 2x apart.
  const spreads = [
    ['tether', spreadOf(tether.values)],
    ['raw-net', spreadOf(raw.values)],
    ['tether vs raw-net', spreadOf(perRepetition)],
  ] as const;
  expect(cell.flags.map((f) => f.what).sort()).toEqual(
    spreads
      .filter(([, s]) => s > 2)
      .map(([what]) => what)
      .sort(),
  );
}, 120_000);

it('bench - tether-watched and tether-twin as systems of their own (smoke): vs tether in throughput and at rest, per repetition', async () => {
  const { stdout, result } = await bench([
    '--smoke',
    '--systems',
    'tether,tether-watched,tether-twin',
    '--scenarios',
    'throughput,idle-connections',
  ]);
  const rows = result.rows;
  expect(rows.filter((r) => r.note)).toEqual([]);
  expect(rows.map((r) => `${r.scenario} ${r.system}`).sort()).toEqual([
    'idle-connections tether',
    'idle-connections tether-twin',
    'idle-connections tether-watched',
    'throughput tether',
    'throughput tether-twin',
    'throughput tether-watched',
  ]);
  expect(result.cells.map((c) => c.scenario)).toEqual(['throughput', 'idle-connections']);
  for (const cell of result.cells) {
    const of = (system: string) =>
      rows.find((r) => r.scenario === cell.scenario && r.system === system) as Row;
    const [tether, watched, twin] = [of('tether'), of('tether-watched'), of('tether-twin')];
    // Both ran in every repetition, in a rotated order, and the ratio is taken in each.
    expect(cell.repetitions).toHaveLength(3);
    const first = cell.repetitions[0]?.order as string[];
    expect([...first].sort()).toEqual(['tether', 'tether-twin', 'tether-watched']);
    cell.repetitions.forEach((rep, i) => {
      expect(rep.order).toEqual(rotated(first, i));
      expect(rep.values.tether).toBe(tether.values[i]);
      expect(rep.values['tether-watched']).toBe(watched.values[i]);
      expect(rep.values['tether-twin']).toBe(twin.values[i]);
    });
    for (const [name, row] of [
      ['tether-watched', watched],
      ['tether-twin', twin],
    ] as const) {
      const ratio = cell.ratios.find((r) => r.system === name && r.against === 'tether');
      const perRepetition = row.values.map((v, i) => v / (tether.values[i] as number));
      expect(ratio?.perRepetition).toEqual(perRepetition);
      expect(ratio?.median).toBe(median(perRepetition));
    }
    expect(cell.ratios.map((r) => `${r.system} vs ${r.against}`).sort()).toEqual([
      'tether-twin vs tether',
      'tether-watched vs tether',
    ]);
  }
  const idle = result.cells[1] as Result['cells'][number];
  expect(idle.metric).toBe('cpuAtRestPercent');
  expect(idle.connections).toBe(200);
  for (const row of rows.filter((r) => r.scenario === 'idle-connections')) {
    expect(row.runs).toBe(3);
    expect(row.extra?.connections).toBe(200);
    expect(row.extra?.cpuAtRestPercent).toBe(median(row.values));
    for (const v of row.values) expect(percent(v)).toBe(true);
    // Each window's CPU is the server side's own: something, while 200 clients ping.
    expect(row.max).toBeGreaterThan(0);
  }
  expect(stdout).toContain('| 128 B | tether-watched vs tether |');
  expect(stdout).toContain('| x 200 | tether-watched vs tether |');
  expect(stdout).toContain('| x 200 | tether-twin vs tether |');
}, 120_000);

it('bench - pnpm bench:dashboard (smoke): paired windows in one process, watched / unwatched and A/A, per pair', async () => {
  const { stdout, result } = await bench(['--smoke', '--scenarios', 'dashboard-cost']);
  const rows = result.rows;
  expect(rows.filter((r) => r.note)).toEqual([]);
  expect(rows.map((r) => `${r.scenario} ${r.system} ${r.payloadBytes}`)).toEqual([
    'dashboard-cost tether-watched 128',
    'dashboard-cost tether-twin 128',
    'dashboard-cost tether-watched 0',
    'dashboard-cost tether-twin 0',
  ]);
  expect(result.cells.map((c) => `${c.scenario} ${c.metric} ${c.connections}`)).toEqual([
    'dashboard-cost msgsPerSec undefined',
    'dashboard-cost cpuAtRestPercent 200',
  ]);
  // The pairs ran in the planned order: 2 rounds, each a test pair and a control pair.
  const orders = pairPlan(2).map((p) => {
    const subject = p.kind === 'test' ? 'tether-watched' : 'tether-twin';
    return p.subjectSecond ? ['tether', subject] : [subject, 'tether'];
  });
  for (const cell of result.cells) {
    expect(cell.repetitions.map((r) => r.order)).toEqual(orders);
    for (const subject of ['tether-watched', 'tether-twin']) {
      const row = rows.find(
        (r) => r.system === subject && r.payloadBytes === cell.payloadBytes,
      ) as Row;
      const pairs = cell.repetitions.filter((r) => r.values[subject] !== undefined);
      expect(pairs).toHaveLength(2);
      const perPair = pairs.map((r) => (r.values[subject] as number) / (r.values.tether as number));
      // The row's values are the pairs' ratios, as the cell's ratio has them.
      expect(row.values).toEqual(perPair);
      const ratio = cell.ratios.find((r) => r.system === subject && r.against === 'tether');
      expect(ratio?.perRepetition).toEqual(perPair);
      expect(row.extra?.medianRatio).toBe(median(perPair));
      expect(row.extra?.pairs).toBe(2);
      for (const r of pairs) {
        expect(r.values.tether).toBeGreaterThan(0);
        expect(r.values[subject]).toBeGreaterThan(0);
      }
      // The dashboard's share by attribution: samples of the server's profile, in every window.
      const e = row.extra ?? {};
      expect(e.samplingIntervalUs).toBe(200);
      expect(e.profileSamples).toBeGreaterThan(0);
      expect(e.offProfileSamples).toBeGreaterThan(0);
      expect(e.profileAllSamples).toBeGreaterThanOrEqual(e.profileSamples as number);
      expect(e.effectiveIntervalUs).toBeGreaterThanOrEqual(150);
      expect(e.dashboardMsPerSecond as number).toBeCloseTo(
        ((e.dashboardSharePercent as number) / 100) *
          ((e.profileSamples as number) / (e.profileAllSamples as number)) *
          1000,
        1,
      );
      for (const key of [
        'dashboardSharePercent',
        'offDashboardSharePercent',
        'httpSharePercent',
        'gcSharePercent',
        'programSharePercent',
        'dashboardPercentOfServerCpu',
      ]) {
        expect(percent(e[key]), key).toBe(true);
      }
      const p = (e.dashboardSharePercent as number) / 100;
      expect(e.dashboardShareSePercent as number).toBeCloseTo(
        Math.sqrt((p * (1 - p)) / (e.profileSamples as number)) * 100,
        2,
      );
      // The figure for the 2 % criterion: attributed time against the unprofiled rest windows'
      // CPU (one per round), with its standard error.
      expect(e.restWindows).toBe(2);
      expect(e.restCpuMsPerSecond).toBeGreaterThan(0);
      expect(e.attributedMsPerSecond as number).toBeCloseTo(
        (e.dashboardMsPerSecond as number) + (e.httpMsPerSecond as number),
        2,
      );
      // The report rounds its inputs: within 0.05 points or 0.5 % (a smoke run's idle server is
      // nearly silent, so the share can run to thousands of percent).
      const ofRest = ((e.attributedMsPerSecond as number) / (e.restCpuMsPerSecond as number)) * 100;
      expect(Math.abs((e.dashboardPercentOfRestCpu as number) - ofRest)).toBeLessThanOrEqual(
        0.05 + ofRest * 0.005,
      );
      expect(e.dashboardPercentOfRestCpuSe).toBeGreaterThanOrEqual(0);
      // perf's figures only with --attribution perf (below).
      expect(e.cpuSamples).toBeNull();
      // The watcher read the live page and /metrics in the watched windows only.
      if (subject === 'tether-watched') {
        expect(row.extra?.updates).toBeGreaterThanOrEqual(2);
        expect(row.extra?.scrapes).toBeGreaterThanOrEqual(2);
        // Its updates and scrapes ran in the server's dashboard code: some samples are its.
        expect(e.dashboardSharePercent).toBeGreaterThan(0);
        expect(e.dashboardTop).toMatch(/\d+ \(\d+\.\d+ %\)/);
      } else {
        expect(row.extra?.updates).toBe(0);
        expect(row.extra?.scrapes).toBe(0);
      }
    }
  }
  expect(stdout).toContain('## dashboard-cost');
  expect(stdout).toContain('| 128 B | watched / unwatched | 2 |');
  expect(stdout).toContain('| idle x 200 | A/A (tether-twin) | 2 |');
  expect(stdout).toContain('- Dashboard samples by function, 128 B, watched windows: ');
}, 120_000);

it.runIf(perfUsable())(
  "bench - pnpm bench:dashboard --attribution perf (smoke): the dashboard's CPU from perf samples of the server",
  async () => {
    const { stdout, result } = await bench([
      '--smoke',
      '--scenarios',
      'dashboard-cost',
      '--attribution',
      'perf',
    ]);
    expect(result.rows.filter((r) => r.note)).toEqual([]);
    for (const row of result.rows) {
      const e = row.extra ?? {};
      expect(e.perfHz).toBe(4999);
      expect(e.cpuSamples).toBeGreaterThan(0);
      const attributed = (e.cpuDashboardSamples as number) + (e.cpuHttpSamples as number);
      expect(attributed).toBeLessThanOrEqual(e.cpuSamples as number);
      // The report rounds its inputs (as for V8's figure).
      const ofRest =
        ((e.cpuAttributedMsPerSecond as number) / (e.restCpuMsPerSecond as number)) * 100;
      expect(Math.abs((e.cpuPercentOfRestCpu as number) - ofRest)).toBeLessThanOrEqual(
        0.05 + ofRest * 0.005,
      );
      expect(e.cpuPercentOfRestCpuSe).toBeGreaterThanOrEqual(0);
      expect(e.cpuSharePercent as number).toBeCloseTo(
        (attributed / (e.cpuSamples as number)) * 100,
        2,
      );
      // Watched windows ran the dashboard's code on the server's CPU; unwatched ones (the twin of
      // the same part) far less: an RTT sample into its histogram, Node's HTTP server checking
      // its idle connections.
      if (row.system === 'tether-watched') {
        expect(e.cpuDashboardSamples).toBeGreaterThan(0);
        const twin = result.rows.find(
          (r) => r.system === 'tether-twin' && r.payloadBytes === row.payloadBytes,
        )?.extra;
        const twinAttributed =
          (twin?.cpuDashboardSamples as number) + (twin?.cpuHttpSamples as number);
        // A quarter at most: naming frames by the first line of the perf map, not the latest,
        // put 366 samples into unwatched throughput windows against 489 watched.
        expect(twinAttributed * 4).toBeLessThan(attributed);
      }
      // V8's sampler did not run: its figures are not made up from no samples.
      expect(e.profileSamples).toBeNull();
      expect(e.dashboardPercentOfRestCpu).toBeNull();
    }
    expect(stdout).toContain('by CPU time (perf) **');
  },
  120_000,
);

it('pnpm bench --scenarios bundle - browser bundles built alike, sizes from the built bytes', async () => {
  const { stdout, result } = await bench(['--scenarios', 'bundle', '--systems', 'tether']);
  const rows = result.rows.filter((r) => r.scenario === 'bundle');
  expect(rows.map((r) => r.system)).toEqual(['tether', 'tether', 'socket.io-client', 'mqtt']);
  for (const row of rows) {
    const min = row.extra?.minBytes as number;
    const gzip = row.extra?.gzipBytes as number;
    // Real minified code: kilobytes, and gzip shrinks it.
    expect(min).toBeGreaterThan(10_000);
    expect(gzip).toBeGreaterThan(2_000);
    expect(gzip).toBeLessThan(min);
  }
  // The second Tether row adds the file module to what the first has.
  const [connect, withFiles] = rows as [Row, Row];
  expect(withFiles.extra?.minBytes as number).toBeGreaterThan(connect.extra?.minBytes as number);
  expect(stdout).toContain('## browser bundle');
  expect(stdout).toMatch(/\| socket\.io-client \| .* \| 1\.00x \|/);
}, 120_000);

describe('bench cell stats', () => {
  it('rotated - each repetition starts one system later', () => {
    expect(rotated(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotated(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotated(['a', 'b', 'c'], 5)).toEqual(['c', 'a', 'b']);
    expect(rotated([], 3)).toEqual([]);
  });

  it('limitOf - tether-tls is compared with raw-tls, raw-tls and the rest with raw-net', () => {
    expect(limitOf('tether-tls')).toBe('raw-tls');
    expect(limitOf('raw-tls')).toBe('raw-net');
    expect(limitOf('tether')).toBe('raw-net');
    expect(limitOf('nats')).toBe('raw-net');
    expect(limitOf('raw-net')).toBeUndefined();
    expect(comparisonsOf('tether', ['tether', 'raw-net', 'ws', 'nats'])).toEqual([
      'raw-net',
      'best peer',
      'ws',
      'nats',
    ]);
    expect(comparisonsOf('tether-tls', ['tether-tls', 'tether', 'raw-net'])).toEqual(['tether']);
    // What the dashboard costs: tether-watched against tether, besides its limit.
    expect(limitOf('tether-watched')).toBe('raw-net');
    expect(comparisonsOf('tether-watched', ['tether-watched', 'tether'])).toEqual(['tether']);
    expect(comparisonsOf('tether-twin', ['tether-twin', 'tether'])).toEqual(['tether']);
    expect(comparisonsOf('tether-watched', ['tether-watched', 'tether', 'raw-net'])).toEqual([
      'raw-net',
      'tether',
    ]);
  });

  it('ratiosOf - ratios within each repetition, best peer per repetition, median', () => {
    const reps = [
      {
        order: ['tether', 'raw-net', 'ws', 'nats'],
        values: { tether: 100, 'raw-net': 400, ws: 50, nats: 80 },
      },
      {
        order: ['raw-net', 'ws', 'nats', 'tether'],
        values: { tether: 30, 'raw-net': 100, ws: 60, nats: 20 },
      },
      // nats failed in this one: its ratios skip it, the best peer is ws.
      {
        order: ['ws', 'nats', 'tether', 'raw-net'],
        values: { tether: 90, 'raw-net': 300, ws: 45 },
      },
    ];
    const ratios = ratiosOf(reps, true);
    const of = (system: string, against: string) =>
      ratios.find((r) => r.system === system && r.against === against);
    expect(of('tether', 'raw-net')?.perRepetition).toEqual([0.25, 0.3, 0.3]);
    expect(of('tether', 'raw-net')?.median).toBe(0.3);
    expect(of('tether', 'best peer')?.perRepetition).toEqual([100 / 80, 30 / 60, 90 / 45]);
    expect(of('tether', 'nats')?.perRepetition).toEqual([100 / 80, 30 / 20]);
    expect(of('tether', 'nats')?.median).toBe((100 / 80 + 30 / 20) / 2);
    expect(of('raw-net', 'raw-net')).toBeUndefined();
    // Latency: the best peer is the lowest.
    const latency = ratiosOf(reps, false);
    expect(
      latency.find((r) => r.system === 'tether' && r.against === 'best peer')?.perRepetition,
    ).toEqual([100 / 50, 30 / 20, 90 / 45]);
  });

  it('pairPlan - a test and a control pair per round, every position taken over four rounds', () => {
    const plan = pairPlan(4);
    expect(plan.map((p) => `${p.kind} ${p.subjectSecond ? 'second' : 'first'}`)).toEqual([
      'test second',
      'control second',
      'test first',
      'control first',
      'control second',
      'test second',
      'control first',
      'test first',
    ]);
    expect(pairPlan(0)).toEqual([]);
  });

  it('--rounds - dashboard-cost rounds, a positive integer; dashboard-cost only when named', () => {
    const dir = join(root, 'bench');
    expect(parseOptions(['--rounds', '40'], dir).rounds).toBe(40);
    expect(parseOptions([], dir).rounds).toBeUndefined();
    expect(() => parseOptions(['--rounds', '0'], dir)).toThrow('--rounds');
    expect(() => parseOptions(['--rounds', '2.5'], dir)).toThrow('--rounds');
    expect(parseOptions([], dir).scenarios).not.toContain('dashboard-cost');
    expect(parseOptions(['--scenarios', 'dashboard-cost'], dir).scenarios).toEqual([
      'dashboard-cost',
    ]);
  });

  it('summarize - median, spread, mean and two standard errors of per-pair ratios', () => {
    const s = summarize([1.1, 0.9, 1.0, 1.2]);
    expect(s.pairs).toBe(4);
    expect(s.median).toBeCloseTo(1.05, 12);
    expect([s.min, s.max]).toEqual([0.9, 1.2]);
    expect(s.mean).toBeCloseTo(1.05, 12);
    // Sample sd of 0.05, -0.15, -0.05, 0.15: sqrt(0.05 / 3).
    expect(s.sd).toBeCloseTo(Math.sqrt(0.05 / 3), 12);
    expect(s.halfWidth).toBeCloseTo(Math.sqrt(0.05 / 3), 12);
    expect(summarize([1.02]).halfWidth).toBe(Number.POSITIVE_INFINITY);
    expect(() => summarize([])).toThrow();
  });

  it('flagsOf - runs or Tether ratios more than 2x apart, not exactly 2x', () => {
    const reps = [
      { order: [], values: { tether: 100, 'raw-net': 200, ws: 10 } },
      { order: [], values: { tether: 201, 'raw-net': 400, ws: 25 } },
    ];
    const flags = flagsOf(reps, ratiosOf(reps, true));
    expect(flags.map((f) => f.what).sort()).toEqual(['tether', 'ws']);
    const ws = flags.find((f) => f.what === 'ws');
    expect(ws).toEqual({ what: 'ws', min: 10, max: 25, spread: 2.5 });
    const apart = [
      { order: [], values: { tether: 100, 'raw-net': 100 } },
      { order: [], values: { tether: 150, 'raw-net': 60 } },
    ];
    expect(flagsOf(apart, ratiosOf(apart, true)).map((f) => f.what)).toEqual(['tether vs raw-net']);
  });
});
