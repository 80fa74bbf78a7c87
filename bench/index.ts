// `pnpm bench [--quick] [--smoke] [--out DIR] [--systems a,b] [--scenarios x,y] [--profile]`
// Tether side by side with raw sockets and peer systems. Every cell runs its server and its client
// in separate processes (bench/worker.ts); the results go to stdout (markdown) and to
// DIR/latest.md and DIR/latest.json (default bench/results). Schema: bench/README.md.
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  median,
  type Row,
  SCENARIOS,
  type ScenarioName,
  SYSTEMS,
  type SystemName,
  sleep,
  type WorkerArgs,
  type WorkerMessage,
} from './lib/common.js';
import { renderMarkdown } from './lib/report.js';
import { sha256File } from './scenarios/file.js';
import { NATS_SERVER } from './systems/nats.js';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const smoke = flag('--smoke');
const quick = smoke || flag('--quick');
const profile = flag('--profile');
// Tether runs as installed: its built packages (dist/, compiled by tsc). `--source` runs its
// TypeScript through tsx instead (no build needed), which measures tsx as well: esbuild's
// keepNames gives every named closure slow, larger properties.
const fromSource = flag('--source');
const outDir = option('--out') ?? join(here, 'results');
const natsAvailable = existsSync(NATS_SERVER);
let systems: SystemName[] = option('--systems')
  ? (option('--systems')?.split(',') as SystemName[])
  : smoke
    ? ['tether', 'raw-net']
    : [...SYSTEMS];
const scenarios: ScenarioName[] = option('--scenarios')
  ? (option('--scenarios')?.split(',') as ScenarioName[])
  : smoke
    ? ['throughput']
    : [...SCENARIOS];
const sizes = option('--sizes')?.split(',').map(Number);
const notes: string[] = [];
if (fromSource) {
  notes.push(
    'Tether ran from its TypeScript sources through tsx (--source), not from its built packages: slower than as installed.',
  );
}
if (!natsAvailable && systems.includes('nats')) {
  notes.push(`nats-server is not installed (${NATS_SERVER}): the nats system was skipped.`);
  systems = systems.filter((s) => s !== 'nats');
}

