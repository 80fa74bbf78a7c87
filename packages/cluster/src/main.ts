/**
 * `pnpm cluster`: starts Redis, 3 server instances on the Redis store and HAProxy (every port
 * picked at run time), runs clients through a script of instance kills, a rolling restart and a
 * Redis restart, and ends with a verification table. Exit code 0 only if every check holds.
 *
 *   pnpm cluster [--clients 40] [--rate 20] [--kill-phase-ms 10000] [--kill-every-ms 2500]
 *                [--down-ms 1000] [--step-ms 1500] [--seed n] [--no-redis-restart]
 */
import { runCluster } from './cluster-run.js';
import { HAProxy } from './haproxy.js';
import { RedisServer } from './redis-server.js';

function parse(argv: string[]) {
  const args = {
    clients: 40,
    rate: 20,
    killPhaseMs: 10_000,
    killEveryMs: 2500,
    downMs: 1000,
    stepMs: 1500,
    redisRestart: true,
    seed: Math.floor(Math.random() * 2 ** 32),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const num = (): number => {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value) || value < 0) throw new TypeError(`${arg} needs a number`);
      return value;
    };
    if (arg === '--clients') args.clients = Math.max(1, Math.floor(num()));
    else if (arg === '--rate') args.rate = num();
    else if (arg === '--kill-phase-ms') args.killPhaseMs = num();
    else if (arg === '--kill-every-ms') args.killEveryMs = Math.max(100, num());
    else if (arg === '--down-ms') args.downMs = num();
    else if (arg === '--step-ms') args.stepMs = num();
    else if (arg === '--seed') args.seed = Math.floor(num()) >>> 0;
    else if (arg === '--no-redis-restart') args.redisRestart = false;
    else if (arg === '--') continue;
    else throw new TypeError(`unknown argument ${arg}`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (!RedisServer.available() || !HAProxy.available()) {
    console.error(
      'pnpm cluster needs redis-server and haproxy: apt-get install -y redis-server haproxy',
    );
    return 2;
  }
  const started = performance.now();
  const log = (line: string): void =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
  log(`Tether cluster: Redis + 3 instances + HAProxy, on loopback (seed ${args.seed})`);
  const result = await runCluster({ ...args, log });
  console.log('\nVerification');
  const width = Math.max(...result.checks.map((c) => c.name.length));
  for (const check of result.checks) {
    console.log(`  ${check.ok ? 'ok  ' : 'FAIL'}  ${check.name.padEnd(width)}  ${check.detail}`);
  }
  const t = result.tally;
  for (const problem of t.problems) console.log(`  ! ${problem}`);
  console.log(
    `\n${result.ok ? 'All checks hold' : 'SOME CHECKS FAILED'}: ${t.clientResolved} client messages and ${t.serverAccepted} server messages delivered, ${t.redelivered} redelivered (marked), in ${(result.durationMs / 1000).toFixed(1)} s.`,
  );
  return result.ok ? 0 : 1;
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
