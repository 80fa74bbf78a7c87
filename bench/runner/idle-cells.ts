// The idle-connections cells: for 1,000 and 10,000 connections, every system of the cell is
// brought up in turn (a server worker, a client worker opening N connections: set-up rate and
// memory per connection) and stays up; then interleaved repetitions measure each server's CPU at
// rest over a window, in a rotated order, so the ratios of two systems are taken seconds apart.
import { execSync } from 'node:child_process';
import { type SystemName, sleep } from '../lib/common.js';
import { type Context, failedRow } from './context.js';
import {
  type CellSpec,
  measurementsOf,
  recordCell,
  rowBase,
  runInterleaved,
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
 * One rest window: Tether's idle ping interval (5 s), so every connection pings once in every
 * window whatever its phase (its clients connect over a few seconds, not evenly over 5 s).
 */
const WINDOW_MS = { full: 5000, smoke: 1000 };

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
  const idleSystems = options.systems.filter((s) => s !== 'mqtt-qos1' && !s.endsWith('-tls'));
  if (options.quick && !options.smoke) {
    ctx.notes.push(
      'idle-connections (--quick): the Tether systems and raw-net at 1,000, the Tether systems at 10,000; the full run does every system at both counts.',
    );
  }
  for (const n of counts) {
    // --quick keeps to the cells the targets name (10,000 full clients of some peers in one
    // process take minutes).
    const these = options.quick
      ? idleSystems.filter((s) => s.startsWith('tether') || (n <= 1000 && s === 'raw-net'))
      : idleSystems;
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
  const windowMs = options.smoke ? WINDOW_MS.smoke : WINDOW_MS.full;
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
    // Every system idle together for one window before the first is measured: the last one up
    // has had its first heartbeats too.
    await sleep(windowMs);
    const pairs = [...ups.values()].map((u) => u.pair);
    const reps = await runInterleaved(
      ctx,
      pairs,
      spec,
      { warmups: 0, repetitions: options.smoke ? 3 : options.quick ? 3 : 5 },
      async (pair) => {
        // The server side (worker and its helpers, such as nats-server) over one window.
        const a = await pair.serverCpu();
        const start = performance.now();
        await sleep(windowMs);
        const b = await pair.serverCpu();
        const seconds = (performance.now() - start) / 1000;
        const cpuUs: Record<string, number> = {};
        for (const [name, us] of Object.entries(b)) cpuUs[name] = us - (a[name] ?? 0);
        const total = Object.values(cpuUs).reduce((x, y) => x + y, 0);
        return { value: (total / 1e6 / seconds) * 100, units: seconds, cpuUs };
      },
    );
    const after = await loadSnapshot();
    recordCell(ctx, spec, reps, before, after);
    for (const [system, up] of ups) {
      const ms = measurementsOf(reps, system);
      if (!ms.length) continue;
      const { median: cpuAtRestPercent, ...base } = rowBase(spec, system, ms);
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
