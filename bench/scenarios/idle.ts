// idle-connections, client side: N clients connect (set-up rate), then sit idle with their default
// heartbeats while the runner (runner/idle-cells.ts) samples the server's memory and CPU.
import type { WorkerArgs } from '../lib/common.js';
import { system } from '../systems/index.js';
import type { ClientSide } from '../systems/types.js';

export interface IdleOps {
  connect(params: { connections: number }): Promise<{ setupMs: number; connections: number }>;
  close(): Promise<void>;
}

export function idleOps(args: WorkerArgs): IdleOps {
  const clients: ClientSide[] = [];
  return {
    async connect({ connections }) {
      const sys = await system(args.system);
      const start = performance.now();
      let next = 0;
      const concurrency = 64;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < connections) {
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
      return { setupMs: performance.now() - start, connections: clients.length };
    },
    async close() {
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    },
  };
}
