import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RedisServer } from '@tether/cluster';
import type { Transport } from '@tether/core';

/**
 * Whether the cluster tests can run here: they need Debian's redis-server (and haproxy for the
 * load-balanced ones). Locally they skip without them; under CI (`.ci/run` installs both) a
 * missing binary fails instead.
 */
export function requireBinaries(...names: ('redis-server' | 'haproxy')[]): boolean {
  const missing = names.filter((name) => name === 'redis-server' && !RedisServer.available());
  const ci = process.env.CI !== undefined && process.env.CI !== 'false' && process.env.CI !== '0';
  if (missing.length > 0 && ci) throw new Error(`CI is set but ${missing.join(', ')} is missing`);
  return missing.length === 0;
}

/** A Redis on a free loopback port with its AOF in a temporary folder; `stop()` removes it. */
export async function startRedis(): Promise<RedisServer & { cleanup(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tether-redis-'));
  const redis = new RedisServer({ dir });
  await redis.start();
  return Object.assign(redis, {
    async cleanup(): Promise<void> {
      await redis.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** A client transport that connects to whichever port `target()` names at each attempt. */
export function switchable(target: () => number): (signal: AbortSignal) => Promise<Transport> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const socket = net.connect(target(), '127.0.0.1');
      const abort = (): void => {
        socket.destroy();
        reject(new Error('aborted'));
      };
      signal.addEventListener('abort', abort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', abort);
        socket.setNoDelay(true);
        resolve(socket);
      });
      socket.once('error', (error) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      });
    });
}
