// cluster: what sessions in Redis cost, and how fast clients move when an instance dies.
//   - throughput at 128 B (bench/scenarios/throughput.ts: one client, every send acknowledged by
//     the server application): through HAProxy to 3 instances on the Redis store (Debian's
//     redis-server, AOF with appendfsync always), against one instance on the memory store.
//     Memory and Redis runs alternate (memory, redis, redis, memory, ...) so drift in the
//     machine's load hits both alike; medians.
//   - resume after kill -9: `--clients` clients (default defaults: backoff, heartbeat) spread over
//     the 3 instances by HAProxy; one instance at a time is killed with SIGKILL (and started
//     again); for each client it had, the time from the kill until the client is welcomed back
//     on another instance (its session resumed, not a new one), and until it noticed (detection).
//
//   pnpm bench:cluster [--quick] [--source] [--clients N] [--kills N]
//
// Self-contained: it forks its own processes (this file, by role) and prints a markdown table.
// Targets: Redis throughput >= 0.5x memory; resume within detection + 1 s at p99.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, HAProxy, RedisServer } from '@tether/cluster';
import { median, type Row, sleep, type WorkerArgs } from '../lib/common.js';
import { makeHandler } from '../systems/types.js';

const self = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);

interface Role {
  role: 'server' | 'throughput-client' | 'resume-clients';
  /** Server on the Redis store at this URL (memory store without). */
  redisUrl?: string;
  port?: number;
  dashboardPort?: number;
  quick?: boolean;
  clients?: number;
}

type Message =
  | { type: 'ready'; port: number }
  | { type: 'rows'; rows: Row[] }
  | { type: 'peers'; clientIds: string[] }
  | { type: 'connected'; count: number }
  | { type: 'times'; times: Record<string, { welcomes: number[]; lost: number; drops: number[] }> };

// --- server process: Tether's server as the bench runs it, on the memory or the Redis store ---
async function serverRole(role: Role): Promise<void> {
  const { TetherServer } = await import('@tether/server');
  const handler = makeHandler('sink');
  const server = new TetherServer({
    port: role.port ?? 0,
    maxConnections: 20_000,
    maxConnectionsPerAddress: 20_000,
    maxFrame: 2 * 1024 * 1024,
    ...(role.dashboardPort === undefined ? {} : { dashboard: { port: role.dashboardPort } }),
    ...(role.redisUrl === undefined ? {} : { redis: { url: role.redisUrl } }),
  });
  server.on('message', (m, peer) => handler(m.data, (d) => void peer.send(d).catch(() => {})));
  server.on('error', () => {});
  const { port } = await server.listen();
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'peers') {
      process.send?.({
        type: 'peers',
        clientIds: server.peers.filter((p) => p.connected).map((p) => p.clientId),
      });
    }
    if (m.type === 'stop') {
      await Promise.race([server.close({ drainTimeoutMs: 0 }), sleep(3000)]);
      process.exit(0);
    }
  });
  process.send?.({ type: 'ready', port });
}

async function throughputRole(role: Role): Promise<void> {
  const { system } = await import('../systems/index.js');
  const client = await (await system('tether')).connect({ port: role.port as number });
  const args: WorkerArgs = {
    role: 'client',
    system: 'tether',
    scenario: 'throughput',
    quick: role.quick ?? false,
    smoke: false,
    params: { sizes: [128] },
  };
  const rows = await (await import('./throughput.js')).throughputClient(client, args);
  process.send?.({ type: 'rows', rows });
  await client.close();
  setTimeout(() => process.exit(0), 100);
}

// Clients with the client's defaults, through HAProxy; each remembers when it was welcomed
// (wall clock, comparable with the runner's kill times) and when it found its link gone.
async function resumeRole(role: Role): Promise<void> {
  const { TetherClient } = await import('@tether/client');
  const count = role.clients ?? 300;
  const times: Record<string, { welcomes: number[]; lost: number; drops: number[] }> = {};
  const clients = Array.from({ length: count }, (_, i) => {
    const clientId = `resume-${i}`;
    const record = { welcomes: [] as number[], lost: 0, drops: [] as number[] };
    times[clientId] = record;
    const client = new TetherClient({ port: role.port as number, clientId });
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
  process.send?.({ type: 'connected', count });
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'times') process.send?.({ type: 'times', times });
    if (m.type === 'stop') {
      await Promise.all(clients.map((c) => c.close()));
      process.exit(0);
    }
  });
}

// --- runner ---
function spawn(role: Role): {
  child: ChildProcess;
  next: (type: Message['type']) => Promise<Message>;
} {
  const execArgv = [
    '--import',
    'tsx',
    ...(argv.includes('--source') ? ['--conditions=@tether/source'] : []),
  ];
  const child = fork(self, [JSON.stringify(role)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: Message[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: Message) => {
    inbox.push(m);
    wake?.();
  });
  child.on('exit', () => wake?.());
  return {
    child,
    async next(type) {
      const deadline = Date.now() + 300_000;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0] as Message;
        if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
          throw new Error(`${role.role} ended before ${type}`);
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 500);
        });
      }
    },
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.send({ type: 'stop' });
  await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
  child.kill('SIGKILL');
}

