/** What one seeded run reports to the runner and the vitest slice. */
import { setTimeout as sleep } from 'node:timers/promises';
import { deriveSeed, mulberry32 } from '@tether/chaos';
import type { OverflowPolicy } from '@tether/client';
import { type CheckResult, check, type RunStats, type Violation } from './checker.js';
import { type History, now, type RunLimits } from './history.js';
import { handlesBeyond, liveHandles } from './server-host.js';
import { writeTimeline } from './timeline.js';
import {
  type ClientSettings,
  finish,
  runPlan,
  type Step,
  Stream,
  type WorkloadEnv,
} from './workload.js';

/** `ws` is the proxy suite with the client on WebSocket (the server's endpoint behind the proxy). */
export const Suite = { PROXY: 'proxy', NETNS: 'netns', LOSS: 'loss', WS: 'ws' } as const;
export type Suite = (typeof Suite)[keyof typeof Suite];

export interface RunResult {
  suite: Suite;
  seed: number;
  ok: boolean;
  /** The run could not happen (netns not permitted): not a failure, but reported loudly. */
  skipped?: string;
  violations: Violation[];
  stats: RunStats | undefined;
  durationMs: number;
  plan: string;
  settings: string;
  /** A failing run's timeline (every run's with CHAOS_TIMELINE=1), written to a temp file. */
  timeline?: string;
  /**
   * Loss suite: the drop that hit the upload, the messages beside it, whether the upload was late,
   * and when it was received after the drop healed, against its bound.
   */
  loss?: {
    uploadDrop: string;
    traffic: string;
    late: boolean;
    receivedAfterHealMs?: number;
    boundMs?: number;
  };
}

/** Timings shared by all suites (short, so 200 runs fit in a few minutes). */
export const Timing = {
  pingIntervalMs: 50,
  /** Client's dead-link deadline and the server's eviction deadline: equal on purpose, so a
   * one-way cut that only one side can see is surfaced to the other (by the close that follows)
   * within the same bound. */
  deadAfterMs: 250,
  evictAfterMs: 250,
  /** Long against the faults (60-450 ms) so sessions normally survive them. */
  sessionTtlMs: 600,
  helloTimeoutMs: 500,
  connectTimeoutMs: 400,
  backoff: { minDelayMs: 10, maxDelayMs: 100 },
  retryAfterMs: 30,
  requestTimeoutMs: 10_000,
  quiesceMs: 5000,
  /** Hello timeout + eviction + scheduling: how long a stale server connection may linger. */
  staleMs: 1000,
} as const;

/** Per-run knobs drawn from the seed: the overflow policy and the caps. */
export interface Knobs {
  overflow: OverflowPolicy;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  maxInFlightBytes: number;
  budgetMs: number;
}

/** Runs the plan, then heals, waits for quiescence and records the final state, on the shared timings. */
export async function runWorkload(env: WorkloadEnv, plan: readonly Step[]): Promise<void> {
  await runPlan(env, plan);
  await finish(env, {
    sessionTtlMs: Timing.sessionTtlMs,
    quiesceMs: Timing.quiesceMs,
    staleMs: Timing.staleMs,
  });
}

/** The client settings every run uses: the shared timings and the run's drawn knobs. */
export function clientSettings(
  host: string,
  port: number,
  clientId: string,
  knobs: Knobs,
  downloadDir: string,
): ClientSettings {
  return {
    host,
    port,
    clientId,
    pingIntervalMs: Timing.pingIntervalMs,
    deadAfterMs: Timing.deadAfterMs,
    connectTimeoutMs: Timing.connectTimeoutMs,
    backoff: Timing.backoff,
    maxQueuedMessages: knobs.maxQueuedMessages,
    maxQueuedBytes: knobs.maxQueuedBytes,
    overflow: knobs.overflow,
    maxInFlightBytes: knobs.maxInFlightBytes,
    requestTimeoutMs: Timing.requestTimeoutMs,
    downloadDir,
  };
}

