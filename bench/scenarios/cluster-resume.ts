// cluster-resume: how long the clients of an instance that dies take to resume their sessions on
// another. `tether-cluster` (Redis, 3 instances, HAProxy: systems/tether-cluster.ts) and a client
// process of `clients` TetherClients with the client's default settings, spread over the
// instances by HAProxy. One instance at a time is asked which clients it has, then killed with
// SIGKILL, and for each of those clients we take (wall clock, every process on this machine) the
// time from the kill until it noticed (its state went to `reconnecting`) and until it was
// welcomed on another instance with its session resumed; the instance is then started again.
//
// This file is also the client process's entry (forked with its settings as JSON).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lib/common.js';
import { startCluster } from '../systems/tether-cluster.js';

interface ClientTimes {
  /** Wall-clock times of every WELCOME. */
  welcomes: number[];
  /** Times the client found its connection gone. */
  drops: number[];
  /** Sessions the client had to open anew (lost by the cluster). */
  lost: number;
}

type FleetMessage = { type: 'connected' } | { type: 'times'; times: Record<string, ClientTimes> };

/** What the cell reports. */
export interface ResumeFigures {
  kills: number;
  /** Clients moved, over every kill (a client moved twice counts twice). */
  moved: number;
  /** Per moved client: kill → welcomed elsewhere, kill → noticed, noticed → welcomed (ms). */
  resumeMs: number[];
  detectMs: number[];
  afterDetectMs: number[];
  /** Moved clients not welcomed back within 15 s. */
  notBack: number;
  sessionsLost: number;
}

async function fleet(port: number, count: number): Promise<void> {
  const { TetherClient } = await import('@tether/client');
  const times: Record<string, ClientTimes> = {};
  const clients = Array.from({ length: count }, (_, i) => {
    const clientId = `resume-${i}`;
    const record: ClientTimes = { welcomes: [], drops: [], lost: 0 };
    times[clientId] = record;
    const client = new TetherClient({ host: '127.0.0.1', port, clientId });
    client.on('session', (info) => {
      record.welcomes.push(Date.now());
      if (info.lost) record.lost++;
    });
    client.on('state', (change) => {
      if (change.state === 'reconnecting') record.drops.push(Date.now());
    });
    client.on('error', () => {});
    return client;
  });
  for (let i = 0; i < clients.length; i += 64) {
    await Promise.all(clients.slice(i, i + 64).map((c) => c.connect()));
  }
  process.send?.({ type: 'connected' } satisfies FleetMessage);
  process.on('disconnect', () => process.exit(1));
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'times') process.send?.({ type: 'times', times } satisfies FleetMessage);
    if (m.type === 'stop') {
      await Promise.all(clients.map((c) => c.close()));
      process.exit(0);
    }
  });
}

/** Runs the measurement: `kills` kills, one instance after another, with `clients` connected. */
export async function measureResume(
  clients: number,
  kills: number,
  execArgv: string[],
  log: (text: string) => void,
): Promise<ResumeFigures> {
  const cluster = await startCluster();
  const child = fork(
    fileURLToPath(import.meta.url),
    [JSON.stringify({ port: cluster.port, clients })],
    {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const inbox: FleetMessage[] = [];
  child.on('message', (m: FleetMessage) => inbox.push(m));
  const next = async <T extends FleetMessage['type']>(
    type: T,
  ): Promise<Extract<FleetMessage, { type: T }>> => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0] as Extract<FleetMessage, { type: T }>;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the clients ended before ${type}`);
      await sleep(20);
    }
  };
  const figures: ResumeFigures = {
    kills: 0,
    moved: 0,
    resumeMs: [],
    detectMs: [],
    afterDetectMs: [],
    notBack: 0,
    sessionsLost: 0,
  };
  try {
    await next('connected');
    for (let k = 0; k < kills; k++) {
      const i = k % cluster.instances.length;
      const clientIds = await cluster.peersOf(i);
      await sleep(300);
      const killedAt = Date.now();
      await cluster.kill(i);
      let times: Record<string, ClientTimes> = {};
      const deadline = Date.now() + 15_000;
      for (;;) {
        child.send({ type: 'times' });
        times = (await next('times')).times;
        const back = clientIds.every((id) => (times[id]?.welcomes ?? []).some((t) => t > killedAt));
        if (back || Date.now() > deadline) break;
        await sleep(50);
      }
      for (const id of clientIds) {
        const record = times[id];
        const welcome = record?.welcomes.find((t) => t > killedAt);
        const drop = record?.drops.find((t) => t >= killedAt);
        if (welcome === undefined) {
          figures.notBack++;
          continue;
        }
        figures.resumeMs.push(welcome - killedAt);
        if (drop !== undefined) {
          figures.detectMs.push(drop - killedAt);
          figures.afterDetectMs.push(welcome - drop);
        }
      }
      figures.kills++;
      figures.moved += clientIds.length;
      log(`  kill ${k + 1}: ${clientIds.length} clients moved`);
      await cluster.restart(i);
      await sleep(1000);
    }
    child.send({ type: 'times' });
    const final = (await next('times')).times;
    figures.sessionsLost = Object.values(final).reduce((n, t) => n + t.lost, 0);
    return figures;
  } finally {
    if (child.exitCode === null) {
      child.send({ type: 'stop' });
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      child.kill('SIGKILL');
    }
    await cluster.stop();
  }
}

const settings = process.argv[2]?.startsWith('{')
  ? (JSON.parse(process.argv[2]) as { port: number; clients: number })
  : undefined;
if (settings !== undefined && process.send !== undefined) {
  fleet(settings.port, settings.clients).catch((error: Error) => {
    process.stderr.write(`cluster-resume clients: ${error.stack ?? error}\n`);
    process.exit(1);
  });
}
