// One side of one system, in its own process. `role: 'server'` starts the system's server and
// reports its port, then answers CPU and memory samples. `role: 'client'` connects and then runs
// the operations the runner asks for (one at a time), reporting each one's result: the runner
// decides what runs when, so that the systems of a cell can take turns (bench/runner/).

import { PerformanceObserver } from 'node:perf_hooks';
import {
  barrier,
  type CpuByProcess,
  type RunnerMessage,
  type WorkerArgs,
  type WorkerMessage,
} from './lib/common.js';
import { recordGcStats } from './lib/gc-stats.js';
import { cpuOf, rssOf } from './lib/proc.js';
import { attribute, dashboardFrames, Profiler } from './lib/profile-share.js';
import { system } from './systems/index.js';
import { makeHandler } from './systems/types.js';

// Scenario modules load on demand, as systems do: a worker carries only what its cell runs
// (hdr-histogram-js, which rtt loads, measurably slowed the file receiver it was loaded into).
const args = JSON.parse(process.argv[2] as string) as WorkerArgs;
const send = (m: WorkerMessage) => process.send?.(m);
process.on('unhandledRejection', () => {});
// The runner is gone (it crashed or was killed): nothing will stop this worker but itself.
process.on('disconnect', () => process.exit(1));
recordGcStats();

/** The operations a client worker offers; each takes the runner's parameters. */
type Ops = Record<string, (params: Record<string, unknown>) => Promise<unknown>>;

async function server(): Promise<void> {
  let port: number;
  let memoryPid = process.pid;
  let helpers: { name: string; pid: number }[] = [];
  let dashboardPort: number | undefined;
  let close: () => Promise<void>;
  let heartbeatFrames: (() => number) | undefined;
  if (args.scenario === 'file' && (args.system === 'raw-net' || args.system === 'raw-tls')) {
    const { startRawFileServer } = await import('./scenarios/file.js');
    const s = await startRawFileServer(
      args.uploadDir as string,
      args.system === 'raw-tls' ? args.tls : undefined,
    );
    port = s.port;
    close = s.close;
  } else {
    const s = await (await system(args.system)).startServer({
      handler: makeHandler(args.mode ?? 'sink'),
      tls: args.tls,
      uploadDir: args.uploadDir,
      dashboard: args.dashboard,
      // The runner sees the exit: the pair fails and its row says so (and the log why).
      onFailure: (error) => {
        const text = `server ${args.system}/${args.scenario}: ${error.message}`;
        const log: WorkerMessage = { type: 'log', text };
        if (process.send) process.send(log, undefined, undefined, () => process.exit(1));
        else process.exit(1);
      },
    });
    port = s.port;
    memoryPid = s.memoryPid;
    helpers = s.helpers;
    dashboardPort = s.dashboardPort;
    close = s.close;
    heartbeatFrames = s.heartbeatFrames;
  }
  // The main thread's GC pauses, for the dashboard-cost cell's windows (where the time of an
  // idle server goes). Only there: an observer has a cost of its own per GC.
  const gcTime = { pauseUs: 0, count: 0 };
  if (args.dashboard) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        gcTime.pauseUs += entry.duration * 1000;
        gcTime.count++;
      }
    }).observe({ entryTypes: ['gc'] });
  }
  // The dashboard's share of the samples (dashboard-cost): a frame of the server's dashboard
  // modules (dist/dashboard/, or src/dashboard/ with --source) or of prom-client, which only the
  // dashboard loads and calls.
  let profiler: Profiler | undefined;
  let isDashboard: ((url: string) => boolean) | undefined;
  const cpuByProcess = async (): Promise<CpuByProcess> => {
    const byProcess: CpuByProcess = { server: await cpuOf(process.pid) };
    for (const h of helpers) byProcess[h.name] = await cpuOf(h.pid);
    return byProcess;
  };
  process.on('message', async (m: RunnerMessage) => {
    if (m.type === 'cpu') {
      send({ type: 'cpu', byProcess: await cpuByProcess() });
    } else if (m.type === 'sample') {
      (globalThis as { gc?: () => void }).gc?.();
      const usage = process.memoryUsage();
      const cpu = Object.values(await cpuByProcess()).reduce((a, b) => a + b, 0);
      send({
        type: 'sample',
        rssBytes: await rssOf(memoryPid),
        heapUsedBytes: memoryPid === process.pid ? usage.heapUsed : 0,
        cpuUs: cpu,
      });
    } else if (m.type === 'heartbeats') {
      send({ type: 'heartbeats', frames: heartbeatFrames?.() ?? null });
    } else if (m.type === 'gc-time') {
      send({ type: 'gc-time', ...gcTime });
    } else if (m.type === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      send({ type: 'gc' });
    } else if (m.type === 'profile-start') {
      profiler ??= new Profiler();
      isDashboard ??= dashboardFrames(
        new URL('./dashboard/', import.meta.resolve('@tether/server')).href,
      );
      await profiler.start(m.intervalUs);
      send({ type: 'profile-started' });
    } else if (m.type === 'profile-stop') {
      const profile = await (profiler as Profiler).stop();
      send({
        type: 'profile',
        counts: attribute(profile, isDashboard as (url: string) => boolean),
      });
    } else if (m.type === 'stop') {
      await Promise.race([close(), new Promise((r) => setTimeout(r, 500))]);
      process.exit(0);
    }
  });
  send({
    type: 'ready',
    port,
    helpers: helpers.map((h) => h.pid),
    ...(dashboardPort === undefined ? {} : { dashboardPort }),
  });
}

