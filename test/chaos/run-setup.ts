/**
 * What every scenario run shares, whatever its environment (proxy, netns, loss): the run's
 * clock, handle baseline, drawn knobs, history, file directories and server mirror at the start;
 * the server settings and the client on the shared timings; the workload environment; and at the
 * end the file cleanup, the leak count and the verdict.
 */
import { FileDirs, FileTransfers } from './files.js';
import { History, now } from './history.js';
import { ServerMirror, type ServerSide } from './mirror.js';
import {
  clientSettings,
  drawKnobs,
  handlesLeft,
  type Knobs,
  type RunResult,
  result,
  type Suite,
  Timing,
} from './run-result.js';
import { liveHandles, type ServerSettings } from './server-host.js';
import { ClientDriver, type FaultInjector, type WorkloadEnv } from './workload.js';

/** The state a run starts with. */
export interface RunSetup {
  readonly seed: number;
  readonly startedAt: number;
  /** Handles alive before the run, so the end can tell what the run leaked. */
  readonly baseline: Record<string, number>;
  readonly knobs: Knobs;
  readonly history: History;
  readonly dirs: FileDirs;
  readonly mirror: ServerMirror;
}

/** Starts a run's clock and draws its knobs (plan length within `budget` ms). */
export function setUpRun(seed: number, budget: { min: number; max: number }): RunSetup {
  const startedAt = now();
  const baseline = liveHandles();
  const history = new History();
  return {
    seed,
    startedAt,
    baseline,
    knobs: drawKnobs(seed, budget),
    history,
    dirs: new FileDirs(seed),
    mirror: new ServerMirror(history),
  };
}

/** The server settings every suite uses (the shared timings), listening on `host:port`. */
export function serverSettings(setup: RunSetup, host: string, port: number): ServerSettings {
  return {
    host,
    port,
    pingIntervalMs: Timing.pingIntervalMs,
    evictAfterMs: Timing.evictAfterMs,
    sessionTtlMs: Timing.sessionTtlMs,
    helloTimeoutMs: Timing.helloTimeoutMs,
    retryAfterMs: Timing.retryAfterMs,
    uploadDir: setup.dirs.uploads,
  };
}

/** The run's client driver (not started) for the server at `host:port`. */
export function newClient(
  setup: RunSetup,
  host: string,
  port: number,
  clientId: string,
  url?: string,
): ClientDriver {
  const settings = clientSettings(host, port, clientId, setup.knobs, setup.dirs.downloads);
  return new ClientDriver(
    setup.history,
    url === undefined ? settings : { ...settings, url },
    setup.seed,
  );
}

/** The workload's environment: this run's history and files over a client and a server. */
export function workloadEnv(
  setup: RunSetup,
  client: ClientDriver,
  server: ServerSide,
  faults: FaultInjector,
): WorkloadEnv {
  const { seed, history, dirs } = setup;
  return {
    seed,
    history,
    client,
    server,
    faults,
    files: new FileTransfers(history, dirs, client, server),
  };
}

/**
 * Ends a run once everything it opened is closed: removes its files, records the handles it left
 * (plus `extra`: what a child process reported, and how it exited) and judges the history.
 */
export async function endRun(
  setup: RunSetup,
  suite: Suite,
  error: unknown,
  plan: string,
  extra: {
    handles?: Record<string, number>;
    childExit?: NonNullable<History['final']>['childExit'];
  } = {},
): Promise<RunResult> {
  setup.dirs.remove();
  const leaked = { ...(await handlesLeft(setup.baseline)), ...(extra.handles ?? {}) };
  const final = setup.history.final;
  if (final !== undefined) {
    final.leakedHandles = leaked;
    if (extra.childExit !== undefined) final.childExit = extra.childExit;
  }
  return result(suite, setup.seed, setup.history, setup.knobs, error, setup.startedAt, plan);
}