interface Cluster {
  port: number;
  instances: {
    child: ChildProcess;
    port: number;
    dashboardPort: number;
    next: ReturnType<typeof spawn>['next'];
  }[];
  redis: RedisServer;
  haproxy: HAProxy;
  dir: string;
}

async function startInstance(
  redisUrl: string | undefined,
  port: number,
  dashboardPort: number,
): Promise<Cluster['instances'][number]> {
  const spawned = spawn({
    role: 'server',
    port,
    dashboardPort,
    ...(redisUrl === undefined ? {} : { redisUrl }),
  });
  await spawned.next('ready');
  return { child: spawned.child, port, dashboardPort, next: spawned.next };
}

// Redis (when `onRedis`), `count` instances and HAProxy in front.
async function startCluster(onRedis = true, count = 3): Promise<Cluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tether-bench-cluster-'));
  const redis = new RedisServer({ dir: path.join(dir, 'redis') });
  await redis.start();
  const instances: Cluster['instances'] = [];
  for (let i = 0; i < count; i++) {
    instances.push(
      await startInstance(onRedis ? redis.url : undefined, await freePort(), await freePort()),
    );
  }
  const haproxy = new HAProxy({
    configPath: path.join(dir, 'haproxy.cfg'),
    backends: instances.map((instance, i) => ({
      name: `i${i}`,
      port: instance.port,
      dashboardPort: instance.dashboardPort,
    })),
  });
  await haproxy.start();
  return { port: haproxy.port, instances, redis, haproxy, dir };
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.instances.map((instance) => stop(instance.child)));
  await cluster.haproxy.stop();
  await cluster.redis.stop(true);
  rmSync(cluster.dir, { recursive: true, force: true });
}

async function throughputOnce(port: number, quick: boolean): Promise<number> {
  const client = spawn({ role: 'throughput-client', port, quick });
  const { rows } = (await client.next('rows')) as Extract<Message, { type: 'rows' }>;
  await Promise.race([new Promise((r) => client.child.once('exit', r)), sleep(3000)]);
  return rows[0]?.msgsPerSec as number;
}

/** Where the cost goes: each of these is measured in the same rounds. */
const VARIANTS = ['memory', 'memory-haproxy', 'redis-direct', 'redis-haproxy'] as const;
type Variant = (typeof VARIANTS)[number];

async function throughputVariant(variant: Variant, quick: boolean): Promise<number> {
  if (variant === 'redis-haproxy') {
    const cluster = await startCluster(true);
    try {
      return await throughputOnce(cluster.port, quick);
    } finally {
      await stopCluster(cluster);
    }
  }
  if (variant === 'memory') {
    const server = spawn({ role: 'server' });
    const { port } = (await server.next('ready')) as Extract<Message, { type: 'ready' }>;
    try {
      return await throughputOnce(port, quick);
    } finally {
      await stop(server.child);
    }
  }
  // One instance: on the memory store behind HAProxy, or on Redis without HAProxy.
  const cluster = await startCluster(variant === 'redis-direct', 1);
  const instance = cluster.instances[0] as Cluster['instances'][number];
  try {
    return await throughputOnce(variant === 'memory-haproxy' ? cluster.port : instance.port, quick);
  } finally {
    await stopCluster(cluster);
  }
}

interface ResumeFigures {
  kills: number;
  clientsMoved: number;
  resumeMs: number[];
  detectMs: number[];
  afterDetectMs: number[];
  lost: number;
}

async function resumeAfterKills(clients: number, kills: number): Promise<ResumeFigures> {
  const cluster = await startCluster();
  const fleet = spawn({ role: 'resume-clients', port: cluster.port, clients });
  const figures: ResumeFigures = {
    kills: 0,
    clientsMoved: 0,
    resumeMs: [],
    detectMs: [],
    afterDetectMs: [],
    lost: 0,
  };
  try {
    await fleet.next('connected');
    for (let k = 0; k < kills; k++) {
      const i = k % cluster.instances.length;
      const instance = cluster.instances[i] as Cluster['instances'][number];
      instance.child.send({ type: 'peers' });
      const { clientIds } = (await instance.next('peers')) as Extract<Message, { type: 'peers' }>;
      await sleep(500);
      const killedAt = Date.now();
      instance.child.kill('SIGKILL');
      await new Promise((r) => instance.child.once('exit', r));
      // Until every client it had is welcomed again (or 15 s).
      let times: Extract<Message, { type: 'times' }>['times'] = {};
      const deadline = Date.now() + 15_000;
      for (;;) {
        fleet.child.send({ type: 'times' });
        times = ((await fleet.next('times')) as Extract<Message, { type: 'times' }>).times;
        const back = clientIds.every((id) => (times[id]?.welcomes ?? []).some((t) => t > killedAt));
        if (back || Date.now() > deadline) break;
        await sleep(100);
      }
      for (const id of clientIds) {
        const record = times[id];
        const welcome = record?.welcomes.find((t) => t > killedAt);
        const drop = record?.drops.find((t) => t >= killedAt);
        if (welcome === undefined) continue;
        figures.resumeMs.push(welcome - killedAt);
        if (drop !== undefined) {
          figures.detectMs.push(drop - killedAt);
          figures.afterDetectMs.push(welcome - drop);
        }
      }
      figures.kills++;
      figures.clientsMoved += clientIds.length;
      cluster.instances[i] = await startInstance(
        cluster.redis.url,
        instance.port,
        instance.dashboardPort,
      );
      await sleep(1000);
    }
    fleet.child.send({ type: 'times' });
    const final = ((await fleet.next('times')) as Extract<Message, { type: 'times' }>).times;
    figures.lost = Object.values(final).reduce((n, t) => n + t.lost, 0);
    return figures;
  } finally {
    await stop(fleet.child);
    await stopCluster(cluster);
  }
}

