// dashboard-cost: what the dashboard costs the server while someone watches it. Tether's server
// with its dashboard off, then on with a live page open (an SSE stream of the default view) and
// /metrics scraped every second; the same two figures each time:
//   - throughput at 128 B (bench/scenarios/throughput.ts: one client, acknowledged sends);
//   - server CPU at rest with 10,000 idle connections (bench/scenarios/idle.ts clients).
// Off and on alternate (off, on, on, off, ...) so drift in the machine's load hits both alike.
//
//   pnpm bench:dashboard [--quick] [--source] [--connections N]
//
// Self-contained: it forks its own server and client processes (this file, by role) and prints a
// markdown table. The target: both figures change by at most 2%.
import { type ChildProcess, execSync, fork } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuOf, median, type Row, sleep, type WorkerArgs } from '../lib/common.js';
import { makeHandler } from '../systems/types.js';

const self = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);

interface Role {
  role: 'server' | 'throughput-client' | 'idle-client';
  dashboard?: boolean;
  port?: number;
  quick?: boolean;
  connections?: number;
}

type Message =
  | { type: 'ready'; port: number; dashboardPort: number | undefined }
  | { type: 'cpu'; cpuUs: number }
  | { type: 'rows'; rows: Row[] }
  | { type: 'progress'; connections: number; setupMs: number };

// --- server process: Tether's server as the bench runs it, the dashboard on or off ---
async function serverRole(role: Role): Promise<void> {
  // Loaded in the worker only: the runner needs no Tether package (nor a build, with --source).
  const { TetherServer } = await import('@tether/server');
  const handler = makeHandler('sink');
  const server = new TetherServer({
    port: 0,
    maxConnections: 20_000,
    maxConnectionsPerAddress: 20_000,
    maxFrame: 2 * 1024 * 1024,
    ...(role.dashboard ? { dashboard: { port: 0 } } : {}),
  });
  server.on('message', (m, peer) => handler(m.data, (d) => void peer.send(d).catch(() => {})));
  server.on('error', () => {});
  const { port } = await server.listen();
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'cpu') process.send?.({ type: 'cpu', cpuUs: await cpuOf(process.pid) });
    if (m.type === 'stop') {
      await Promise.race([server.close({ drainTimeoutMs: 0 }), sleep(2000)]);
      process.exit(0);
    }
  });
  process.send?.({ type: 'ready', port, dashboardPort: server.dashboardAddress?.port });
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