export function drawKnobs(seed: number, budget: { min: number; max: number }): Knobs {
  const random = mulberry32(deriveSeed(seed, Stream.SETTINGS));
  const policies: OverflowPolicy[] = ['reject', 'drop-oldest', 'wait'];
  const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
  return {
    overflow: policies[Math.floor(random() * policies.length)] as OverflowPolicy,
    maxQueuedMessages: int(16, 80),
    maxQueuedBytes: int(3000, 20_000),
    maxInFlightBytes: int(1024, 32 * 1024),
    budgetMs: int(budget.min, budget.max),
  };
}

export function limitsOf(knobs: Knobs): RunLimits {
  return {
    clientDeadlineMs: Timing.deadAfterMs,
    serverDeadlineMs: Timing.evictAfterMs,
    maxQueuedMessages: knobs.maxQueuedMessages,
    maxQueuedBytes: knobs.maxQueuedBytes,
    overflow: knobs.overflow,
  };
}

export function describeKnobs(knobs: Knobs): string {
  return `overflow=${knobs.overflow} maxQueuedMessages=${knobs.maxQueuedMessages} maxQueuedBytes=${knobs.maxQueuedBytes} maxInFlightBytes=${knobs.maxInFlightBytes} budget=${knobs.budgetMs}ms`;
}

/** How long each close at the end of a run may take before it counts as hanging. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * Awaits a close at the end of a run; one that takes longer than CLOSE_TIMEOUT_MS is recorded as
 * hanging (with `details()` of what it still holds) and left behind, so the run still finishes.
 */
export async function closeWithin(
  history: History,
  what: string,
  close: () => Promise<unknown>,
  details: () => string = () => '',
): Promise<void> {
  history.mark(`teardown: ${what}`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), CLOSE_TIMEOUT_MS);
  });
  const outcome = await Promise.race([close().catch(() => 'failed'), hung]);
  clearTimeout(timer);
  if (outcome === 'hung') {
    const more = details();
    history.teardownHangs.push(
      `${what} did not finish within ${CLOSE_TIMEOUT_MS} ms${more === '' ? '' : `: ${more}`}`,
    );
  }
}

/**
 * Waits (up to `ms`) until this process holds no more TCP sockets, listeners, timers or child
 * processes than it did before the run; returns what is left beyond that.
 */
export async function handlesLeft(
  baseline: Record<string, number>,
  ms = 2000,
): Promise<Record<string, number>> {
  const by = performance.now() + ms;
  let left = handlesBeyond(baseline, liveHandles());
  while (Object.keys(left).length > 0 && performance.now() < by) {
    await sleep(20);
    left = handlesBeyond(baseline, liveHandles());
  }
  return left;
}

/** Judges a finished run and builds its result (with a timeline file when it failed). */
export function result(
  suite: Suite,
  seed: number,
  history: History,
  knobs: Knobs,
  error: unknown,
  startedAt: number,
  plan: string,
): RunResult {
  const verdict = judge(history, knobs, error);
  const run: RunResult = {
    suite,
    seed,
    ok: verdict.ok,
    violations: verdict.violations,
    stats: verdict.stats,
    durationMs: now() - startedAt,
    plan,
    settings: describeKnobs(knobs),
  };
  // CHAOS_TIMELINE=1 writes every run's timeline, to compare a failing run with passing ones.
  if (!verdict.ok || process.env.CHAOS_TIMELINE === '1')
    run.timeline = writeTimeline(history, startedAt, suite, seed);
  return run;
}

export function judge(history: History, knobs: Knobs, error: unknown): CheckResult {
  const result = check(history, limitsOf(knobs));
  if (error !== undefined) {
    // A run cut short has no ending to judge; the error says why.
    result.violations = result.violations.filter((v) => v.check !== 'incomplete');
    result.violations.unshift({
      check: 'run-error',
      detail: (error as Error).stack?.split('\n').slice(0, 3).join(' | ') ?? String(error),
    });
    result.ok = false;
  }
  return result;
}
