/**
 * The cluster suite: Redis (AOF), 3 server instances on the Redis store and HAProxy in front,
 * all real processes on loopback (packages/cluster). Clients send both ways through HAProxy
 * while one instance after another is killed with SIGKILL and started again, then every
 * instance is closed gracefully and started again (a rolling restart), then Redis is killed
 * and started again on its AOF. Checked from the instances' journals and the clients' records:
 * nothing acknowledged lost either way, a message delivered twice only across a kill and then
 * marked `redelivered`, none marked during the rolling restart, no session lost.
 */
import { type ClusterRunOptions, type ClusterRunResult, runCluster } from '@tether/cluster';

/** `pnpm chaos --suite cluster`: 200 clients for 60 s of kills. */
export const CLUSTER_CHAOS: Omit<ClusterRunOptions, 'seed' | 'log'> = {
  clients: 200,
  rate: 5,
  killPhaseMs: 60_000,
  killEveryMs: 4000,
  downMs: 1000,
  stepMs: 1500,
  redisRestart: true,
};

/** The slice `pnpm test` runs: the same script, smaller and shorter. */
export const CLUSTER_SLICE: Omit<ClusterRunOptions, 'seed' | 'log'> = {
  clients: 20,
  rate: 10,
  killPhaseMs: 6000,
  killEveryMs: 1500,
  downMs: 500,
  stepMs: 800,
  redisRestart: true,
};

/** Runs the cluster suite once with `settings` and `seed`. */
export function runClusterScenario(
  settings: Omit<ClusterRunOptions, 'seed' | 'log'>,
  seed: number,
  log: (line: string) => void = () => {},
): Promise<ClusterRunResult> {
  return runCluster({ ...settings, seed, log });
}

/** The verification table of a cluster run, with its replay command. */
export function formatClusterResult(result: ClusterRunResult, seed: number): string {
  const width = Math.max(...result.checks.map((c) => c.name.length));
  const t = result.tally;
  const kills = result.events.filter((e) => e.kind === 'kill').length;
  const sorted = [...t.resumeMs].sort((a, b) => a - b);
  const p = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return [
    `cluster seed ${seed}: ${result.ok ? 'ok' : 'FAILED'} in ${(result.durationMs / 1000).toFixed(0)} s, ${kills} kills, ${t.clientResolved} client and ${t.serverAccepted} server messages, ${t.redelivered} redelivered (marked), slowest resume per kill p50 ${p(0.5)} ms / max ${sorted.at(-1) ?? 0} ms`,
    ...result.checks.map(
      (c) => `  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`,
      ...t.problems.map((problem) => `  ! ${problem}`),
    ),
    ...(result.ok ? [] : [`  replay: pnpm chaos --suite cluster --seed ${seed}`]),
  ].join('\n');
}
