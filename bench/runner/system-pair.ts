// One system under test: its server worker and its client worker, run by the runner one operation
// at a time. `measure` adds the CPU of every process of the system over the operation.
import type {
  CpuByProcess,
  ScenarioName,
  SystemName,
  WorkerArgs,
  WorkerMessage,
} from '../lib/common.js';
import type { ProfileCounts } from '../lib/profile-share.js';
import { type Context, failedRow } from './context.js';
import { spawnWorker, type WorkerProcess } from './worker-process.js';

type Sample = Extract<WorkerMessage, { type: 'sample' }>;

export class SystemPair {
  #nextOp = 0;
  constructor(
    readonly system: SystemName,
    readonly server: WorkerProcess,
    readonly client: WorkerProcess,
  ) {}

  /** Starts the server worker (its 'ready' gives the port), then a client connected to it. */
  static async start(
    ctx: Context,
    system: SystemName,
    scenario: ScenarioName,
    server: Partial<WorkerArgs> = {},
  ): Promise<SystemPair> {
    const s = await startServerWorker(ctx, system, scenario, server);
    try {
      const client = await startClientWorker(ctx, system, scenario, s.port, {
        ...(server.uploadDir ? { uploadDir: server.uploadDir } : {}),
      });
      return new SystemPair(system, s.worker, client);
    } catch (error) {
      s.worker.kill();
      throw error;
    }
  }

  /** Runs one client operation and returns its result (an error when it failed). */
  async op<R>(name: string, params: Record<string, unknown>, timeoutMs: number): Promise<R> {
    const id = ++this.#nextOp;
    this.client.post({ type: 'op', id, name, params });
    const reply = await this.client.next('op-result', timeoutMs);
    if (reply.id !== id)
      throw new Error(`${this.client.label}: reply to op ${reply.id}, not ${id}`);
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.result as R;
  }

  /**
   * Runs one client operation whose result carries the client's CPU over its timed span
   * (`cpuUs`), and adds the server side's CPU (the server worker and its helpers) around it.
   */
  async measure<R extends { cpuUs: number }>(
    name: string,
    params: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<{ result: R; cpuUs: CpuByProcess }> {
    const before = await this.serverCpu();
    const result = await this.op<R>(name, params, timeoutMs);
    const after = await this.serverCpu();
    const cpuUs: CpuByProcess = { client: result.cpuUs };
    for (const [name, us] of Object.entries(after)) cpuUs[name] = us - (before[name] ?? 0);
    return { result, cpuUs };
  }

  /** A full garbage collection in the server worker, then in the client worker. */
  async gc(): Promise<void> {
    this.server.post({ type: 'gc' });
    await this.server.next('gc', 10_000);
    await this.op('gc', {}, 10_000);
  }

  /** The server worker's GC pauses so far (a server started with `dashboard` only). */
  async serverGcTime(): Promise<{ pauseUs: number; count: number }> {
    this.server.post({ type: 'gc-time' });
    const { pauseUs, count } = await this.server.next('gc-time', 10_000);
    return { pauseUs, count };
  }

  /** V8's sampling profiler on in the server (dashboard-cost servers only). */
  async serverProfileStart(intervalUs: number): Promise<void> {
    this.server.post({ type: 'profile-start', intervalUs });
    await this.server.next('profile-started', 10_000);
  }

  /** Ends it: the samples counted for the dashboard. */
  async serverProfileStop(): Promise<ProfileCounts> {
    this.server.post({ type: 'profile-stop' });
    return (await this.server.next('profile', 30_000)).counts;
  }

  async serverCpu(): Promise<CpuByProcess> {
    this.server.post({ type: 'cpu' });
    return (await this.server.next('cpu', 10_000)).byProcess;
  }

  /** Heartbeat frames the server received so far (null: the system does not count them). */
  async heartbeatFrames(): Promise<number | null> {
    this.server.post({ type: 'heartbeats' });
    return (await this.server.next('heartbeats', 10_000)).frames;
  }

  /** Stops the client (`clientGraceMs` at most: one with many connections needs more), then the server. */
  async stop(ctx: Context, clientGraceMs = 2000): Promise<void> {
    await this.client.stop(clientGraceMs);
    await stopServerWorker(ctx, this.server);
  }

  kill(): void {
    this.client.kill();
    this.server.kill();
  }
}

export async function startServerWorker(
  ctx: Context,
  system: SystemName,
  scenario: ScenarioName,
  extra: Partial<WorkerArgs>,
): Promise<{ worker: WorkerProcess; port: number; dashboardPort: number | undefined }> {
  const worker = spawnWorker(ctx, { ...base(ctx, system, scenario), role: 'server', ...extra });
  try {
    const ready = await worker.next('ready', 30_000);
    worker.adopt(ready.helpers);
    return { worker, port: ready.port, dashboardPort: ready.dashboardPort };
  } catch (error) {
    worker.kill();
    throw error;
  }
}

export async function startClientWorker(
  ctx: Context,
  system: SystemName,
  scenario: ScenarioName,
  port: number,
  extra: Partial<WorkerArgs> = {},
): Promise<WorkerProcess> {
  const worker = spawnWorker(ctx, {
    ...base(ctx, system, scenario),
    role: 'client',
    port,
    ...extra,
  });
  try {
    await worker.next('connected', 30_000);
    return worker;
  } catch (error) {
    worker.kill();
    throw error;
  }
}

export function stopServerWorker(ctx: Context, server: WorkerProcess): Promise<void> {
  return server.stop(ctx.options.profile ? 4000 : 1000);
}

/** Asks a server worker for its memory and CPU (after a GC). */
export async function sample(server: WorkerProcess): Promise<Sample> {
  server.post({ type: 'sample' });
  return server.next('sample', 10_000);
}

const TLS: readonly SystemName[] = ['tether-tls', 'raw-tls'];

function base(ctx: Context, system: SystemName, scenario: ScenarioName) {
  return {
    system,
    scenario,
    quick: ctx.options.quick,
    smoke: ctx.options.smoke,
    ...(TLS.includes(system) && ctx.tls ? { tls: ctx.tls } : {}),
  };
}

/** Starts a pair for each system, one after another; a system that cannot start gets a failed row. */
export async function startPairs(
  ctx: Context,
  systems: readonly SystemName[],
  scenario: ScenarioName,
  server: (system: SystemName) => Partial<WorkerArgs>,
): Promise<SystemPair[]> {
  const pairs: SystemPair[] = [];
  for (const system of systems) {
    try {
      pairs.push(await SystemPair.start(ctx, system, scenario, server(system)));
    } catch (error) {
      ctx.rows.push(failedRow(ctx, system, scenario, 0, error));
    }
  }
  return pairs;
}

/** Stops every pair (client first, then server), all at once. */
export async function stopPairs(
  ctx: Context,
  pairs: readonly SystemPair[],
  clientGraceMs?: number,
): Promise<void> {
  await Promise.all(pairs.map((p) => p.stop(ctx, clientGraceMs)));
}
