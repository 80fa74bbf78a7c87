// What a part of a process's code costs in CPU, from the kernel's side: `perf record` samples
// one thread on its CPU clock, so only while it runs, with its call stack through V8's code
// (the process runs with `--perf-basic-prof`, which names JIT code in /tmp/perf-<pid>.map, and
// `--interpreted-frames-native-stack`, which gives interpreted functions frames of their own).
// V8's own sampler (lib/profile-share.ts) takes wall time: a thread descheduled inside a socket
// write, because the reader it woke took its core, is sampled in that write, which then looks
// like the writer's work. The dashboard-cost cell (runner/dashboard-cost-cells.ts) reports both.
// perf's own reading of the map file was wrong: V8 frees code and puts other code at the same
// address, the map keeps both lines, and perf named samples after the first one (prom-client's
// module body, run once at start, held most samples of unwatched windows). Frames are named here
// instead, each address by the map's latest line that covers it, read right after the window.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './common.js';

/**
 * Node flags that let perf name the JavaScript frames of a process. They also turn on V8's log,
 * which goes to `v8Log` (not a file per isolate in the working directory).
 */
export function perfNodeFlags(v8Log: string): string[] {
  return [
    '--perf-basic-prof',
    '--interpreted-frames-native-stack',
    '--no-logfile-per-isolate',
    `--logfile=${v8Log}`,
  ];
}

/** What the samples of one recording say about one part of the code. */
export interface PerfCounts {
  /** Samples of the thread on its CPU inside the time asked for. */
  samples: number;
  /** Samples whose stack holds a frame of the part. */
  part: number;
  /** Of the rest, samples whose stack holds a frame of Node's HTTP server (`node:_http_*`). */
  http: number;
}

export function noPerfCounts(): PerfCounts {
  return { samples: 0, part: 0, http: 0 };
}

export function addPerfCounts(a: PerfCounts, b: PerfCounts): PerfCounts {
  return { samples: a.samples + b.samples, part: a.part + b.part, http: a.http + b.http };
}

/** Whether `perf record` works here (installed, and allowed to sample: root or a low paranoia). */
export function perfUsable(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'tether-perf-'));
  try {
    execFileSync(
      'perf',
      ['record', '-q', '-e', 'cpu-clock', '-o', join(dir, 'probe.data'), '--', 'true'],
      { stdio: 'ignore', timeout: 20_000 },
    );
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Names of JIT code by address, from a `--perf-basic-prof` map (`<start> <size> <name>` in hex,
 * appended as code is made). Where code was put over an address range used before, the later
 * line names it: each address goes to the latest line that covers it.
 */
export class PerfMap {
  /** Non-overlapping ranges, by start. */
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  readonly #names: string[] = [];

  constructor(text: string) {
    const lines: { start: number; end: number; name: string }[] = [];
    for (const line of text.split('\n')) {
      const first = line.indexOf(' ');
      const second = line.indexOf(' ', first + 1);
      if (first < 0 || second < 0) continue;
      const start = Number.parseInt(line.slice(0, first), 16);
      const size = Number.parseInt(line.slice(first + 1, second), 16);
      if (!(size > 0) || !Number.isFinite(start)) continue;
      lines.push({ start, end: start + size, name: line.slice(second + 1) });
    }
    // A sweep over the ranges' ends: between two consecutive ends, the covering line written
    // last (highest index) names the addresses.
    const points = [...new Set(lines.flatMap((l) => [l.start, l.end]))].sort((a, b) => a - b);
    const byStart = lines
      .map((_, i) => i)
      .sort((a, b) => (lines[a]?.start ?? 0) - (lines[b]?.start ?? 0));
    const covering = new MaxHeap();
    let next = 0;
    for (let k = 0; k + 1 < points.length; k++) {
      const from = points[k] as number;
      while (next < byStart.length && (lines[byStart[next] as number]?.start as number) <= from) {
        covering.push(byStart[next] as number);
        next++;
      }
      while (covering.size > 0 && (lines[covering.top as number]?.end as number) <= from)
        covering.pop();
      if (covering.size === 0) continue;
      const line = lines[covering.top as number] as { name: string };
      const last = this.#names.length - 1;
      if (last >= 0 && this.#ends[last] === from && this.#names[last] === line.name) {
        this.#ends[last] = points[k + 1] as number;
      } else {
        this.#starts.push(from);
        this.#ends.push(points[k + 1] as number);
        this.#names.push(line.name);
      }
    }
  }

  /** The name of the code at `address`, if the map has it. */
  nameAt(address: number): string | undefined {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((starts[mid] as number) <= address) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && address < (this.#ends[hi] as number) ? this.#names[hi] : undefined;
  }
}

/**
 * A binary max-heap of line indexes. A line that ends is taken off only when it reaches the
 * top (a later line is above it while both cover an address).
 */
class MaxHeap {
  readonly #items: number[] = [];

  get size(): number {
    return this.#items.length;
  }

  get top(): number | undefined {
    return this.#items[0];
  }

  push(value: number): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as number) >= value) break;
      items[i] = items[parent] as number;
      i = parent;
    }
    items[i] = value;
  }

  pop(): void {
    const items = this.#items;
    const last = items.pop() as number;
    if (items.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child =
        right < items.length && (items[right] as number) > (items[left] as number) ? right : left;
      if ((items[child] as number) <= last) break;
      items[i] = items[child] as number;
      i = child;
    }
    items[i] = last;
  }
}

