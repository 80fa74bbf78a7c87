// The idle-connections cells: for 1,000 and 10,000 connections, each system in turn: one server
// worker, one client worker opening N connections, then memory and CPU of the server at rest.
import { execSync } from 'node:child_process';
import { type Row, type SystemName, sleep } from '../lib/common.js';
import { type Context, failedRow } from './context.js';
import { loadBetween, loadSnapshot } from './load.js';
import {
  SystemPair,
  sample,
  startClientWorker,
  startServerWorker,
  stopServerWorker,
} from './system-pair.js';
import type { WorkerProcess } from './worker-process.js';

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
      'idle-connections (--quick): tether and raw-net at 1,000, tether at 10,000; the full run does every system at both counts.',
    );
  }
  for (const n of counts) {
    // --quick keeps to the cells the targets name (10,000 full clients of some peers in one
    // process take minutes).
    const these = options.quick
      ? idleSystems.filter((s) => s === 'tether' || (n <= 1000 && s === 'raw-net'))
      : idleSystems;
    const before = await loadSnapshot();
    for (const system of these) {
      const t0 = performance.now();
      ctx.rows.push(await idleOne(ctx, system, n));
      ctx.log(`  ${system} x ${n} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    const after = await loadSnapshot();
    ctx.cells.push({
      scenario: 'idle-connections',
      payloadBytes: 0,
      connections: n,
      metric: null,
      systems: these,
      repetitions: [],
      ratios: [],
      load: loadBetween(before, after),
      flags: [],
    });
  }
}

async function idleOne(ctx: Context, system: SystemName, connections: number): Promise<Row> {
  const { quick } = ctx.options;
  let server: WorkerProcess | undefined;
  let client: WorkerProcess | undefined;
  const settleMs = quick ? 500 : 3000;
  const restMs = quick ? 2000 : 12_000;
  try {
    const started = await startServerWorker(ctx, system, 'idle-connections', { mode: 'sink' });
    server = started.worker;
    await sleep(300);
    const before = await sample(server);
    client = await startClientWorker(ctx, system, 'idle-connections', started.port);
    const connected = await new SystemPair(system, server, client).op<{
      setupMs: number;
      connections: number;
    }>('connect', { connections }, 180_000);
    await sleep(settleMs);
    const after = await sample(server);
    await sleep(restMs);
    const rest = await sample(server);
    const n = connected.connections;
    return {
      system,
      scenario: 'idle-connections',
      payloadBytes: 0,
      msgsPerSec: null,
      mbPerSec: null,
      p50Us: null,
      p99Us: null,
      p999Us: null,
      runs: 1,
      extra: {
        connections: n,
        rssPerConnectionBytes: Math.round((after.rssBytes - before.rssBytes) / n),
        heapPerConnectionBytes: after.heapUsedBytes
          ? Math.round((after.heapUsedBytes - before.heapUsedBytes) / n)
          : null,
        cpuAtRestPercent: ((rest.cpuUs - after.cpuUs) / 1000 / restMs) * 100,
        restSeconds: restMs / 1000,
        setupPerSec: Math.round(n / (connected.setupMs / 1000)),
      },
    };
  } catch (error) {
    return failedRow(ctx, system, 'idle-connections', 0, error);
  } finally {
    await client?.stop(5000);
    if (server) await stopServerWorker(ctx, server);
  }
}
