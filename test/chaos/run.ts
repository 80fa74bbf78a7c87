/**
 * `pnpm chaos`: seeded chaos runs across both suites, a summary table, the seed and replay
 * command of every failing run, and a non-zero exit code on any violation.
 *
 *   pnpm chaos                              130 proxy + 30 netns + 20 loss + 20 ws runs, fresh base seed
 *   pnpm chaos --runs 50 --suite proxy      50 proxy runs (proxy, netns, loss, ws, cluster or all)
 *   pnpm chaos --suite netns --seed 1234    replays one run
 *   pnpm chaos --base 42                    the same 200 seeds as another `--base 42` run
 *   pnpm chaos --verbose                    one line per run
 *   pnpm chaos --json results.json        every run's result, for analysis
 *   pnpm chaos --jobs 1                     one run at a time (default 3 worker processes)
 *   pnpm chaos --suite cluster              Redis + 3 instances + HAProxy, 200 clients, 60 s of kills
 *
 * With `all` (the default) the cluster run comes last, alone on the machine.
 * Runs are spread over worker processes (pool.ts, worker.ts).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { deriveSeed } from '@tether/chaos';
import { CLUSTER_CHAOS, formatClusterResult, runClusterScenario } from './cluster-scenario.js';
import { removeStaleFileDirs } from './files.js';
import { type NetnsCapability, netnsCapability, removeLeftovers, skipWarning } from './netns.js';
import { runPool, skippedRun } from './pool.js';
import { type RunResult, Suite } from './run-result.js';
import { formatFailure, formatTable } from './summary.js';

interface Args {
  seed: number | undefined;
  runs: number | undefined;
  suite: Suite | 'cluster' | 'all';
  base: number | undefined;
  verbose: boolean;
  jobs: number;
  json: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    seed: undefined,
    runs: undefined,
    suite: 'all',
    base: undefined,
    verbose: false,
    jobs: 3,
    json: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new TypeError(`${arg} needs a value`);
      return v;
    };
    const integer = (): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
        throw new TypeError(`${arg} must be an integer from 0 to 4294967295`);
      return v;
    };
    if (arg === '--seed') args.seed = integer();
    else if (arg === '--runs') args.runs = integer();
    else if (arg === '--base') args.base = integer();
    else if (arg === '--jobs') args.jobs = Math.max(1, integer());
    else if (arg === '--json') args.json = value();
    else if (arg === '--verbose' || arg === '-v') args.verbose = true;
    else if (arg === '--suite') {
      const v = value();
      if (
        v !== 'proxy' &&
        v !== 'netns' &&
        v !== 'loss' &&
        v !== 'ws' &&
        v !== 'cluster' &&
        v !== 'all'
      )
        throw new TypeError('--suite must be proxy, netns, loss, ws, cluster or all');
      args.suite = v;
    } else if (arg === '--') {
    } else throw new TypeError(`unknown argument ${arg} (see test/chaos/run.ts)`);
  }
  return args;
}

/** Shares of a mixed batch: netns runs are slower (a child process per run), loss runs move tens of MiB. */
const NETNS_SHARE = 30 / 200;
const LOSS_SHARE = 20 / 200;
/** The proxy scenario with the client on WebSocket. */
const WS_SHARE = 20 / 200;
const DEFAULT_RUNS = 200;

// The cluster suite: one long run of real processes (run after the others, alone).
async function runClusterSuite(args: Args, base: number): Promise<number> {
  if (!(await clusterAvailable())) {
    console.error(
      'cluster suite: redis-server and haproxy are needed (apt-get install -y redis-server haproxy)',
    );
    return process.env.CI !== undefined && process.env.CI !== 'false' && process.env.CI !== '0'
      ? 1
      : 0;
  }
  const seed = args.seed ?? deriveSeed(base, 4, 0);
  console.log(
    `\nCluster suite (seed ${seed}): ${CLUSTER_CHAOS.clients} clients, ${CLUSTER_CHAOS.killPhaseMs / 1000} s of instance kills, a rolling restart, a Redis restart`,
  );
  const result = await runClusterScenario(CLUSTER_CHAOS, seed, (line) => {
    if (args.verbose) console.log(`  ${line}`);
  });
  console.log(formatClusterResult(result, seed));
  return result.ok ? 0 : 1;
}

