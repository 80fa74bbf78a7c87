// `tether-cluster`: Tether with its sessions in Redis: Debian's redis-server (AOF, appendfsync
// always), 3 server instances on the Redis store (systems/tether-cluster-instance.ts, one process
// each) and HAProxy in TCP mode in front (health checks on each instance's /readyz), every port
// picked at start (packages/cluster). The client is `tether`'s, connected to HAProxy: one client
// is one connection, so one of the 3 instances serves it. The CPU of Redis, HAProxy and the
// instances counts as the server side's.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, HAProxy, RedisServer } from '@tether/cluster';
import { tether } from './tether.js';
import type { ClientOptions, System } from './types.js';

const INSTANCE = fileURLToPath(new URL('./tether-cluster-instance.ts', import.meta.url));

/** One instance process of a running cluster. */
export interface ClusterInstance {
  readonly name: string;
  readonly port: number;
  readonly dashboardPort: number;
  child: ChildProcess;
}

/** A running `tether-cluster`. */
export interface RunningCluster {
  /** HAProxy's port: where clients connect. */
  port: number;
  redis: RedisServer;
  haproxy: HAProxy;
  instances: ClusterInstance[];
  /** Client ids connected to instance `i` now. */
  peersOf(i: number): Promise<string[]>;
  /** SIGKILLs instance `i`; resolves once it is gone. */
  kill(i: number): Promise<void>;
  /** Starts instance `i` again on its ports. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

// The instances run as this worker does: tsx, and the source condition with --source.
function execArgv(): string[] {
  return ['--import', 'tsx', ...process.execArgv.filter((a) => a.startsWith('--conditions'))];
}

async function startInstance(
  name: string,
  redisUrl: string,
  port: number,
  dashboardPort: number,
): Promise<ClusterInstance> {
  const child = fork(INSTANCE, [JSON.stringify({ redisUrl, port, dashboardPort })], {
    execArgv: execArgv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`instance ${name} exited (${code}) at start`)));
  });
  return { name, port, dashboardPort, child };
}

async function stopInstance(instance: ClusterInstance): Promise<void> {
  const { child } = instance;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send({ type: 'stop' });
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  child.kill('SIGKILL');
}

/** Starts Redis, `count` instances and HAProxy (in a temporary folder, removed by `stop`). */
export async function startCluster(count = 3): Promise<RunningCluster> {
  if (!RedisServer.available() || !HAProxy.available()) {
    throw new Error(
      'tether-cluster needs redis-server and haproxy (apt-get install -y redis-server haproxy)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-cluster-'));
  const redis = new RedisServer({ dir: join(dir, 'redis') });
  const instances: ClusterInstance[] = [];
  let haproxy: HAProxy | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all(instances.map(stopInstance));
    await haproxy?.stop();
    await redis.stop(true);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await redis.start();
    for (let i = 0; i < count; i++) {
      instances.push(await startInstance(`i${i}`, redis.url, await freePort(), await freePort()));
    }
    haproxy = new HAProxy({
      configPath: join(dir, 'haproxy.cfg'),
      backends: instances.map((x) => ({
        name: x.name,
        port: x.port,
        dashboardPort: x.dashboardPort,
      })),
    });
    await haproxy.start();
  } catch (error) {
    await stop();
    throw error;
  }
  const proxy = haproxy;
  return {
    port: proxy.port,
    redis,
    haproxy: proxy,
    instances,
    async peersOf(i) {
      const { child } = instances[i] as ClusterInstance;
      return new Promise((resolve) => {
        const onMessage = (m: { type?: string; clientIds?: string[] }): void => {
          if (m.type !== 'peers') return;
          child.off('message', onMessage);
          resolve(m.clientIds ?? []);
        };
        child.on('message', onMessage);
        child.send({ type: 'peers' });
      });
    },
    async kill(i) {
      const { child } = instances[i] as ClusterInstance;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    async restart(i) {
      const old = instances[i] as ClusterInstance;
      instances[i] = await startInstance(old.name, redis.url, old.port, old.dashboardPort);
    },
    stop,
  };
}

export const tetherCluster: System = {
  async startServer() {
    const cluster = await startCluster();
    return {
      port: cluster.port,
      memoryPid: cluster.instances[0]?.child.pid as number,
      helpers: [
        { name: 'redis-server', pid: cluster.redis.pid as number },
        { name: 'haproxy', pid: cluster.haproxy.pid as number },
        ...cluster.instances.map((x) => ({
          name: `instance ${x.name}`,
          pid: x.child.pid as number,
        })),
      ],
      close: () => cluster.stop(),
    };
  },
  connect: (options: ClientOptions) =>
    tether({ tls: false, watched: false, webSocket: false }).connect(options),
};