async function idleRole(role: Role): Promise<void> {
  await (await import('./idle.js')).idleClient({
    role: 'client',
    system: 'tether',
    scenario: 'idle-connections',
    port: role.port as number,
    quick: role.quick ?? false,
    smoke: false,
    params: { connections: role.connections },
  });
  process.exit(0);
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
        if (child.exitCode !== null || Date.now() > deadline) {
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

/** A person watching: the live page's stream, read and dropped; /metrics every second. */
function watch(dashboardPort: number): () => void {
  const base = `http://127.0.0.1:${dashboardPort}`;
  const controller = new AbortController();
  void (async () => {
    const response = await fetch(`${base}/events`, { signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    for (;;) if ((await reader.read()).done) return;
  })().catch(() => {});
  const scrape = setInterval(() => {
    fetch(`${base}/metrics`, { signal: controller.signal })
      .then((r) => r.text())
      .catch(() => {});
  }, 1000);
  return () => {
    clearInterval(scrape);
    controller.abort();
  };
}

async function withServer<T>(
  dashboard: boolean,
  body: (port: number, serverPid: number, cpu: () => Promise<number>) => Promise<T>,
): Promise<T> {
  const server = spawn({ role: 'server', dashboard });
  const ready = (await server.next('ready')) as Extract<Message, { type: 'ready' }>;
  const stop = dashboard ? watch(ready.dashboardPort as number) : () => {};
  const cpu = async () => {
    server.child.send({ type: 'cpu' });
    return ((await server.next('cpu')) as Extract<Message, { type: 'cpu' }>).cpuUs;
  };
  try {
    return await body(ready.port, server.child.pid as number, cpu);
  } finally {
    stop();
    server.child.send({ type: 'stop' });
    await Promise.race([new Promise((r) => server.child.once('exit', r)), sleep(3000)]);
    server.child.kill('SIGKILL');
  }
}

async function throughputOnce(dashboard: boolean, quick: boolean): Promise<number> {
  return withServer(dashboard, async (port) => {
    const client = spawn({ role: 'throughput-client', port, quick });
    const { rows } = (await client.next('rows')) as Extract<Message, { type: 'rows' }>;
    return rows[0]?.msgsPerSec as number;
  });
}

async function idleOnce(dashboard: boolean, connections: number, restMs: number): Promise<number> {
  return withServer(dashboard, async (port, _pid, cpu) => {
    const client = spawn({ role: 'idle-client', port, connections });
    await client.next('progress');
    await sleep(3000);
    const before = await cpu();
    await sleep(restMs);
    const after = await cpu();
    client.child.send({ type: 'stop' });
    await Promise.race([new Promise((r) => client.child.once('exit', r)), sleep(5000)]);
    client.child.kill('SIGKILL');
    return ((after - before) / 1000 / restMs) * 100;
  });
}

async function runner(): Promise<void> {
  const quick = argv.includes('--quick');
  const at = argv.indexOf('--connections');
  const limit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
  const connections = at >= 0 ? Number(argv[at + 1]) : limit > 10_500 ? 10_000 : 1000;
  const restMs = quick ? 5000 : 15_000;
  const order = quick ? [false, true] : [false, true, true, false, false, true];
  const log = (text: string) => process.stderr.write(`${text}\n`);
  const throughput: Record<'off' | 'on', number[]> = { off: [], on: [] };
  const idle: Record<'off' | 'on', number[]> = { off: [], on: [] };
  for (const on of order) {
    const key = on ? 'on' : 'off';
    throughput[key].push(await throughputOnce(on, quick));
    log(
      `throughput 128 B, dashboard ${key}: ${Math.round(throughput[key].at(-1) as number)} msg/s`,
    );
  }
  for (const on of order.slice(0, quick ? 2 : 4)) {
    const key = on ? 'on' : 'off';
    idle[key].push(await idleOnce(on, connections, restMs));
    log(
      `idle CPU at ${connections}, dashboard ${key}: ${(idle[key].at(-1) as number).toFixed(2)} %`,
    );
  }
  const change = (off: number, on: number) => `${(((on - off) / off) * 100).toFixed(1)}%`;
  const t = { off: median(throughput.off), on: median(throughput.on) };
  const c = { off: median(idle.off), on: median(idle.on) };
  process.stdout.write(
    [
      `dashboard-cost (${quick ? 'quick' : 'full'}), ${cpus()[0]?.model ?? 'unknown'} x ${cpus().length}, Node ${process.version}`,
      '',
      '| figure | dashboard off | on (page open, /metrics every 1 s) | change |',
      '| --- | --- | --- | --- |',
      `| throughput 128 B, msg/s (median of ${throughput.on.length}) | ${Math.round(t.off)} | ${Math.round(t.on)} | ${change(t.off, t.on)} |`,
      `| server CPU at rest, ${connections} connections, % of a core (median of ${idle.on.length}, ${restMs / 1000} s each) | ${c.off.toFixed(2)} | ${c.on.toFixed(2)} | ${change(c.off, c.on)} |`,
      '',
      `runs: throughput off ${throughput.off.map(Math.round).join(', ')}; on ${throughput.on.map(Math.round).join(', ')}; idle CPU off ${idle.off.map((v) => v.toFixed(2)).join(', ')}; on ${idle.on.map((v) => v.toFixed(2)).join(', ')}`,
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
        : idleRole(role);
main.catch((error: unknown) => {
  process.stderr.write(
    `dashboard-cost ${role?.role ?? 'runner'}: ${(error as Error).stack ?? error}\n`,
  );
  process.exit(1);
});
