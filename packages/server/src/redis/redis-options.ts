import { newInstanceId } from './instance-id.js';

/** Options of the Redis session store (`redis` option of the server). Times in milliseconds. */
export interface RedisStoreOptions {
  /**
   * Where Redis is: `redis://[:password@]host:port[/db]` (`rediss://` for TLS). One Redis
   * primary with AOF (`appendonly yes`; `appendfsync always` to survive a crash of Redis itself)
   * and `maxmemory-policy noeviction`: sessions must never be evicted.
   */
  url: string;
  /** Prefix of every key and channel; the instances of one cluster share it. Default `'tether:'`. */
  prefix?: string;
  /**
   * How long an operation may wait for Redis (a reconnect, a slow reply) before it fails with
   * STORE_UNAVAILABLE. Default 5000.
   */
  timeoutMs?: number;
  /**
   * An instance renews its lease in Redis every second; when it has not for this long (a crash),
   * another hands its disconnected sessions' expiry over. Default 5000.
   */
  leaseMs?: number;
  /** This process's id among the instances (unique per process). Default: random. */
  instanceId?: string;
}

/** {@link RedisStoreOptions} with defaults filled in. */
export interface ResolvedRedisOptions {
  url: string;
  prefix: string;
  timeoutMs: number;
  leaseMs: number;
  instanceId: string;
}

const INSTANCE_ID = /^[0-9A-Za-z_-]{1,64}$/;

/** Validates and fills in the Redis store's options; a bad one throws a TypeError naming it. */
export function resolveRedisOptions(options: RedisStoreOptions): ResolvedRedisOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('redis must be an object with a url');
  }
  const { url } = options;
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
    throw new TypeError(`redis.url must be a redis:// or rediss:// URL, got ${String(url)}`);
  }
  const prefix = options.prefix ?? 'tether:';
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 64) {
    throw new TypeError('redis.prefix must be a string of 1 to 64 characters');
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new TypeError(`redis.timeoutMs must be a positive finite number, got ${timeoutMs}`);
  }
  const leaseMs = options.leaseMs ?? 5000;
  if (!(leaseMs >= 2000 && Number.isFinite(leaseMs))) {
    throw new TypeError(`redis.leaseMs must be a finite number >= 2000, got ${leaseMs}`);
  }
  const instanceId = options.instanceId ?? newInstanceId();
  if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId)) {
    throw new TypeError('redis.instanceId must be 1 to 64 characters of [0-9A-Za-z_-]');
  }
  return { url, prefix, timeoutMs, leaseMs, instanceId };
}
