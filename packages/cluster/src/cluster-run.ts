import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Fleet } from './fleet.js';
import { ClusterRig } from './rig.js';
import { type Check, checks, redeliveredBetween, type Tally, tally } from './verify.js';

/** Settings of a scripted cluster run. */
export interface ClusterRunOptions {
  clients: number;
  /** Messages each client sends per second. */
  rate: number;
  /** Instance kills (SIGKILL), one instance after another, before the rolling restart. */
  kills: number;
  /** Keep sending this long between steps. */
  stepMs: number;
  /** Also restart Redis (SIGKILL; AOF with fsync always). */
  redisRestart: boolean;
  /** Print each step. */
  log: (line: string) => void;
}

/** What a run produced. */
export interface ClusterRunResult {
  checks: Check[];
  tally: Tally;
  events: ClusterRig['events'];
  ok: boolean;
  durationMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Redis, 3 instances and HAProxy; `clients` clients sending both ways through HAProxy while one
 * instance after another is killed (and started again), then a rolling restart (each instance
 * closed gracefully and started again), then a Redis crash and restart; then every check.
 */
export async function runCluster(options: ClusterRunOptions): Promise<ClusterRunResult> {
  const startedAt = Date.now();
  const dir = mkdtempSync(path.join(tmpdir(), 'tether-cluster-'));
  const { log } = options;
  let rig: ClusterRig | undefined;
  let fleet: Fleet | undefined;
  try {
    const clientIds = Array.from({ length: options.clients }, (_, i) => `client-${i}`);
    rig = await ClusterRig.start({
      dir,
      instances: 3,
      instance: {
        pingIntervalMs: 500,
        evictAfterMs: 2000,
        sessionTtlMs: 60_000,
        sendEveryMs: 500,
        sendToEveryMs: 100,
        clientIds,
        storeTimeoutMs: 5000,
      },
    });
    log(
      `redis-server :${rig.redis.port}, instances ${rig.instances.map((i) => `${i.name} :${i.settings.port}`).join(', ')}, haproxy :${rig.port}`,
    );
    fleet = new Fleet({
      port: rig.port,
      count: options.clients,
      ratePerClient: options.rate,
      maxPending: 64,
      pingIntervalMs: 500,
      deadAfterMs: 1500,
      prefix: 'client-',
    });
    await fleet.start();
    log(`${options.clients} clients connected, sending ${options.rate} msg/s each`);
    await sleep(options.stepMs);
    for (let k = 0; k < options.kills; k++) {
      const i = k % rig.instances.length;
      log(`kill -9 ${rig.instances[i]?.name}`);
      await rig.kill(i);
      await sleep(options.stepMs / 2);
      await rig.startInstance(i);
      log(`${rig.instances[i]?.name} started again`);
      await sleep(options.stepMs);
    }
    await waitConnected(fleet, options.clients, 15_000);
    await sleep(500);
    const rollingFrom = Date.now();
    for (let i = 0; i < rig.instances.length; i++) {
      log(`graceful close of ${rig.instances[i]?.name} (GOAWAY, drain)`);
      await rig.close(i);
      await rig.startInstance(i);
      log(`${rig.instances[i]?.name} started again`);
      await sleep(options.stepMs / 2);
    }
    await waitConnected(fleet, options.clients, 15_000);
    const rollingTo = Date.now() + 500;
    await sleep(500);
    if (options.redisRestart) {
      log('kill -9 redis-server, start it again on its AOF');
      await rig.restartRedis(true, 300);
      await sleep(options.stepMs);
    }
    log('stop sending; waiting for every send to settle');
    const settled = await fleet.stopSending(30_000);
    // Server→client messages accepted last need a moment to arrive.
    await sleep(1500);
    await fleet.close();
    const journals = rig.journals();
    const t = tally(journals, fleet.records, rig.events);
    const list = checks(t, redeliveredBetween(journals, rollingFrom, rollingTo), settled);
    return {
      checks: list,
      tally: t,
      events: rig.events,
      ok: list.every((c) => c.ok),
      durationMs: Date.now() - startedAt,
    };
  } finally {
    await fleet?.close().catch(() => {});
    await rig?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitConnected(fleet: Fleet, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (fleet.connectedCount() < count && Date.now() < deadline) await sleep(50);
}
