import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { freePort } from './free-port.js';
import { HAProxy } from './haproxy.js';
import { Instance } from './instance.js';
import type { InstanceSettings } from './instance-main.js';
import { type JournalLine, readJournal } from './journal.js';
import { RedisServer } from './redis-server.js';

/** Something the runner did to the cluster, with its wall-clock time. */
export interface ClusterEvent {
  at: number;
  kind: 'kill' | 'close' | 'start' | 'redis-restart' | 'redis-up';
  instance?: string;
  /** For a close: how long the drain took; for a redis restart: how long Redis was down. */
  ms?: number;
}

/** Settings of a {@link ClusterRig}. */
export interface RigOptions {
  /** A folder of its own (Redis AOF, journals, HAProxy configuration). */
  dir: string;
  instances: number;
  /** Instance settings beyond ports, names and paths. */
  instance: Omit<
    InstanceSettings,
    'name' | 'port' | 'dashboardPort' | 'redisUrl' | 'prefix' | 'journal'
  >;
  /** Redis fsync policy. Default 'always'. */
  appendfsync?: 'always' | 'everysec';
}

/**
 * A Tether cluster on loopback: Debian's redis-server (AOF), `instances` server processes on
 * the Redis store, and HAProxy in TCP mode in front, every port picked at start. The runner
 * kills, closes and restarts instances and Redis through it; every event is kept for the checks.
 */
export class ClusterRig {
  readonly redis: RedisServer;
  readonly instances: Instance[] = [];
  readonly events: ClusterEvent[] = [];
  #haproxy: HAProxy | undefined;

  private constructor(options: RigOptions) {
    this.redis = new RedisServer({
      dir: path.join(options.dir, 'redis'),
      appendfsync: options.appendfsync ?? 'always',
    });
  }

  /** Starts Redis, the instances and HAProxy. */
  static async start(options: RigOptions): Promise<ClusterRig> {
    mkdirSync(options.dir, { recursive: true });
    const rig = new ClusterRig(options);
    try {
      await rig.redis.start();
      for (let i = 0; i < options.instances; i++) {
        const instance = new Instance({
          ...options.instance,
          name: `i${i}`,
          port: await freePort(),
          dashboardPort: await freePort(),
          redisUrl: rig.redis.url,
          prefix: 'tether:',
          journal: path.join(options.dir, `journal-i${i}.log`),
        });
        rig.instances.push(instance);
      }
      await Promise.all(rig.instances.map((instance) => instance.start()));
      rig.#haproxy = new HAProxy({
        configPath: path.join(options.dir, 'haproxy.cfg'),
        backends: rig.instances.map((i) => ({
          name: i.name,
          port: i.settings.port,
          dashboardPort: i.settings.dashboardPort,
        })),
      });
      await rig.#haproxy.start();
    } catch (error) {
      await rig.stop();
      throw error;
    }
    return rig;
  }

  /** The port clients connect to (HAProxy). */
  get port(): number {
    return this.#haproxy?.port ?? 0;
  }

  /** SIGKILLs instance `i`. */
  async kill(i: number): Promise<void> {
    const instance = this.instances[i] as Instance;
    this.events.push({ at: Date.now(), kind: 'kill', instance: instance.name });
    await instance.kill();
  }

  /** Closes instance `i` gracefully (GOAWAY, drain, sessions handed back). */
  async close(i: number, retryAfterMs = 300, drainTimeoutMs = 2000): Promise<void> {
    const instance = this.instances[i] as Instance;
    const at = Date.now();
    await instance.close(retryAfterMs, drainTimeoutMs);
    this.events.push({ at, kind: 'close', instance: instance.name, ms: Date.now() - at });
  }

  /** Starts instance `i` again (same ports, same journal). */
  async startInstance(i: number): Promise<void> {
    const instance = this.instances[i] as Instance;
    await instance.start();
    this.events.push({ at: Date.now(), kind: 'start', instance: instance.name });
  }

  /** Restarts Redis on its port and data; `kill` crashes it (SIGKILL) instead of SIGTERM. */
  async restartRedis(kill: boolean, downMs = 0): Promise<void> {
    const at = Date.now();
    this.events.push({ at, kind: 'redis-restart' });
    await this.redis.stop(kill);
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.redis.restart(false);
    this.events.push({ at: Date.now(), kind: 'redis-up', ms: Date.now() - at });
  }

  /** Every instance's journal, by instance name. */
  journals(): Map<string, JournalLine[]> {
    return new Map(this.instances.map((i) => [i.name, readJournal(i.settings.journal)]));
  }

  /** Stops everything (instances killed: nothing is left behind). */
  async stop(): Promise<void> {
    await Promise.allSettled(this.instances.map((instance) => instance.kill()));
    await this.#haproxy?.stop();
    await this.redis.stop(true);
  }
}
