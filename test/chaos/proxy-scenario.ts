/**
 * One seeded proxy run: a server in this process, the ChaosProxy in front of it, and a client
 * through the proxy. The plan interleaves sends and requests both ways with toxics switched on
 * and off, server restarts (crash-like close, new server on the same port: at-least-once from
 * there) and client restarts (same clientId: what the old client had not had acknowledged was
 * rejected with CLOSED, so it is not "acknowledged", so not lost). Then heal, quiesce, check.
 */

import { Socket } from 'node:net';
import { ChaosProxy, deriveSeed, type Random } from '@tether/chaos';
import { Direction } from './history.js';
import { LocalServer } from './mirror.js';
import { closeWithin, type RunResult, runWorkload, Suite } from './run-result.js';
import {
  endRun,
  newClient,
  type RunSetup,
  serverSettings,
  setUpRun,
  workloadEnv,
} from './run-setup.js';
import { ServerHost } from './server-host.js';
import {
  type ClientDriver,
  describePlan,
  type FaultInjector,
  type FaultKind,
  makePlan,
  Stream,
} from './workload.js';

/** Toxics the proxy suite draws from (README.md of @tether/chaos documents each). */
export const PROXY_FAULTS: readonly FaultKind[] = [
  { name: 'latency', silent: false, background: true },
  { name: 'bandwidth', silent: false, background: true },
  { name: 'slicer', silent: false, background: true },
  { name: 'blackhole', silent: true, background: false },
  { name: 'half_open_up', silent: true, background: false, oneWay: Direction.C2S },
  { name: 'half_open_down', silent: true, background: false, oneWay: Direction.S2C },
  { name: 'limit_data', silent: false, background: false },
  { name: 'reset_peer', silent: false, background: false },
  { name: 'reset_all', silent: false, background: false },
  { name: 'down', silent: false, background: false },
];

