// The idle-connections cells: for 1,000 and 10,000 connections, every system of the cell is
// brought up in turn (a server worker, a client worker opening N connections: set-up rate and
// memory per connection) and stays up; then each repetition measures every server's CPU at rest
// over one and the same window, so the ratio of two systems is taken over the same seconds.
import { execSync } from 'node:child_process';
import { rotated } from '../lib/cell-stats.js';
import { type CpuByProcess, median, type SystemName, sleep } from '../lib/common.js';
import { type Context, failedRow } from './context.js';
import {
  type CellSpec,
  drop,
  type Measurement,
  measurementsOf,
  type RepetitionResult,
  recordCell,
  rowBase,
} from './interleave.js';
import { loadSnapshot } from './load.js';
import {
  SystemPair,
  sample,
  startClientWorker,
  startServerWorker,
  stopPairs,
  stopServerWorker,
} from './system-pair.js';

/**
 * One rest window: a multiple of Tether's idle ping interval (5 s), so every connection pings the
 * same number of times in every window whatever its phase (its clients connect over a few
 * seconds, not evenly over 5 s). Its servers also have work less often than that (GC, the
 * dashboard's passes over all sessions), which a longer window averages.
 */
const WINDOW_MS = { full: 15_000, quick: 5000, smoke: 1000 };

/**
 * The systems `--quick` idles: those the idle targets name (Tether's CPU against raw-net and
 * against the floor of its heartbeat traffic, its memory against ws), each quick to connect.
 */
const QUICK_IDLE: readonly SystemName[] = [
  'tether',
  'tether-watched',
  'tether-twin',
  'tether-cluster',
  'raw-net',
  'raw-net-heartbeat',
  'ws',
];

/** A system of the cell, up with its connections, and what its set-up measured. */
interface Up {
  pair: SystemPair;
  connections: number;
  rssPerConnectionBytes: number;
  heapPerConnectionBytes: number | null;
  setupPerSec: number;
}

export async function runIdleCells(ctx: Context): Promise<void> {
  const { options } = ctx;
  ctx.log('# idle-connections');
  const limit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
  const counts = options.smoke ? [200] : limit >= 10_500 ? [1000, 10_000] : [1000];
  if (!counts.includes(10_000) && !options.smoke) {
    ctx.notes.push(
      `idle-connections: ulimit -n is ${limit}; 10,000 connections need > 10,500, ran 1,000 only.`,
    );
  }
  // tether-ws idles as tether does (the same heartbeats, over ws), and tether-publish is tether
  // (only its sends differ): left out with the TLS systems.
  const idleSystems = options.systems.filter(
    (s) => s !== 'mqtt-qos1' && !s.endsWith('-tls') && s !== 'tether-ws' && s !== 'tether-publish',
  );
  if (options.quick && !options.smoke) {
    ctx.notes.push(
      'idle-connections (--quick): the Tether systems, raw-net, raw-net-heartbeat and ws; the full run does every system.',
    );
  }
  for (const n of counts) {
    // --quick keeps to the cells the targets name (10,000 full clients of some peers in one
    // process take minutes).
    const these = options.quick ? idleSystems.filter((s) => QUICK_IDLE.includes(s)) : idleSystems;
    if (these.length) await idleCell(ctx, these, n);
  }
}