async function clusterAvailable(): Promise<boolean> {
  const { HAProxy, RedisServer } = await import('@tether/cluster');
  return HAProxy.available() && RedisServer.available();
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const base = args.base ?? randomBytes(4).readUInt32LE(0);
  if (args.suite === 'cluster') return runClusterSuite(args, base);
  const plan: { suite: Suite; seed: number }[] = [];
  if (args.seed !== undefined) {
    const suite = args.suite === 'all' ? Suite.PROXY : args.suite;
    plan.push({ suite, seed: args.seed });
  } else {
    const runs = args.runs ?? DEFAULT_RUNS;
    const share = (suite: Suite, fraction: number): number =>
      args.suite === suite ? runs : args.suite === 'all' ? Math.round(runs * fraction) : 0;
    const netns = share(Suite.NETNS, NETNS_SHARE);
    const loss = share(Suite.LOSS, LOSS_SHARE);
    const ws = share(Suite.WS, WS_SHARE);
    const proxy = args.suite === 'all' || args.suite === Suite.PROXY ? runs - netns - loss - ws : 0;
    // Seeds by suite: run i of suite k is deriveSeed(base, k, i), whatever the mix.
    for (let i = 0; i < proxy; i++) plan.push({ suite: Suite.PROXY, seed: deriveSeed(base, 1, i) });
    for (let i = 0; i < netns; i++) plan.push({ suite: Suite.NETNS, seed: deriveSeed(base, 2, i) });
    for (let i = 0; i < loss; i++) plan.push({ suite: Suite.LOSS, seed: deriveSeed(base, 3, i) });
    for (let i = 0; i < ws; i++) plan.push({ suite: Suite.WS, seed: deriveSeed(base, 5, i) });
  }
  const suites = [...new Set(plan.map((p) => p.suite))];

  let capability: NetnsCapability | undefined;
  if (suites.includes(Suite.NETNS)) {
    capability = await netnsCapability();
    if (capability.ok) await removeLeftovers();
    else console.error(skipWarning(capability.reason));
  }

  console.log(
    args.seed !== undefined
      ? `Tether chaos: replaying ${plan[0]?.suite} seed ${args.seed}`
      : `Tether chaos: ${plan.length} runs (${suites.map((suite) => `${plan.filter((p) => p.suite === suite).length} ${suite}`).join(', ')}), base seed ${base} (replay all with --base ${base})`,
  );
  removeStaleFileDirs();
  const startedAt = performance.now();
  const results: RunResult[] = [];
  const report = (result: RunResult): void => {
    results.push(result);
    const done = results.length;
    if (args.verbose || args.seed !== undefined || !result.ok) {
      const s = result.stats;
      console.log(
        `[${done}/${plan.length}] ${result.suite} seed ${result.seed}: ${result.skipped !== undefined ? 'skipped' : result.ok ? 'ok' : 'FAILED'} in ${result.durationMs.toFixed(0)} ms` +
          (s === undefined
            ? ''
            : `, ${s.messages} messages, ${Object.values(s.faults).reduce((a, b) => a + b, 0)} faults, ${s.redelivered} redelivered`),
      );
      if (!result.ok) console.log(formatFailure(result));
    } else if (done % 20 === 0) {
      console.log(
        `  ${done}/${plan.length} runs, ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
      );
    }
  };
  const runnable = plan.filter((task) => {
    if (task.suite !== Suite.NETNS || capability === undefined || capability.ok) return true;
    report(skippedRun(task.seed, capability.reason));
    return false;
  });
  // Loss runs push tens of MiB through the proxy and hash them, which loads both cores: they run
  // after the other suites, whose dead-link bounds allow heartbeat timers only 50 ms of lateness.
  const jobs = runnable.length === 1 ? 1 : args.jobs;
  await runPool(
    runnable.filter((task) => task.suite !== Suite.LOSS),
    jobs,
    report,
  );
  await runPool(
    runnable.filter((task) => task.suite === Suite.LOSS),
    jobs,
    report,
  );
  if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(results, null, 1)}\n`);
  const clusterCode =
    args.suite === 'all' && args.seed === undefined ? await runClusterSuite(args, base) : 0;
  const failed = results.filter((r) => !r.ok);
  const elapsed = (performance.now() - startedAt) / 1000;
  console.log(`\nSummary (${results.length} runs in ${elapsed.toFixed(0)} s):\n`);
  console.log(formatTable(results, suites));
  if (failed.length > 0) {
    console.log(`\n${failed.length} run(s) FAILED:`);
    for (const r of failed) console.log(formatFailure(r));
    console.log(`\nfailing seeds: ${failed.map((r) => `${r.suite}:${r.seed}`).join(' ')}`);
  }
  const skipped = results.filter((r) => r.skipped !== undefined);
  if (skipped.length > 0) {
    console.error(skipWarning((skipped[0] as RunResult).skipped as string));
    // Where namespaces are required (CI), a skip is a failure.
    if (process.env.CI !== undefined && process.env.CI !== 'false' && process.env.CI !== '0') {
      console.error('CI is set: the netns suite must run here, so this counts as a failure.');
      return 1;
    }
  }
  return failed.length > 0 || clusterCode !== 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  },
);
