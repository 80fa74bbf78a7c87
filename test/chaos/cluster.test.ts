/**
 * The slice of the cluster suite that `pnpm test` runs: Redis, 3 instances and HAProxy as real
 * processes, 20 clients sending both ways while instances are killed, then a rolling restart and
 * a Redis crash (`pnpm chaos --suite cluster` runs the full one: 200 clients, 60 s of kills).
 * Skipped without redis-server and haproxy, except under CI, where that fails.
 */
import { HAProxy, RedisServer } from '@tether/cluster';
import { describe, expect, it } from 'vitest';
import { CLUSTER_SLICE, formatClusterResult, runClusterScenario } from './cluster-scenario.js';

const available = RedisServer.available() && HAProxy.available();
const inCi = process.env.CI !== undefined && process.env.CI !== 'false' && process.env.CI !== '0';
const SEED = Number(process.env.CHAOS_BASE ?? 20_250_601);

describe('chaos - a cluster of 3 instances behind HAProxy on Redis', () => {
  it('the cluster is installed where CI runs', () => {
    if (inCi)
      expect({ redis: RedisServer.available(), haproxy: HAProxy.available() }).toEqual({
        redis: true,
        haproxy: true,
      });
  });

  it.skipIf(!available)(
    `kills, a rolling restart and a Redis crash: nothing lost, redeliveries only across a kill and marked (seed ${SEED})`,
    {
      timeout: 120_000,
    },
    async () => {
      const result = await runClusterScenario(CLUSTER_SLICE, SEED);
      console.log(formatClusterResult(result, SEED));
      expect(result.checks.filter((c) => !c.ok)).toEqual([]);
      // The run must have hurt the cluster: kills happened and their clients moved.
      expect(result.events.filter((e) => e.kind === 'kill').length).toBeGreaterThan(0);
      expect(result.tally.clientResolved).toBeGreaterThan(0);
      expect(result.tally.serverAccepted).toBeGreaterThan(0);
    },
  );
});