/**
 * Counts the samples of `perf script -F time,ip` output whose time (CLOCK_MONOTONIC, what
 * `perf record -k mono` stamps and `process.hrtime.bigint()` reads) is in [fromNs, toNs]:
 * `isPart(name)` says whether a frame, named by `map`, belongs to the part. A sample counts for
 * it when any frame of its stack does (its own work and what it calls, the kernel's part of its
 * system calls included).
 */
export function countPerfSamples(
  script: string,
  map: PerfMap,
  isPart: (name: string) => boolean,
  fromNs: bigint,
  toNs: bigint,
): PerfCounts {
  const counts = noPerfCounts();
  let inside = false;
  let part = false;
  let http = false;
  const flush = () => {
    if (!inside) return;
    counts.samples++;
    if (part) counts.part++;
    else if (http) counts.http++;
  };
  for (const line of script.split('\n')) {
    if (line.startsWith('\t')) {
      if (!inside || part) continue;
      const name = map.nameAt(Number.parseInt(line.trim(), 16));
      if (name === undefined) continue;
      if (isPart(name)) part = true;
      else if (name.includes(' node:_http_')) http = true;
      continue;
    }
    const header = /(\d+)\.(\d{6}):\s*$/.exec(line);
    if (header === null) continue;
    flush();
    const ns = BigInt(header[1] as string) * 1_000_000_000n + BigInt(header[2] as string) * 1000n;
    inside = ns >= fromNs && ns <= toNs;
    part = false;
    http = false;
  }
  flush();
  return counts;
}

/** `perf record` of one thread, running until stopped; its data file goes with `discard()`. */
export class PerfRecording {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #file: string;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, dir: string, file: string) {
    this.#child = child;
    this.#dir = dir;
    this.#file = file;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Starts sampling thread `tid` `hz` times per second of its CPU time, with call stacks. */
  static async start(tid: number, hz: number): Promise<PerfRecording> {
    const dir = mkdtempSync(join(tmpdir(), 'tether-perf-'));
    const file = join(dir, 'perf.data');
    const child = spawn(
      'perf',
      [
        'record',
        '-q',
        '-e',
        'cpu-clock',
        '-F',
        String(hz),
        '-g',
        '-k',
        'mono',
        '-t',
        String(tid),
        '-o',
        file,
      ],
      { stdio: 'ignore' },
    );
    const recording = new PerfRecording(child, dir, file);
    // perf writes its file's header once it is set up and sampling.
    for (let waited = 0; !(existsSync(file) && statSync(file).size > 0); waited += 20) {
      if (waited > 5000 || child.exitCode !== null) {
        recording.discard();
        throw new Error('perf record did not start');
      }
      await sleep(20);
    }
    return recording;
  }

  /** Stops sampling (perf writes its data on SIGINT). */
  async stop(): Promise<void> {
    this.#child.kill('SIGINT');
    await this.#exited;
  }

  /**
   * The samples in [fromNs, toNs] counted for `isPart`, frames named by `map` (read right after
   * the window; after `stop()`).
   */
  async count(
    map: PerfMap,
    isPart: (name: string) => boolean,
    fromNs: bigint,
    toNs: bigint,
  ): Promise<PerfCounts> {
    const script = await new Promise<string>((resolve, reject) => {
      execFile(
        'perf',
        ['script', '-i', this.#file, '-F', 'time,ip'],
        { maxBuffer: 1024 * 1024 * 1024, timeout: 120_000 },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      );
    });
    return countPerfSamples(script, map, isPart, fromNs, toNs);
  }

  discard(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** The map file `--perf-basic-prof` writes for process `pid`, as it is now. */
export function readPerfMap(pid: number): PerfMap {
  return new PerfMap(readFileSync(perfMapPath(pid), 'utf8'));
}

export function perfMapPath(pid: number): string {
  return `/tmp/perf-${pid}.map`;
}
