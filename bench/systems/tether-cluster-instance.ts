// One instance of `tether-cluster`, in its own process (so it can be killed with SIGKILL):
// Tether's server as the bench runs it (the same receiving application), on the Redis store,
// with its dashboard on (HAProxy's health checks read /readyz). Forked by systems/tether-cluster.ts
// with its settings as JSON; reports `ready`, answers `peers` (the client ids connected here),
// stops on `stop`.
import { TetherServer } from '@tether/server';
import { makeHandler } from './types.js';

interface InstanceArgs {
  redisUrl: string;
  port: number;
  dashboardPort: number;
}

const args = JSON.parse(process.argv[2] as string) as InstanceArgs;
const handler = makeHandler('sink');
const server = new TetherServer({
  port: args.port,
  maxConnections: 20_000,
  maxConnectionsPerAddress: 20_000,
  maxFrame: 2 * 1024 * 1024,
  dashboard: { port: args.dashboardPort },
  redis: { url: args.redisUrl },
});
server.on('message', (m, peer) => handler(m.data, (d) => void peer.send(d).catch(() => {})));
server.on('error', () => {});
process.on('disconnect', () => process.exit(1));
process.on('message', async (m: { type: string }) => {
  if (m.type === 'peers') {
    const clientIds = server.peers.filter((p) => p.connected).map((p) => p.clientId);
    process.send?.({ type: 'peers', clientIds });
  }
  if (m.type === 'stop') {
    await Promise.race([
      server.close({ drainTimeoutMs: 0 }),
      new Promise((resolve) => setTimeout(resolve, 3000)),
    ]);
    process.exit(0);
  }
});
server.listen().then(
  () => process.send?.({ type: 'ready' }),
  (error: Error) => {
    process.stderr.write(`tether-cluster instance: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
