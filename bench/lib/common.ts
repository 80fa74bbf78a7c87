// Shared types and helpers of the benchmark runner (bench/index.ts) and its workers (bench/worker.ts).

/** Systems under test. */
export const SYSTEMS = [
  'tether',
  'tether-tls',
  'raw-net',
  'ws',
  'socket.io',
  'mqtt-qos0',
  'mqtt-qos1',
  'nats',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const SCENARIOS = ['throughput', 'rtt', 'file', 'recovery', 'idle-connections'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

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
  /** min and max over the runs of the row's main metric (msgsPerSec, p50Us, mbPerSec, ms ...). */
  min?: number | null;
  max?: number | null;
  /** Scenario-specific figures (recovery times, memory per connection, ...). */
  extra?: Record<string, number | string | boolean | null>;
  note?: string;
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
  quick: boolean;
  smoke: boolean;
  params?: Record<string, unknown>;
}

export type WorkerMessage =
  | { type: 'ready'; port: number; memoryPid: number }
  | { type: 'result'; rows: Row[] }
  | { type: 'sample'; rssBytes: number; heapUsedBytes: number; cpuUs: number }
  | { type: 'log'; text: string }
  | { type: 'progress'; [key: string]: unknown };

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

/** Reads the resident set of any process (the NATS server is a Go process). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU time (user + system) of any process, in microseconds. */
export async function cpuOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / 100) * 1e6;
}
