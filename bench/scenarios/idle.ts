// idle-connections: N clients connect (set-up rate), then sit idle with their default heartbeats
// while the runner samples the server's memory and CPU.
import type { WorkerArgs } from '../lib/common.js';
import { system } from '../systems/index.js';
import type { ClientSide } from '../systems/types.js';

export async function idleClient(args: WorkerArgs): Promise<void> {
  const count = args.params?.connections as number;
  const sys = await system(args.system);
  const clients: ClientSide[] = [];
  const start = performance.now();
  let next = 0;
  const concurrency = 64;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        clients.push(
          await sys.connect({
            port: args.port as number,
            ...(args.tls ? { tls: { cert: args.tls.cert } } : {}),
          }),
        );
      }
    }),
  );
  const setupMs = performance.now() - start;
  process.send?.({ type: 'progress', phase: 'connected', setupMs, connections: clients.length });
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
}