const work = mkdtempSync(join(tmpdir(), 'tether-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// A throwaway certificate for tether-tls, made at run time.
let tls: { cert: string; key: string } | undefined;
if (systems.includes('tether-tls')) {
  const key = join(work, 'key.pem');
  const cert = join(work, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  tls = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

const log = (text: string) => process.stderr.write(`${text}\n`);

interface Worker {
  child: ChildProcess;
  next(type: WorkerMessage['type'], timeoutMs: number): Promise<WorkerMessage>;
  post(message: object): void;
  kill(): void;
}

function spawnWorker(args: WorkerArgs): Worker {
  const execArgv = [
    '--import',
    'tsx',
    ...(fromSource ? ['--conditions=@tether/source'] : []),
    '--expose-gc',
  ];
  if (profile) {
    const dir = join(outDir, 'profiles');
    mkdirSync(dir, { recursive: true });
    // One file per thread (CPU.<date>.<pid>.<tid>.cpuprofile): tsx's loader thread has its own.
    execArgv.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      join(dir, `${args.system}-${args.scenario}-${args.role}`),
    );
  }
  const child = fork(join(here, 'worker.ts'), [JSON.stringify(args)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: WorkerMessage[] = [];
  let waiter: (() => void) | undefined;
  let exited = false;
  child.on('message', (m: WorkerMessage) => {
    if (m.type === 'log') log(m.text);
    inbox.push(m);
    waiter?.();
  });
  child.on('exit', () => {
    exited = true;
    waiter?.();
  });
  return {
    child,
    async next(type, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0] as WorkerMessage;
        if (exited) throw new Error(`${args.role} ${args.system}/${args.scenario} exited`);
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `${args.role} ${args.system}/${args.scenario}: timed out waiting for ${type}`,
          );
        await new Promise<void>((resolve) => {
          waiter = resolve;
          setTimeout(resolve, Math.min(left, 1000));
        });
        waiter = undefined;
      }
    },
    post(message) {
      if (!exited) child.send(message);
    },
    kill() {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

const base = (system: SystemName, scenario: ScenarioName) => ({
  system,
  scenario,
  quick,
  smoke,
  ...(system === 'tether-tls' && tls ? { tls } : {}),
});

async function startServer(
  system: SystemName,
  scenario: ScenarioName,
  extra: Partial<WorkerArgs> = {},
) {
  const server = spawnWorker({ ...base(system, scenario), role: 'server', ...extra });
  const ready = (await server.next('ready', 30_000)) as Extract<WorkerMessage, { type: 'ready' }>;
  return { server, port: ready.port };
}

async function stopServer(server: Worker): Promise<void> {
  server.post({ type: 'stop' });
  await Promise.race([
    new Promise((r) => server.child.once('exit', r)),
    sleep(profile ? 4000 : 1000),
  ]);
  server.kill();
}

function failedRow(system: string, scenario: string, error: unknown): Row {
  const text = String((error as Error)?.message ?? error).split('\n')[0] as string;
  log(`  ${system}/${scenario} failed: ${text}`);
  return {
    system,
    scenario,
    payloadBytes: 0,
    msgsPerSec: null,
    mbPerSec: null,
    p50Us: null,
    p99Us: null,
    p999Us: null,
    runs: 0,
    note: `failed: ${text}`,
  };
}

/** A server worker plus a client worker; the client's rows are the cell's result. */
async function pair(
  system: SystemName,
  scenario: ScenarioName,
  mode: 'sink' | 'echo',
  timeoutMs: number,
  params?: Record<string, unknown>,
  uploadDir?: string,
): Promise<Row[]> {
  let server: Worker | undefined;
  let client: Worker | undefined;
  try {
    const started = await startServer(system, scenario, {
      mode,
      ...(uploadDir ? { uploadDir } : {}),
    });
    server = started.server;
    client = spawnWorker({
      ...base(system, scenario),
      role: 'client',
      port: started.port,
      ...(params ? { params } : {}),
      ...(uploadDir ? { uploadDir } : {}),
    });
    const result = (await client.next('result', timeoutMs)) as Extract<
      WorkerMessage,
      { type: 'result' }
    >;
    return result.rows;
  } catch (error) {
    return [failedRow(system, scenario, error)];
  } finally {
    if (client)
      await Promise.race([new Promise((r) => client?.child.once('exit', r)), sleep(2000)]);
    client?.kill();
    if (server) await stopServer(server);
  }
}

async function idle(system: SystemName, connections: number): Promise<Row> {
  let server: Worker | undefined;
  let client: Worker | undefined;
  const settleMs = quick ? 500 : 3000;
  const restMs = quick ? 2000 : 12_000;
  try {
    const started = await startServer(system, 'idle-connections', { mode: 'sink' });
    server = started.server;
    await sleep(300);
    server.post({ type: 'sample' });
    const before = (await server.next('sample', 10_000)) as Extract<
      WorkerMessage,
      { type: 'sample' }
    >;
    client = spawnWorker({
      ...base(system, 'idle-connections'),
      role: 'client',
      port: started.port,
      params: { connections },
    });
    const connected = (await client.next('progress', 180_000)) as unknown as {
      setupMs: number;
      connections: number;
    };
    await sleep(settleMs);
    server.post({ type: 'sample' });
    const after = (await server.next('sample', 10_000)) as Extract<
      WorkerMessage,
      { type: 'sample' }
    >;
    await sleep(restMs);
    server.post({ type: 'sample' });
    const rest = (await server.next('sample', 10_000)) as Extract<
      WorkerMessage,
      { type: 'sample' }
    >;
    client.post({ type: 'stop' });
    const n = connected.connections;
    return {
      system,
      scenario: 'idle-connections',
      payloadBytes: 0,
      msgsPerSec: null,
      mbPerSec: null,
      p50Us: null,
      p99Us: null,
      p999Us: null,
      runs: 1,
      extra: {
        connections: n,
        rssPerConnectionBytes: Math.round((after.rssBytes - before.rssBytes) / n),
        heapPerConnectionBytes: after.heapUsedBytes
          ? Math.round((after.heapUsedBytes - before.heapUsedBytes) / n)
          : null,
        cpuAtRestPercent: ((rest.cpuUs - after.cpuUs) / 1000 / restMs) * 100,
        restSeconds: restMs / 1000,
        setupPerSec: Math.round(n / (connected.setupMs / 1000)),
      },
    };
  } catch (error) {
    return failedRow(system, 'idle-connections', error);
  } finally {
    client?.post({ type: 'stop' });
    await sleep(200);
    client?.kill();
    if (server) await stopServer(server);
  }
}

const rows: Row[] = [];
const background: Promise<Row[]>[] = [];
const started = performance.now();
for (const scenario of scenarios) {
  log(`# ${scenario}`);
  const t = performance.now();
  if (scenario === 'throughput' || scenario === 'rtt') {
    // With both selected, rtt runs in the throughput cell's processes (after it, in echo mode).
    const both = scenarios.includes('throughput') && scenarios.includes('rtt');
    if (scenario === 'rtt' && both) continue;
    for (const system of systems) {
      log(`  ${system}`);
      const params: Record<string, unknown> = { ...(sizes ? { sizes } : {}), thenRtt: both };
      rows.push(
        ...(await pair(
          system,
          scenario,
          scenario === 'rtt' ? 'echo' : 'sink',
          quick ? 120_000 : 400_000,
          params,
        )),
      );
    }
  } else if (scenario === 'file') {
    const size = smoke ? 16 * 1024 * 1024 : quick ? 32 * 1024 * 1024 : 256 * 1024 * 1024;
    const path = join(work, 'source.bin');
    const chunk = randomBytes(1024 * 1024);
    writeFileSync(
      path,
      Buffer.concat(
        Array.from({ length: size / chunk.length }, (_, i) => {
          chunk[0] = i & 0xff;
          return Buffer.from(chunk);
        }),
      ),
    );
    const sha256 = await sha256File(path);
    for (const system of systems.filter(
      (s) => s === 'tether' || s === 'tether-tls' || s === 'raw-net',
    )) {
      log(`  ${system}`);
      const uploadDir = mkdtempSync(join(work, `up-${system}-`));
      rows.push(
        ...(await pair(system, 'file', 'sink', 300_000, { path, size, sha256 }, uploadDir)),
      );
      rmSync(uploadDir, { recursive: true, force: true });
    }
    rmSync(path, { force: true });
  } else if (scenario === 'recovery') {
    // All systems at once: the scenario is mostly waiting for each system's own timers. When
    // idle-connections follows, it runs alongside (both are mostly at rest).
    const capMs = quick ? 16_000 : 100_000;
    const healCapMs = quick ? 12_000 : 20_000;
    notes.push(
      `recovery: one run per system (detection capped at ${capMs / 1000} s, first delivery at ${healCapMs / 1000} s); systems ran concurrently${scenarios.includes('idle-connections') ? ', alongside idle-connections' : ''}.`,
    );
    log(`  ${systems.join(', ')} (concurrently, cap ${capMs / 1000} s)`);
    const all = Promise.all(
      systems.map((system) =>
        pair(system, 'recovery', 'echo', capMs + healCapMs + 60_000, { capMs, healCapMs }),
      ),
    ).then((r) => r.flat());
    if (scenarios.includes('idle-connections')) {
      background.push(all);
      // Let the recovery workers start (16 processes compiling at once) before idle measures.
      await sleep(quick ? 7000 : 10_000);
    } else rows.push(...(await all));
  } else if (scenario === 'idle-connections') {
    const { execSync } = await import('node:child_process');
    const limit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
    const counts = smoke ? [200] : limit >= 10_500 ? [1000, 10_000] : [1000];
    if (!counts.includes(10_000) && !smoke)
      notes.push(
        `idle-connections: ulimit -n is ${limit}; 10,000 connections need > 10,500, ran 1,000 only.`,
      );
    const idleSystems = systems.filter((s) => s !== 'mqtt-qos1' && s !== 'tether-tls');
    if (quick && !smoke)
      notes.push(
        'idle-connections (--quick): tether and raw-net at 1,000, tether at 10,000; the full run does every system at both counts.',
      );
    for (const n of counts) {
      // --quick keeps to the cells the targets name (10,000 full clients of some peers in one
      // process take minutes).
      const these = quick
        ? idleSystems.filter((s) => s === 'tether' || (n <= 1000 && s === 'raw-net'))
        : idleSystems;
      for (const system of these) {
        const t0 = performance.now();
        rows.push(await idle(system, n));
        log(`  ${system} x ${n} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
    }
  }
  log(`  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
}
for (const more of await Promise.all(background)) rows.push(...more);

function version(pkg: string): string {
  try {
    return (
      JSON.parse(readFileSync(join(here, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'n/a';
  }
}
let natsVersion = 'not installed';
try {
  natsVersion = execFileSync(NATS_SERVER, ['--version']).toString().trim();
} catch {}
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryBytes: totalmem(),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  versions: {
    tether: (
      JSON.parse(readFileSync(join(here, '..', 'packages', 'client', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version,
    ws: version('ws'),
    'socket.io': version('socket.io'),
    'socket.io-client': version('socket.io-client'),
    mqtt: version('mqtt'),
    aedes: version('aedes'),
    nats: version('nats'),
    'nats-server': natsVersion,
    'hdr-histogram-js': version('hdr-histogram-js'),
  },
};
const result = {
  schema: 'tether-bench/1',
  date: new Date().toISOString(),
  mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
  tetherFrom: fromSource ? 'source' : 'dist',
  durationSeconds: Math.round((performance.now() - started) / 1000),
  machine,
  notes,
  rows,
};
const markdown = renderMarkdown(result);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(outDir, 'latest.md'), markdown);
process.stdout.write(markdown);
void median;
process.exit(0);
