// CPU time and memory of processes, from /proc (Linux). The benchmark's processes are Node workers
// and brokers such as nats-server, a Go process of its own.
import { readdir, readFile } from 'node:fs/promises';

/** Linux reports /proc/<pid>/stat times in USER_HZ ticks, 100 per second on every architecture. */
const TICK_US = 10_000;

/** Resident set of any process, bytes. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces). */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * CPU time (user + system) of a process, µs. Our own process: process.cpuUsage() (every thread,
 * µs). Another: the sum of its threads' on-CPU time in /proc/<pid>/task/<tid>/schedstat
 * (nanoseconds; a 60 ms run of nats-server would be a handful of 10 ms ticks in /proc/<pid>/stat),
 * or /proc/<pid>/stat where the kernel keeps no schedstat.
 */
export async function cpuOf(pid: number): Promise<number> {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  try {
    const tids = await readdir(`/proc/${pid}/task`);
    let ns = 0;
    for (const tid of tids) {
      // A thread may end between readdir and read: it counts as nothing.
      const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0');
      ns += Number(text.split(' ')[0]);
    }
    return ns / 1000;
  } catch {
    const f = await statFields(pid);
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  }
}

/**
 * CPU time of this process and of every process it started, directly or not, µs: for each one
 * alive, utime + stime + cutime + cstime of /proc/<pid>/stat (the last two hold the children it
 * has reaped, so a worker that ended counts through the runner). For whole-machine accounting
 * over seconds: 10 ms ticks.
 */
export async function cpuOfProcessTree(): Promise<number> {
  const stats = new Map<number, string[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // Processes come and go while we read: one that is gone counts as nothing.
    const f = await statFields(Number(name)).catch(() => undefined);
    if (f) stats.set(Number(name), f);
  }
  const children = new Map<number, number[]>();
  for (const [pid, f] of stats) {
    const ppid = Number(f[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  let ticks = 0;
  const queue = [process.pid];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    const f = stats.get(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    queue.push(...(children.get(pid) ?? []));
  }
  return ticks * TICK_US;
}
