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
  /** How long instances keep being killed (SIGKILL) before the rolling restart. */
  killPhaseMs: number;
  /** About this long between two kills (seeded jitter of ±25%). */
  killEveryMs: number;
  /** How long a killed instance stays down before it is started again. */
  downMs: number;
  /** Pause between the steps of the rolling restart and after the Redis restart. */
  stepMs: number;
  /** Also restart Redis (SIGKILL; AOF with fsync always). */
  redisRestart: boolean;
  /** Picks which instance each kill hits and the jitter. */
  seed: number;
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
    const random = mulberry32(options.seed);
    const killsEnd = Date.now() + options.killPhaseMs;
    let kills = 0;
    for (;;) {
      const waitMs = options.killEveryMs * (0.75 + random() / 2);
      if (Date.now() + waitMs > killsEnd) break;
      await sleep(waitMs);
      const i = Math.floor(random() * rig.instances.length);
      log(`kill -9 ${rig.instances[i]?.name}`);
      await rig.kill(i);
      kills++;
      await sleep(options.downMs);
      await rig.startInstance(i);
      log(`${rig.instances[i]?.name} started again`);
    }
    await sleep(Math.max(0, killsEnd - Date.now()));
    log(`${kills} kills; waiting for every client to be connected`);
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
    await Promise.all(rig.instances.map((instance) => instance.quiet()));
    const settled = await fleet.stopSending(30_000);
    // Every server message accepted must arrive; give the last ones the time to.
    const waitUntil = Date.now() + 15_000;
    while (Date.now() < waitUntil && !allDelivered(rig, fleet)) await sleep(100);
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

// Whether every server message the store accepted has reached its client.
function allDelivered(rig: ClusterRig, fleet: Fleet): boolean {
  const delivered = new Set<string>();
  for (const record of fleet.records) for (const m of record.received) delivered.add(m.value);
  for (const lines of rig.journals().values()) {
    for (const line of lines) if (line.kind === 'a' && !delivered.has(line.value)) return false;
  }
  return true;
}

// A small seeded generator (mulberry32): the run's choices replay from its seed.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function waitConnected(fleet: Fleet, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (fleet.connectedCount() < count && Date.now() < deadline) await sleep(50);
}