const VARIANT_NAMES: Record<Variant, string> = {
  memory: 'memory store, 1 instance, direct',
  'memory-haproxy': 'memory store, 1 instance, through HAProxy',
  'redis-direct': 'Redis store, 1 instance, direct',
  'redis-haproxy': 'Redis store, 3 instances through HAProxy',
};

function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

async function runner(): Promise<void> {
  if (!RedisServer.available() || !HAProxy.available()) {
    process.stderr.write(
      'bench:cluster needs redis-server and haproxy (apt-get install -y redis-server haproxy)\n',
    );
    process.exit(2);
  }
  const quick = argv.includes('--quick');
  const arg = (name: string, fallback: number): number => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : fallback;
  };
  const clients = arg('--clients', quick ? 150 : 300);
  const kills = arg('--kills', quick ? 3 : 6);
  const rounds = quick ? 1 : 3;
  const log = (text: string) => process.stderr.write(`${text}\n`);
  const throughput = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<
    Variant,
    number[]
  >;
  for (let round = 0; round < rounds; round++) {
    // Every other round backwards, so drift in the machine's load hits all alike.
    const order = round % 2 === 0 ? [...VARIANTS] : [...VARIANTS].reverse();
    for (const variant of order) {
      throughput[variant].push(await throughputVariant(variant, quick));
      log(
        `throughput 128 B, ${variant}: ${Math.round(throughput[variant].at(-1) as number)} msg/s`,
      );
    }
  }
  const resume = await resumeAfterKills(clients, kills);
  log(`resume: ${resume.kills} kills, ${resume.clientsMoved} clients moved`);
  const t = Object.fromEntries(VARIANTS.map((v) => [v, median(throughput[v])])) as Record<
    Variant,
    number
  >;
  const fmt = (v: number) => (Number.isNaN(v) ? '-' : `${Math.round(v)} ms`);
  process.stdout.write(
    [
      `cluster (${quick ? 'quick' : 'full'}), ${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}, Node ${process.version}, tether from ${argv.includes('--source') ? 'source' : 'dist'}`,
      '',
      `| throughput 128 B, acknowledged msg/s (median of ${rounds}) | msg/s | vs memory store, 1 instance |`,
      '| --- | --- | --- |',
      ...VARIANTS.map(
        (v) => `| ${VARIANT_NAMES[v]} | ${Math.round(t[v])} | ${(t[v] / t.memory).toFixed(2)}x |`,
      ),
      '',
      `| after kill -9 (${resume.kills} kills, ${resume.clientsMoved} clients moved, ${clients} connected) | p50 | p99 | max |`,
      '| --- | --- | --- | --- |',
      `| kill until the client resumed on another instance | ${fmt(percentile(resume.resumeMs, 0.5))} | ${fmt(percentile(resume.resumeMs, 0.99))} | ${fmt(Math.max(...resume.resumeMs))} |`,
      `| kill until the client noticed (detection) | ${fmt(percentile(resume.detectMs, 0.5))} | ${fmt(percentile(resume.detectMs, 0.99))} | ${fmt(Math.max(...resume.detectMs))} |`,
      `| detection until resumed | ${fmt(percentile(resume.afterDetectMs, 0.5))} | ${fmt(percentile(resume.afterDetectMs, 0.99))} | ${fmt(Math.max(...resume.afterDetectMs))} |`,
      '',
      `sessions lost: ${resume.lost}; clients not back within 15 s: ${resume.clientsMoved - resume.resumeMs.length}`,
      `runs: ${VARIANTS.map((v) => `${v} ${throughput[v].map(Math.round).join(', ')}`).join('; ')}`,
      '',
    ].join('\n'),
  );
}

const role = argv[0]?.startsWith('{') ? (JSON.parse(argv[0]) as Role) : undefined;
const main =
  role === undefined
    ? runner()
    : role.role === 'server'
      ? serverRole(role)
      : role.role === 'throughput-client'
        ? throughputRole(role)
        : resumeRole(role);
main.catch((error: unknown) => {
  process.stderr.write(`cluster ${role?.role ?? 'runner'}: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
