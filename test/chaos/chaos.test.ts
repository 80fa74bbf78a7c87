/**
 * The short slice of `pnpm chaos` that `pnpm test` runs: 20 proxy runs, 5 ws runs, 3 netns runs and
 * 5 loss runs from a fixed base seed (override with CHAOS_BASE=n), on two worker processes. Run i of a
 * suite has the same seed as in `pnpm chaos --base <base>`, so `pnpm chaos --base <base> --suite
 * loss --runs 5` replays the loss part; a failure prints each run's seed and replay command.
 */
import { deriveSeed } from '@tether/chaos';
import { describe, expect, it } from 'vitest';
import { removeStaleFileDirs } from './files.js';
import { netnsCapability, removeLeftovers, skipWarning } from './netns.js';
import { runPool, skippedRun, type Task } from './pool.js';
import { type RunResult, Suite } from './run-result.js';
import { formatFailure, formatTable } from './summary.js';

const BASE = Number(process.env.CHAOS_BASE ?? 20_250_601);
const PROXY_RUNS = 20;
const NETNS_RUNS = 3;
const LOSS_RUNS = 5;
const WS_RUNS = 5;
const JOBS = 2;

const inCi = process.env.CI !== undefined && process.env.CI !== 'false' && process.env.CI !== '0';

describe('chaos - seeded runs through the proxy and across network namespaces', () => {
  it(`${PROXY_RUNS} proxy runs, ${WS_RUNS} ws runs and ${NETNS_RUNS} netns runs without a violation (base seed ${BASE})`, {
    timeout: 180_000,
  }, async () => {
    // The same seeds as `pnpm chaos --base BASE`: proxy run i is deriveSeed(BASE, 1, i).
    const tasks: Task[] = [
      ...Array.from({ length: PROXY_RUNS }, (_, i) => ({
        suite: Suite.PROXY,
        seed: deriveSeed(BASE, 1, i),
      })),
      ...Array.from({ length: NETNS_RUNS }, (_, i) => ({
        suite: Suite.NETNS,
        seed: deriveSeed(BASE, 2, i),
      })),
      // The proxy scenario with the client on WebSocket: the same seeds as `--suite ws`.
      ...Array.from({ length: WS_RUNS }, (_, i) => ({
        suite: Suite.WS,
        seed: deriveSeed(BASE, 5, i),
      })),
    ];
    removeStaleFileDirs();
    const results: RunResult[] = [];
    const capability = await netnsCapability();
    if (capability.ok) {
      await removeLeftovers();
    } else {
      console.warn(skipWarning(capability.reason));
      for (const task of tasks.filter((t) => t.suite === Suite.NETNS))
        results.push(skippedRun(task.seed, capability.reason));
    }
    const runnable = tasks.filter((t) => t.suite !== Suite.NETNS || capability.ok);
    await runPool(runnable, JOBS, (result) => results.push(result));

    console.log(formatTable(results, [Suite.PROXY, Suite.WS, Suite.NETNS]));
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) console.error(formatFailure(r));
    expect(
      failed.map(
        (r) => `${r.suite} seed ${r.seed}: ${r.violations.map((v) => v.check).join(', ')}`,
      ),
    ).toEqual([]);
    // In CI the kernel-level suite must run: a skip there is a failure.
    if (inCi) expect(capability).toEqual({ ok: true });
  });
});

describe('chaos - byte loss on a live link', () => {
  // A transfer that stalls fails its run with `file-late` (and `not-quiescent`) once its bound
  // has passed, instead of hanging the test; the pool kills a run that hangs anyway after 60 s.
  it(`${LOSS_RUNS} loss runs: messages and an upload survive drops shorter than the deadline (base seed ${BASE})`, {
    timeout: 180_000,
  }, async () => {
    const tasks: Task[] = Array.from({ length: LOSS_RUNS }, (_, i) => ({
      suite: Suite.LOSS,
      seed: deriveSeed(BASE, 3, i),
    }));
    removeStaleFileDirs();
    const results: RunResult[] = [];
    await runPool(tasks, JOBS, (result) => results.push(result));
    console.log(formatTable(results, [Suite.LOSS]));
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) console.error(formatFailure(r));
    expect(
      failed.map(
        (r) => `${r.suite} seed ${r.seed}: ${r.violations.map((v) => v.check).join(', ')}`,
      ),
    ).toEqual([]);
  });
});