function int(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** Faults through the proxy's toxics. */
export class ProxyFaults implements FaultInjector {
  readonly kinds: readonly FaultKind[] = PROXY_FAULTS;
  readonly #proxy: ChaosProxy;

  constructor(proxy: ChaosProxy) {
    this.#proxy = proxy;
  }

  async apply(
    kind: FaultKind,
    random: Random,
  ): Promise<{ detail: string; heal: () => Promise<void> }> {
    const proxy = this.#proxy;
    const toxic = (definition: Parameters<ChaosProxy['addToxic']>[0], detail: string) => {
      const id = proxy.addToxic(definition);
      // A toxic that dropped bytes leaves a stream TCP could never produce (TCP retransmits; a
      // connection either delivers every byte or dies). When it heals, the links it touched
      // die too, as a real connection would, instead of resuming with a hole in the stream.
      const dropsBytes = definition.type === 'blackhole' || definition.type === 'half_open';
      return {
        detail,
        heal: async () => {
          proxy.removeToxic(id);
          if (dropsBytes) proxy.resetAll();
        },
      };
    };
    switch (kind.name) {
      case 'latency': {
        const latency = int(random, 2, 25);
        const jitter = int(random, 0, Math.min(10, latency));
        return toxic(
          { type: 'latency', direction: 'both', latency, jitter },
          `${latency}±${jitter} ms`,
        );
      }
      case 'bandwidth': {
        const rate = int(random, 50, 500);
        return toxic({ type: 'bandwidth', direction: 'both', rate }, `${rate} KB/s`);
      }
      case 'slicer': {
        const average = int(random, 4, 64);
        const variation = int(random, 0, average - 1);
        const delay = int(random, 0, 300);
        return toxic(
          {
            type: 'slicer',
            direction: 'both',
            average_size: average,
            size_variation: variation,
            delay,
          },
          `${average}±${variation} B, ${delay} µs`,
        );
      }
      case 'blackhole':
        return toxic({ type: 'blackhole', direction: 'both' }, 'both ways');
      case 'half_open_up':
        return toxic({ type: 'half_open', direction: 'upstream' }, 'client to server dropped');
      case 'half_open_down':
        return toxic({ type: 'half_open', direction: 'downstream' }, 'server to client dropped');
      case 'limit_data': {
        const direction = random() < 0.5 ? 'upstream' : 'downstream';
        const bytes = int(random, 50, 4000);
        return toxic({ type: 'limit_data', direction, bytes }, `${direction} ${bytes} B`);
      }
      case 'reset_peer': {
        const timeout = int(random, 0, 150);
        return toxic({ type: 'reset_peer', direction: 'both', timeout }, `after ${timeout} ms`);
      }
      case 'reset_all':
        proxy.resetAll();
        return { detail: 'RST to every link', heal: async () => {} };
      case 'down':
        await proxy.setDown(true);
        return { detail: 'listener closed', heal: () => proxy.setDown(false) };
      default:
        throw new Error(`unknown proxy fault ${kind.name}`);
    }
  }
}

export interface ProxyRunOptions {
  /** Plan length range, ms (default 500-1800). */
  budget?: { min: number; max: number };
  /** The client on WebSocket through the proxy to the server's endpoint (the `ws` suite). */
  webSocket?: boolean;
}

/** Open TCP sockets of this process (local -> remote port, state), for a close that hangs. */
function openSockets(): string {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles
    .filter((h): h is Socket => h instanceof Socket)
    .filter((s) => s.remotePort !== undefined || s.localPort !== undefined)
    .map(
      (s) =>
        `${s.localPort}->${s.remotePort} ${s.readyState}${s.destroyed ? ' destroyed' : ''}${s.isPaused() ? ' paused' : ''} writable=${s.writableLength}`,
    )
    .join(', ');
}

/** What a run through the proxy works with. */
export interface ProxyRig {
  server: LocalServer;
  proxy: ChaosProxy;
  /** Connected to the server through the proxy. */
  client: ClientDriver;
}

/**
 * A server in this process, a ChaosProxy in front of it (seeded from the run) and the run's
 * client connected through it; runs `body`, then closes client, server and proxy, each within
 * the close timeout. Resolves with what `body` (or the setup) threw, if anything.
 */
export async function withProxyRig(
  setup: RunSetup,
  clientId: string,
  body: (rig: ProxyRig) => Promise<void>,
  webSocket = false,
): Promise<unknown> {
  const { history } = setup;
  const host = new ServerHost({ ...serverSettings(setup, '127.0.0.1', 0), webSocket }, (report) =>
    setup.mirror.apply(report),
  );
  const server = new LocalServer(setup.mirror, host);
  let proxy: ChaosProxy | undefined;
  let client: ClientDriver | undefined;
  let error: unknown;
  try {
    await server.start();
    proxy = new ChaosProxy({
      target: { host: '127.0.0.1', port: server.port },
      seed: deriveSeed(setup.seed, Stream.PROXY),
    });
    proxy.on('error', () => {});
    await proxy.start();
    const url = webSocket ? `ws://127.0.0.1:${proxy.port}/tether` : undefined;
    client = newClient(setup, '127.0.0.1', proxy.port, clientId, url);
    await client.start(true);
    await body({ server, proxy, client });
  } catch (caught) {
    error = caught;
  } finally {
    await closeWithin(history, 'client.close()', async () => client?.close());
    await closeWithin(history, 'server.close()', () => server.close());
    const stopping = proxy;
    await closeWithin(
      history,
      'proxy.stop()',
      async () => stopping?.stop(),
      () => `links still open: ${JSON.stringify(stopping?.links)}; sockets: ${openSockets()}`,
    );
  }
  return error;
}

export async function runProxyScenario(
  seed: number,
  options: ProxyRunOptions = {},
): Promise<RunResult> {
  const setup = setUpRun(seed, options.budget ?? { min: 500, max: 1800 });
  const plan = makePlan(seed, PROXY_FAULTS, { budgetMs: setup.knobs.budgetMs, files: true });
  const error = await withProxyRig(
    setup,
    `chaos-${seed}`,
    ({ server, proxy, client }) =>
      runWorkload(workloadEnv(setup, client, server, new ProxyFaults(proxy)), plan),
    options.webSocket,
  );
  return endRun(setup, options.webSocket ? Suite.WS : Suite.PROXY, error, describePlan(plan));
}