/** The operations of this worker's scenario, connected and ready. */
async function clientOps(): Promise<{ ops: Ops; close(): Promise<void> }> {
  const port = args.port as number;
  if (args.scenario === 'file') {
    const { fileOps } = await import('./scenarios/file.js');
    const f = await fileOps(args);
    return { ops: { send: (p) => f.send(p as Parameters<typeof f.send>[0]) }, close: f.close };
  }
  if (args.scenario === 'recovery') {
    const { recoveryRun } = await import('./scenarios/recovery.js');
    return {
      ops: { run: (p) => recoveryRun(args, p as { capMs: number; healCapMs: number }) },
      close: async () => {},
    };
  }
  if (args.scenario === 'idle-connections') {
    const { idleOps } = await import('./scenarios/idle.js');
    const idle = idleOps(args);
    return {
      ops: { connect: (p) => idle.connect(p as { connections: number }) },
      close: idle.close,
    };
  }
  // throughput and rtt share one connection: the runner switches the server to echo between them.
  const c = await (await system(args.system)).connect({
    port,
    ...(args.tls ? { tls: { cert: args.tls.cert } } : {}),
  });
  // One listener for the connection; each operation routes the messages it expects to itself.
  let route: ((data: Buffer) => void) | undefined;
  c.onMessage((data) => route?.(data));
  const listen = (cb: (data: Buffer) => void) => {
    route = cb;
  };
  const ops: Ops = {
    // 'MODE' + 1 switches the server's handler to echo, + 0 back to sink. The connection keeps
    // order, so every message sent after it meets the new mode.
    mode: async (p) => {
      c.send(barrier('MODE', p.echo ? 1 : 0, 0))?.catch(() => {});
    },
  };
  if (args.scenario === 'throughput') {
    const t = (await import('./scenarios/throughput.js')).throughputOps(c, listen);
    ops.calibrate = (p) => t.calibrate(p as { size: number; runMs: number });
    ops.throughput = (p) => t.run(p as { size: number; count: number });
  }
  // rtt is loaded only when asked for (hdr-histogram-js), so a throughput-only pair stays lean.
  let rtt: import('./scenarios/rtt.js').RttOps | undefined;
  const rttOps = async () => {
    rtt ??= (await import('./scenarios/rtt.js')).rttOps(c, listen);
    return rtt;
  };
  ops.closed = async (p) => (await rttOps()).closed(p as { count: number });
  ops.open = async (p) => (await rttOps()).open(p as { rate: number; seconds: number });
  return { ops, close: () => c.close().catch(() => {}) };
}

async function client(): Promise<void> {
  const { ops, close } = await clientOps();
  ops.gc = async () => (globalThis as { gc?: () => void }).gc?.();
  process.on('message', async (m: RunnerMessage) => {
    if (m.type === 'op') {
      const op = ops[m.name];
      try {
        if (!op) throw new Error(`no operation ${m.name} for ${args.system}/${args.scenario}`);
        send({ type: 'op-result', id: m.id, result: await op(m.params) });
      } catch (error) {
        send({ type: 'op-result', id: m.id, error: String((error as Error)?.message ?? error) });
      }
    } else if (m.type === 'stop') {
      await Promise.race([close(), new Promise((r) => setTimeout(r, 2000))]);
      process.exit(0);
    }
  });
  send({ type: 'connected' });
}

(args.role === 'server' ? server() : client()).catch((error: Error) => {
  send({
    type: 'log',
    text: `${args.role} ${args.system}/${args.scenario}: ${error.stack ?? error}`,
  });
  process.exit(1);
});
