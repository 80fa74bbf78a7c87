/**
 * Runs chaos tasks, in this process or spread over worker processes (worker.ts). A run is mostly
 * waiting on timers, so a few at once fit on two cores; in its own process each run's handle
 * check sees only that run. Used by `pnpm chaos` (run.ts) and the vitest slice (chaos.test.ts).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { removeStaleFileDirs } from './files.js';
import { runLossScenario } from './loss-scenario.js';
import { removeLeftovers } from './netns.js';
import { runNetnsScenario } from './netns-scenario.js';
import { runProxyScenario } from './proxy-scenario.js';
import { type RunResult, Suite } from './run-result.js';
import { tsxArgs } from './tsx-args.js';

export interface Task {
  suite: Suite;
  seed: number;
}

export function runOne(task: Task): Promise<RunResult> {
  switch (task.suite) {
    case Suite.PROXY:
      return runProxyScenario(task.seed);
    case Suite.NETNS:
      return runNetnsScenario(task.seed);
    case Suite.LOSS:
      return runLossScenario(task.seed);
    case Suite.WS:
      return runProxyScenario(task.seed, { webSocket: true });
  }
}

/** A run taking longer than this is killed and failed (a run normally takes 1-5 s). */
const RUN_TIMEOUT_MS = 60_000;

/** How long an idle worker may take to exit once its stdin ends. */
const EXIT_GRACE_MS = 3000;

/** Marks a worker's result lines on stdout. */
export const RESULT_MARK = 'CHAOS-RESULT ';

/**
 * Runs `tasks` on `jobs` worker processes, each doing one task at a time; `report` gets every
 * result as it comes. A worker that dies fails the run it had, and a new one takes the rest.
 */
export async function runPool(
  tasks: readonly Task[],
  jobs: number,
  report: (result: RunResult) => void,
): Promise<void> {
  if (jobs <= 1) {
    for (const task of tasks) report(await runOne(task));
    return;
  }
  const queue = [...tasks];
  const script = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const spawnWorker = async (): Promise<void> => {
    const child = spawn(process.execPath, tsxArgs(script), {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
        child.stdin.write(`${JSON.stringify(task)}\n`);
        // A run that hangs (an operation that never settles, a close that never returns) is a
        // failure of that run: the worker is killed and a new one takes the rest.
        const watchdog = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
        let result: RunResult | undefined;
        try {
          for (let next = await lines.next(); !next.done; next = await lines.next()) {
            if (next.value.startsWith(RESULT_MARK)) {
              result = JSON.parse(next.value.slice(RESULT_MARK.length)) as RunResult;
              break;
            }
            console.log(next.value);
          }
        } finally {
          clearTimeout(watchdog);
        }
        if (result !== undefined) {
          report(result);
          continue;
        }
        const code = await exited;
        report(
          crashed(task, code === null ? `killed after ${RUN_TIMEOUT_MS / 1000} s` : `exit ${code}`),
        );
        // What the dead worker had created in namespaces is left over: remove it now.
        if (task.suite === Suite.NETNS) await removeLeftovers().catch(() => {});
        removeStaleFileDirs();
        return;
      }
    } finally {
      child.stdin.end();
      // A worker holding a handle a run leaked (reported by that run) would never exit.
      const kill = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
      await exited;
      clearTimeout(kill);
    }
  };
  const slot = async (): Promise<void> => {
    while (queue.length > 0) await spawnWorker();
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, slot));
}

function crashed(task: Task, how: string): RunResult {
  return {
    ...task,
    ok: false,
    violations: [{ check: 'run-error', detail: `the run did not finish: worker ${how}` }],
    stats: undefined,
    durationMs: 0,
    plan: '',
    settings: '',
  };
}

/** A netns run that could not happen here. */
export function skippedRun(seed: number, reason: string): RunResult {
  return {
    suite: Suite.NETNS,
    seed,
    ok: true,
    skipped: reason,
    violations: [],
    stats: undefined,
    durationMs: 0,
    plan: '',
    settings: '',
  };
}
