// Forks a worker (bench/worker.ts) and talks to it over IPC.

import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunnerMessage, WorkerArgs, WorkerMessage } from '../lib/common.js';
import { perfMapPath, perfNodeFlags } from '../lib/perf-share.js';
import { compileWorker } from './compiled-worker.js';
import type { Context } from './context.js';

type Message<T extends WorkerMessage['type']> = Extract<WorkerMessage, { type: T }>;

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** 'server tether/throughput' */
  readonly label: string;
  /** The next message of this type (kept in order), or an error when the worker exits or times out. */
  next<T extends WorkerMessage['type']>(type: T, timeoutMs: number): Promise<Message<T>>;
  post(message: RunnerMessage): void;
  /** Processes the worker started (nats-server): kill() ends them too, should the worker not. */
  adopt(pids: number[]): void;
  /** Asks the worker to stop and waits `graceMs` at most, then kills it. */
  stop(graceMs: number): Promise<void>;
  kill(): void;
}

// Compiled at the first worker of the run, then shared by all.
let compiledEntry: string | undefined;
// Workers started with perf's flags, to name their V8 logs.
let perfWorkers = 0;

export function spawnWorker(ctx: Context, args: WorkerArgs): WorkerProcess {
  const { options } = ctx;
  const label = `${args.role} ${args.system}/${args.scenario}`;
  // The compiled worker, except with --source (Tether's TypeScript needs tsx) and for
  // tether-cluster (its server worker forks systems/tether-cluster-instance.ts by its path).
  const compiled = !options.fromSource && args.system !== 'tether-cluster';
  const execArgv = [
    ...(compiled ? [] : ['--import', 'tsx']),
    ...(options.fromSource ? ['--conditions=@tether/source'] : []),
    '--expose-gc',
  ];
  // Both files go with the worker (lib/perf-share.ts reads the map while it runs).
  const v8Log = args.perfMap
    ? join(tmpdir(), `tether-bench-v8-${process.pid}-${++perfWorkers}.log`)
    : undefined;
  if (v8Log !== undefined) execArgv.push(...perfNodeFlags(v8Log));
  if (options.profile) {
    const dir = join(options.outDir, 'profiles');
    mkdirSync(dir, { recursive: true });
    // One file per thread (CPU.<date>.<pid>.<tid>.cpuprofile): tsx's loader thread has its own.
    // The worker also writes its GC counts and pauses there (gc-stats.json, lib/gc-stats.ts).
    execArgv.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      join(dir, `${args.system}-${args.scenario}-${args.role}`),
    );
  }
  if (compiled && compiledEntry === undefined) compiledEntry = compileWorker(ctx.benchDir);
  const entry = compiled ? (compiledEntry as string) : join(ctx.benchDir, 'worker.ts');
  const child = fork(entry, [JSON.stringify(args)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const helpers: number[] = [];
  const inbox: WorkerMessage[] = [];
  let waiter: (() => void) | undefined;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      if (v8Log !== undefined) {
        rmSync(v8Log, { force: true });
        if (child.pid !== undefined) rmSync(perfMapPath(child.pid), { force: true });
      }
      exited = true;
      waiter?.();
      resolve();
    });
  });
  child.on('message', (m: WorkerMessage) => {
    if (m.type === 'log') ctx.log(m.text);
    inbox.push(m);
    waiter?.();
  });
  return {
    child,
    label,
    async next(type, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0] as Message<typeof type>;
        if (exited) throw new Error(`${label} exited`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${label}: timed out waiting for ${type}`);
        await new Promise<void>((resolve) => {
          waiter = resolve;
          setTimeout(resolve, Math.min(left, 1000));
        });
        waiter = undefined;
      }
    },
    post(message) {
      if (!exited) child.send(message);
    },
    async stop(graceMs) {
      this.post({ type: 'stop' });
      await Promise.race([exit, new Promise((r) => setTimeout(r, graceMs))]);
      this.kill();
    },
    adopt(pids) {
      helpers.push(...pids);
    },
    kill() {
      if (exited) return;
      // A worker killed this way cannot end what it started: end its helpers first, each only
      // while it is still this worker's child (so never a pid the system has given to another).
      for (const pid of helpers.splice(0)) {
        try {
          if (parentOf(pid) === child.pid) process.kill(pid, 'SIGKILL');
        } catch {}
      }
      child.kill('SIGKILL');
    },
  };
}

/** The parent pid of a live process, from /proc/<pid>/stat; undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}
