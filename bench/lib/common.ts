// Shared types and helpers of the benchmark runner (bench/index.ts, bench/runner/*) and its workers
// (bench/worker.ts).
import type { ProfileCounts } from './profile-share.js';

/** Systems under test. */
export const SYSTEMS = [
  'tether',
  'tether-tls',
  'tether-watched',
  'tether-twin',
  'tether-cluster',
  'tether-ws',
  'tether-publish',
  'raw-net',
  'raw-net-heartbeat',
  'raw-tls',
  'ws',
  'socket.io',
  'mqtt-qos0',
  'mqtt-qos1',
  'nats',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

/**
 * Systems a run without `--systems` takes: all but `tether-watched` (Tether with its dashboard
 * watched), `tether-twin` (`tether` again, in processes of its own), `tether-cluster` (Tether on
 * Redis behind HAProxy) and `tether-publish` (Tether's `publish()` and `flush()`), which each
 * answer one question (what the dashboard costs; how far two identical systems measure apart;
 * what sessions in Redis cost; what a promise per message costs) and are asked for by name.
 */
export const DEFAULT_SYSTEMS: readonly SystemName[] = SYSTEMS.filter(
  (s) =>
    s !== 'tether-watched' &&
    s !== 'tether-twin' &&
    s !== 'tether-cluster' &&
    s !== 'tether-publish',
);

/**
 * Systems that exist for idle-connections only: `raw-net-heartbeat`, the plainest ping and echo on
 * node:net at Tether's heartbeat rates (the floor of that traffic). Other cells leave them out.
 */
export const IDLE_ONLY: readonly SystemName[] = ['raw-net-heartbeat'];

/**
 * `cluster-resume` runs only for `tether-cluster` (and only when it is asked for);
 * `dashboard-cost` (`pnpm bench:dashboard`) only when asked for by name.
 */
export const SCENARIOS = [
  'throughput',
  'rtt',
  'file',
  'recovery',
  'idle-connections',
  'cluster-resume',
  'bundle',
  'dashboard-cost',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Scenarios a run without `--scenarios` takes: all but `dashboard-cost`. */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = SCENARIOS.filter(
  (s) => s !== 'dashboard-cost',
);

/**
 * CPU (user + system) a system's processes spent per unit of work, in the repetition with the
 * median total (the lower middle one for an even count).
 */
export interface CpuFigure {
  /** What one unit is: a delivered message (throughput), a round trip (rtt), a MB (file). */
  per: 'message' | 'round trip' | 'MB';
  /** All processes of the system together, µs per unit. */
  us: number;
  /** The lowest and highest total over the repetitions. */
  min: number;
  max: number;
  /** µs per unit of each process in that repetition: `client`, `server`, `nats-server`. */
  byProcess: Record<string, number>;
}

/** One row of bench/results/latest.json (schema in bench/README.md). */
export interface Row {
  system: string;
  /** throughput | rtt | rtt-open-loop | file | recovery | idle-connections */
  scenario: string;
  payloadBytes: number;
  msgsPerSec: number | null;
  mbPerSec: number | null;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  runs: number;
  /** min and max over the runs of the row's main metric (msgsPerSec, p50Us, mbPerSec). */
  min?: number | null;
  max?: number | null;
  /** The main metric of each measured repetition, in the order they ran. */
  values?: number[];
  cpu?: CpuFigure | null;
  /** Scenario-specific figures (recovery times, memory per connection, ...). */
  extra?: Record<string, number | string | boolean | null>;
  note?: string;
}

/** A row of one measurement with none of the common figures (each scenario adds its own). */
export function bareRow(system: string, scenario: string, payloadBytes: number): Row {
  return {
    system,
    scenario,
    payloadBytes,
    msgsPerSec: null,
    mbPerSec: null,
    p50Us: null,
    p99Us: null,
    p999Us: null,
    runs: 1,
  };
}

/** A row of a single measurement whose figures are all in `extra` (recovery, resume, bundle). */
export function extraRow(
  system: string,
  scenario: string,
  payloadBytes: number,
  extra: NonNullable<Row['extra']>,
): Row {
  return { ...bareRow(system, scenario, payloadBytes), extra };
}

/** One ratio of two systems of a cell, taken in every repetition (both ran in it). */
export interface Ratio {
  system: string;
  /** Another system, or 'best peer' (the best of PEERS in that repetition). */
  against: string;
  perRepetition: number[];
  median: number;
}

/** A cell whose runs disagree by more than 2x: a system's own runs, or one of Tether's ratios. */
export interface Flag {
  /** 'tether', or 'tether vs nats' for a ratio. */
  what: string;
  min: number;
  max: number;
  /** max / min */
  spread: number;
}

/** The machine's load over one cell (see runner/load.ts). */
export interface CellLoad {
  /** 1, 5 and 15 minute load averages when the cell started and when it ended. */
  loadavgBefore: number[];
  loadavgAfter: number[];
  seconds: number;
  /** Share of all cores busy over the cell (/proc/stat: not idle, iowait or steal), percent. */
  busyPercent: number;
  /** Share of all cores the hypervisor gave to other guests while we wanted them, percent. */
  stealPercent: number;
  /** busyPercent less what this benchmark's own processes used: other work on the machine. */
  othersPercent: number;
}

/**
 * Systems measured together: one scenario and payload (and connection count). Interleaved cells
 * run every system once per repetition, in a rotated order; the recovery cell runs once
 * (repetitions is empty).
 */
export interface Cell {
  scenario: string;
  payloadBytes: number;
  /** idle-connections only. */
  connections?: number;
  /**
   * The figure the repetitions compare: throughput msgs/s, rtt p50 µs, file MB/s, idle server
   * CPU % of a core; null for recovery (one run).
   */
  metric: 'msgsPerSec' | 'p50Us' | 'mbPerSec' | 'cpuAtRestPercent' | null;
  systems: string[];
  repetitions: { order: string[]; values: Record<string, number> }[];
  ratios: Ratio[];
  load: CellLoad;
  flags: Flag[];
}

/** What a worker gets on its command line (JSON). */
export interface WorkerArgs {
  role: 'server' | 'client';
  system: SystemName;
  scenario: ScenarioName;
  /** Server: 'sink' counts messages and answers barriers, 'echo' echoes them. */
  mode?: 'sink' | 'echo';
  port?: number;
  tls?: { cert: string; key: string };
  uploadDir?: string;
  /** Server: the dashboard on (port 0), watched by nobody in the worker (the runner watches it). */
  dashboard?: boolean;
  /** Run with the flags that let `perf` name JavaScript frames (lib/perf-share.ts). */
  perfMap?: boolean;
  quick: boolean;
  smoke: boolean;
}

/** CPU time in µs of each process of one side of a system, by name. */
export type CpuByProcess = Record<string, number>;

/** Runner -> worker. */
export type RunnerMessage =
  | { type: 'op'; id: number; name: string; params: Record<string, unknown> }
  | { type: 'cpu' }
  | { type: 'sample' }
  | { type: 'heartbeats' }
  /** A full garbage collection (`gc()`), answered with `gc` once done. */
  | { type: 'gc' }
  /** The main thread's GC pauses so far (dashboard-cost servers only), answered with `gc-time`. */
  | { type: 'gc-time' }
  /**
   * V8's sampling profiler on (dashboard-cost servers only), answered with `profile-started`;
   * `profile-stop` ends it, answered with `profile`: its samples counted for the dashboard.
   */
  | { type: 'profile-start'; intervalUs: number }
  | { type: 'profile-stop' }
  | { type: 'stop' };

/** Worker -> runner. */
export type WorkerMessage =
  /**
   * `helpers`: pids of processes the server started (nats-server), ended with it;
   * `dashboardPort`: the dashboard's, when the server was asked for one (`WorkerArgs.dashboard`).
   */
  | { type: 'ready'; port: number; helpers: number[]; dashboardPort?: number }
  | { type: 'connected' }
  | { type: 'op-result'; id: number; result?: unknown; error?: string }
  | { type: 'cpu'; byProcess: CpuByProcess }
  | { type: 'gc' }
  /** `pauseUs`: GC pauses of the main thread since the worker started; `count`: how many. */
  | { type: 'gc-time'; pauseUs: number; count: number }
  | { type: 'profile-started' }
  | { type: 'profile'; counts: ProfileCounts }
  | { type: 'sample'; rssBytes: number; heapUsedBytes: number; cpuUs: number }
  /** Heartbeat frames the server received so far; null for a system that does not count them. */
  | { type: 'heartbeats'; frames: number | null }
  | { type: 'log'; text: string };

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Barrier messages are exactly 12 bytes: 'BARR' + u32 expected count + u32 run id. No data message
 * in the benchmark has that length. The sink answers with a 12-byte 'DONE' + u32 count + u32 run.
 */
export const BARRIER_LENGTH = 12;

export function barrier(kind: 'BARR' | 'DONE' | 'MODE', count: number, run: number): Buffer {
  const b = Buffer.alloc(BARRIER_LENGTH);
  b.write(kind, 0, 'latin1');
  b.writeUInt32BE(count >>> 0, 4);
  b.writeUInt32BE(run >>> 0, 8);
  return b;
}

export function parseBarrier(b: Buffer): { kind: string; count: number; run: number } | undefined {
  if (b.length !== BARRIER_LENGTH) return undefined;
  return { kind: b.toString('latin1', 0, 4), count: b.readUInt32BE(4), run: b.readUInt32BE(8) };
}
