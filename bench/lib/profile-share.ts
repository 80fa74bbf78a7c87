// What share of a process's CPU a part of its code takes, by attribution: V8's sampling profiler
// (node:inspector, in the process itself) records the stack of the main thread every interval;
// a sample whose stack holds a frame of that code counts for it, against every sample the thread
// was not waiting in (`(idle)`). The dashboard-cost cell (runner/dashboard-cost-cells.ts) asks
// this of the server's dashboard: a difference of 2 % that two windows of one server do not
// resolve (they differ by 10-20 % on their own) is a share of samples inside one window.
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

/** The parts of a `Profiler.Profile` this reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples?: number[];
}

/** What the samples of one profile say about one part of the code. */
export interface ProfileCounts {
  /** All samples, `(idle)` included. */
  samples: number;
  /** The thread waited for events (the event loop's poll). */
  idle: number;
  /** V8's `(garbage collector)` and `(program)` (native code outside any JS frame). */
  gc: number;
  program: number;
  /** Samples whose stack holds a frame of the part. */
  part: number;
  /** Of the rest, samples whose stack holds a frame of Node's HTTP server (`node:_http_*`). */
  http: number;
  /** The part's samples by their innermost frame of the part: `name file:line` -> samples. */
  byFunction: Record<string, number>;
}

/**
 * The frames of Tether's dashboard: its modules (`dashboardDir`, the server's `dist/dashboard/`,
 * or `src/dashboard/` when it runs from source) and prom-client's, which only the dashboard loads
 * and calls (its registry, when /metrics is scraped). A frame's url is a file URL (ES modules)
 * or a path (what a test runner's module loader gives).
 */
export function dashboardFrames(dashboardDir: string): (url: string) => boolean {
  const dir = dashboardDir.startsWith('file:') ? fileURLToPath(dashboardDir) : dashboardDir;
  return (url) => {
    const path = url.startsWith('file:') ? fileURLToPath(url) : url;
    return path.startsWith(dir) || path.includes('/node_modules/prom-client/');
  };
}

/** An empty tally, to sum profiles into. */
export function noCounts(): ProfileCounts {
  return { samples: 0, idle: 0, gc: 0, program: 0, part: 0, http: 0, byFunction: {} };
}

/**
 * Counts a profile's samples: `isPart(url)` says whether a frame's script belongs to the part.
 * A sample counts for the part when any frame of its stack does (the part's own work and what it
 * calls: Buffer, JSON, the socket writes it makes).
 */
export function attribute(profile: CpuProfile, isPart: (url: string) => boolean): ProfileCounts {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Per node: the innermost frame of the part on its stack (or none), and whether HTTP is on it.
  const memo = new Map<number, { label: string | undefined; http: boolean }>();
  const classify = (id: number): { label: string | undefined; http: boolean } => {
    const known = memo.get(id);
    if (known) return known;
    const node = byId.get(id);
    if (node === undefined) return { label: undefined, http: false };
    const up = parent.has(id)
      ? classify(parent.get(id) as number)
      : { label: undefined, http: false };
    const { url, functionName, lineNumber } = node.callFrame;
    const own = url !== '' && isPart(url);
    const result = {
      label: own
        ? `${functionName || '(anonymous)'} ${url.slice(url.lastIndexOf('/') + 1)}:${lineNumber + 1}`
        : up.label,
      http: up.http || url.startsWith('node:_http_'),
    };
    memo.set(id, result);
    return result;
  };
  const counts = noCounts();
  for (const id of profile.samples ?? []) {
    counts.samples++;
    const name = byId.get(id)?.callFrame.functionName;
    if (name === '(idle)') counts.idle++;
    else if (name === '(garbage collector)') counts.gc++;
    else if (name === '(program)') counts.program++;
    else {
      const { label, http } = classify(id);
      if (label !== undefined) {
        counts.part++;
        counts.byFunction[label] = (counts.byFunction[label] ?? 0) + 1;
      } else if (http) counts.http++;
    }
  }
  return counts;
}

/** `a` plus `b`, into `a`. */
export function addCounts(a: ProfileCounts, b: ProfileCounts): ProfileCounts {
  a.samples += b.samples;
  a.idle += b.idle;
  a.gc += b.gc;
  a.program += b.program;
  a.part += b.part;
  a.http += b.http;
  for (const [k, v] of Object.entries(b.byFunction)) a.byFunction[k] = (a.byFunction[k] ?? 0) + v;
  return a;
}

/** A share of the non-idle samples, with its binomial standard error (both in %). */
export interface Share {
  /** Non-idle samples: the denominator. */
  busy: number;
  percent: number;
  sePercent: number;
}

/**
 * `count` of the non-idle samples. The binomial SE treats the samples as independent; adjacent
 * samples of one long call are not, so the spread between windows is the other check.
 */
export function shareOf(counts: ProfileCounts, count: number): Share {
  const busy = counts.samples - counts.idle;
  if (busy <= 0) return { busy: 0, percent: 0, sePercent: 0 };
  const p = count / busy;
  return { busy, percent: p * 100, sePercent: Math.sqrt((p * (1 - p)) / busy) * 100 };
}

/** The part's functions that hold the most samples: `name file:line n (p %)`, `; `-joined. */
export function topFunctions(counts: ProfileCounts, n: number): string {
  const busy = counts.samples - counts.idle;
  return Object.entries(counts.byFunction)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${v} (${((v / Math.max(busy, 1)) * 100).toFixed(2)} %)`)
    .join('; ');
}

/** V8's sampling profiler on this process's main thread, from inside it. */
export class Profiler {
  readonly #session = new Session();
  #running = false;

  constructor() {
    this.#session.connect();
  }

  /** Starts sampling every `intervalUs` (the profiler's own cost grows as it shrinks). */
  async start(intervalUs: number): Promise<void> {
    if (this.#running) throw new Error('Profiler: already started');
    await this.#session.post('Profiler.enable');
    await this.#session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.#session.post('Profiler.start');
    this.#running = true;
  }

  async stop(): Promise<CpuProfile> {
    if (!this.#running) throw new Error('Profiler: not started');
    this.#running = false;
    const { profile } = await this.#session.post('Profiler.stop');
    await this.#session.post('Profiler.disable');
    return profile as CpuProfile;
  }
}
