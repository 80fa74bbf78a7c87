/**
 * One server instance of a cluster run, in its own process (so it can be killed with SIGKILL):
 * a TetherServer on the Redis store with a dashboard (HAProxy's health checks read `/readyz`),
 * and an application that journals what it sees (journal.ts) and sends to its clients. Settings
 * come as JSON in argv[2]; it reports `{ type: 'listening' }` over IPC and closes gracefully on
 * `{ type: 'close' }`.
 */
import { type Peer, TetherServer } from '@tether/server';
import { JournalWriter } from './journal.js';

/** Settings of one instance process. */
export interface InstanceSettings {
  name: string;
  port: number;
  dashboardPort: number;
  redisUrl: string;
  prefix: string;
  journal: string;
  pingIntervalMs: number;
  evictAfterMs: number;
  sessionTtlMs: number;
  /** Send to each connected client this often (0: never). */
  sendEveryMs: number;
  /** Also send to a client of any instance by id (`sendTo`) this often (0: never). */
  sendToEveryMs: number;
  /** Client ids `sendTo` picks from. */
  clientIds: string[];
  storeTimeoutMs: number;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as InstanceSettings;
const journal = new JournalWriter(settings.journal);
const server = new TetherServer({
  port: settings.port,
  pingIntervalMs: settings.pingIntervalMs,
  evictAfterMs: settings.evictAfterMs,
  sessionTtlMs: settings.sessionTtlMs,
  dashboard: { port: settings.dashboardPort, intervalMs: 1000 },
  redis: {
    url: settings.redisUrl,
    prefix: settings.prefix,
    timeoutMs: settings.storeTimeoutMs,
    // No instanceId: a restarted instance is a new process, with a new id (its lease, channel
    // and sessions are its own; the dead one's are handed back by the sweep).
  },
  maxConnectionsPerAddress: 10_000,
});

server.on('message', (message, peer) => {
  journal.line(
    `m ${Date.now()} ${peer.clientId} ${message.seq} ${message.redelivered ? 1 : 0} ${message.text()}`,
  );
});
server.on('connection', (peer, { resumed }) => {
  journal.line(`c ${Date.now()} ${peer.clientId} ${resumed ? 1 : 0}`);
});
server.on('error', () => {});

let counter = 0;
function send(target: Peer | string): void {
  const clientId = typeof target === 'string' ? target : target.clientId;
  const value = `${settings.name}.${process.pid}.${++counter}`;
  journal.line(`t ${value} ${clientId}`);
  const options = {
    onAccepted: (receipt: { id: string }) => journal.line(`a ${Date.now()} ${value} ${receipt.id}`),
  };
  const sent =
    typeof target === 'string'
      ? server.sendTo(target, value, options)
      : target.send(value, options);
  sent.catch((error: { code?: string }) => journal.line(`r ${value} ${error.code ?? 'unknown'}`));
}

const timers: NodeJS.Timeout[] = [];
if (settings.sendEveryMs > 0) {
  timers.push(
    setInterval(() => {
      if (server.draining) return;
      for (const peer of server.peers) if (peer.connected) send(peer);
    }, settings.sendEveryMs),
  );
}
if (settings.sendToEveryMs > 0 && settings.clientIds.length > 0) {
  timers.push(
    setInterval(() => {
      if (server.draining) return;
      const id = settings.clientIds[Math.floor(Math.random() * settings.clientIds.length)];
      if (id !== undefined) send(id);
    }, settings.sendToEveryMs),
  );
}

process.on(
  'message',
  (command: { type: string; retryAfterMs?: number; drainTimeoutMs?: number }) => {
    if (command.type === 'quiet') {
      // The run is ending: no more sends, so every accepted one can be checked as delivered.
      for (const timer of timers) clearInterval(timer);
      process.send?.({ type: 'quiet' });
      return;
    }
    if (command.type !== 'close') return;
    for (const timer of timers) clearInterval(timer);
    void server
      .close({
        retryAfterMs: command.retryAfterMs ?? 500,
        drainTimeoutMs: command.drainTimeoutMs ?? 2000,
      })
      .then(() => {
        journal.close();
        process.exit(0);
      });
  },
);
// The parent went away: nothing to serve.
process.on('disconnect', () => process.exit(1));

server.listen().then(
  () => process.send?.({ type: 'listening' }),
  (error: unknown) => {
    console.error(`instance ${settings.name} failed to start:`, error);
    process.exit(2);
  },
);