async function idleCell(
  ctx: Context,
  systems: readonly SystemName[],
  connections: number,
): Promise<void> {
  const { options } = ctx;
  const t0 = performance.now();
  const spec: CellSpec = {
    scenario: 'idle-connections',
    payloadBytes: 0,
    connections,
    metric: 'cpuAtRestPercent',
    higherIsBetter: false,
  };
  const windowMs = options.smoke
    ? WINDOW_MS.smoke
    : options.quick
      ? WINDOW_MS.quick
      : WINDOW_MS.full;
  const ups = new Map<SystemName, Up>();
  const before = await loadSnapshot();
  try {
    for (const system of systems) {
      const t = performance.now();
      try {
        const up = await bringUp(ctx, system, connections);
        ups.set(system, up);
        ctx.log(
          `  ${system} x ${connections} up (${((performance.now() - t) / 1000).toFixed(1)} s)`,
        );
      } catch (error) {
        ctx.rows.push(failedRow(ctx, system, spec.scenario, 0, error));
      }
    }
    // Every system idle together for one ping interval before the first window: the last one up
    // has had its first heartbeats too.
    await sleep(Math.min(windowMs, 5000));
    const pairs = [...ups.values()].map((u) => u.pair);
    const reps = await restWindows(ctx, pairs, spec, {
      windowMs,
      repetitions: options.quick ? 3 : 5,
    });
    const after = await loadSnapshot();
    recordCell(ctx, spec, reps, before, after);
    for (const [system, up] of ups) {
      const ms = measurementsOf(reps, system);
      if (!ms.length) continue;
      const { median: cpuAtRestPercent, ...base } = rowBase(spec, system, ms);
      // Heartbeat exchanges the server took part in (frames it received) and its CPU per one.
      const counted = ms.filter((m) => m.detail?.exchanges !== undefined);
      const exchangesPerSec = counted.length
        ? median(counted.map((m) => (m.detail?.exchanges as number) / m.units))
        : null;
      const perExchange = counted.filter((m) => (m.detail?.exchanges as number) > 0);
      const cpuUsPerExchange = perExchange.length
        ? median(
            perExchange.map(
              (m) =>
                Object.values(m.cpuUs).reduce((a, b) => a + b, 0) / (m.detail?.exchanges as number),
            ),
          )
        : null;
      ctx.rows.push({
        ...base,
        msgsPerSec: null,
        mbPerSec: null,
        p50Us: null,
        p99Us: null,
        p999Us: null,
        cpu: null,
        extra: {
          connections: up.connections,
          rssPerConnectionBytes: up.rssPerConnectionBytes,
          heapPerConnectionBytes: up.heapPerConnectionBytes,
          cpuAtRestPercent,
          exchangesPerSec,
          cpuUsPerExchange,
          restSeconds: windowMs / 1000,
          setupPerSec: up.setupPerSec,
        },
      });
    }
  } finally {
    await stopPairs(
      ctx,
      [...ups.values()].map((u) => u.pair),
      5000,
    );
  }
  ctx.log(`  x ${connections} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/**
 * Every system idles at once: each repetition reads the CPU of every server side (worker and its
 * helpers, such as nats-server), waits one window, and reads it again, in the same order, rotated
 * by one system per repetition (a read takes a few ms). Value: % of one core over the window.
 */
async function restWindows(
  ctx: Context,
  pairs: SystemPair[],
  spec: CellSpec,
  plan: { windowMs: number; repetitions: number },
): Promise<RepetitionResult[]> {
  const out: RepetitionResult[] = [];
  const failed = new Set<SystemName>();
  const read = async (pair: SystemPair): Promise<CpuByProcess | undefined> => {
    try {
      return await pair.serverCpu();
    } catch (error) {
      failed.add(pair.system);
      drop(ctx, pairs, pair, spec, error);
      return undefined;
    }
  };
  const heartbeats = (pair: SystemPair): Promise<number | null> =>
    pair.heartbeatFrames().catch(() => null);
  for (let round = 0; round < plan.repetitions; round++) {
    const order = rotated(pairs, round);
    const start = new Map<SystemPair, { cpu: CpuByProcess; at: number; frames: number | null }>();
    for (const pair of order) {
      // The count is read outside the CPU window (before it starts, after it ends): summing it
      // over 10,000 sessions takes milliseconds.
      const frames = await heartbeats(pair);
      const cpu = await read(pair);
      if (cpu) start.set(pair, { cpu, at: performance.now(), frames });
    }
    await sleep(plan.windowMs);
    const results = new Map<SystemName, Measurement>();
    for (const pair of order) {
      const first = start.get(pair);
      const cpu = first && (await read(pair));
      if (!first || !cpu) continue;
      const seconds = (performance.now() - first.at) / 1000;
      const cpuUs: CpuByProcess = {};
      for (const [name, us] of Object.entries(cpu)) cpuUs[name] = us - (first.cpu[name] ?? 0);
      const total = Object.values(cpuUs).reduce((a, b) => a + b, 0);
      const frames = await heartbeats(pair);
      const exchanges =
        frames === null || first.frames === null ? undefined : frames - first.frames;
      results.set(pair.system, {
        value: (total / 1e6 / seconds) * 100,
        units: seconds,
        cpuUs,
        ...(exchanges === undefined ? {} : { detail: { exchanges } }),
      });
    }
    out.push({ order: order.map((p) => p.system), results });
  }
  // A system that failed in the cell has no row of figures, so none of its windows count.
  for (const r of out) for (const system of failed) r.results.delete(system);
  return out;
}

/** Starts a system's server, connects N clients, and measures set-up and memory per connection. */
async function bringUp(ctx: Context, system: SystemName, connections: number): Promise<Up> {
  const settleMs = ctx.options.quick ? 500 : 3000;
  const started = await startServerWorker(ctx, system, 'idle-connections', { mode: 'sink' });
  const server = started.worker;
  try {
    await sleep(300);
    const before = await sample(server);
    const client = await startClientWorker(ctx, system, 'idle-connections', started.port);
    const pair = new SystemPair(system, server, client);
    try {
      const connected = await pair.op<{ setupMs: number; connections: number }>(
        'connect',
        { connections },
        180_000,
      );
      await sleep(settleMs);
      const after = await sample(server);
      const n = connected.connections;
      return {
        pair,
        connections: n,
        rssPerConnectionBytes: Math.round((after.rssBytes - before.rssBytes) / n),
        heapPerConnectionBytes: after.heapUsedBytes
          ? Math.round((after.heapUsedBytes - before.heapUsedBytes) / n)
          : null,
        setupPerSec: Math.round(n / (connected.setupMs / 1000)),
      };
    } catch (error) {
      await client.stop(5000);
      throw error;
    }
  } catch (error) {
    await stopServerWorker(ctx, server);
    throw error;
  }
}
