// The machine's load around a cell: load averages, and from /proc/stat how busy all cores were,
// how much the hypervisor stole, and how much of the busy time was not this benchmark's.
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import type { CellLoad } from '../lib/common.js';
import { cpuOfProcessTree } from '../lib/proc.js';

export interface LoadSnapshot {
  /** performance.now(), ms */
  time: number;
  loadavg: number[];
  /** The 'cpu' line of /proc/stat (every core), in ticks; all zero where there is none. */
  ticks: { total: number; idle: number; steal: number };
  /** CPU this benchmark's processes used so far (the runner, its workers and theirs), µs. */
  oursUs: number;
}

/** USER_HZ: /proc/stat counts in hundredths of a second. */
const TICK_US = 10_000;

async function machineTicks(): Promise<LoadSnapshot['ticks']> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] as string;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number) as number[];
    const f = (v: number | undefined) => v ?? 0;
    return {
      total: f(user) + f(nice) + f(system) + f(idle) + f(iowait) + f(irq) + f(softirq) + f(steal),
      idle: f(idle) + f(iowait),
      steal: f(steal),
    };
  } catch {
    return { total: 0, idle: 0, steal: 0 };
  }
}

export async function loadSnapshot(): Promise<LoadSnapshot> {
  const oursUs = await cpuOfProcessTree();
  return { time: performance.now(), loadavg: loadavg(), ticks: await machineTicks(), oursUs };
}

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

export function loadBetween(a: LoadSnapshot, b: LoadSnapshot): CellLoad {
  const seconds = (b.time - a.time) / 1000;
  const total = b.ticks.total - a.ticks.total;
  const pct = (ticks: number) => (total > 0 ? (ticks / total) * 100 : 0);
  const busy = pct(total - (b.ticks.idle - a.ticks.idle) - (b.ticks.steal - a.ticks.steal));
  // Ours as a share of every core over the same time (the ticks' span, not wall time: same thing).
  const ours = total > 0 ? ((b.oursUs - a.oursUs) / TICK_US / total) * 100 : 0;
  return {
    loadavgBefore: a.loadavg.map((v) => round(v, 2)),
    loadavgAfter: b.loadavg.map((v) => round(v, 2)),
    seconds: round(seconds),
    busyPercent: round(busy),
    stealPercent: round(pct(b.ticks.steal - a.ticks.steal)),
    othersPercent: round(Math.max(0, busy - ours)),
  };
}
