import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChaosProxy } from '@tether/chaos';
import {
  ClientState,
  ErrorCode,
  TetherClient,
  type TetherError,
  type TransferProgress,
  type TransferResult,
} from '@tether/client';
import { TetherServer } from '@tether/server';
import { ExitCode, flag, integer, parse, UsageError } from './args.js';
import { makePng } from './png.js';
import {
  clock,
  createOutput,
  formatBytes,
  formatMs,
  type Output,
  progressBar,
  table,
} from './term.js';

export const DEMO_HELP = `Usage: tether demo [options]   (or: pnpm demo)

Runs the whole stack in one process on embedded defaults: a server on a free port with a
temporary upload directory, the chaos proxy in front of it, and a client that sends thousands of
messages and a few files (one a PNG image made at run time) while the proxy cuts the link: a
black hole, a reset, a slicer, a byte limit that cuts frames in half, a half-open link, and the
proxy going down. It shows states, heartbeats and RTT, reconnects and progress as they happen,
then verifies: every message delivered exactly once and in order, files identical by SHA-256,
dead links detected quickly, the client connected at the end. Exit code 0 only if every check
holds. About 20 seconds.

Options:
  -m, --messages <n>   messages to send (default 5000)
  --seed <n>           chaos proxy seed (default 20251122)
  -h, --help           this help`;

const OPTIONS = {
  messages: { type: 'string', short: 'm' },
  seed: { type: 'string' },
} as const;

// Short heartbeats so black holes are found within about a second.
const PING_INTERVAL_MS = 200;
const DEAD_AFTER_MS = 1000;
// A dead link must be detected within this long of the fault (dead-after plus slack).
const DETECTION_LIMIT_MS = 2500;
// Messages are spread over this long, so they run through every fault.
const SEND_SPAN_MS = 12_000;
const SEND_TICK_MS = 50;
// After the faults, what is still in flight must land within this long...
const SETTLE_TIMEOUT_MS = 15_000;
// ...and the whole run stays under this budget, whatever the machine's load.
const BUDGET_MS = 45_000;
// Each cleanup step (close client, proxy, server) gets this long.
const CLEANUP_STEP_MS = 3000;

/** Waits for `promise`, at most `ms`, leaving no timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

interface FileState {
  name: string;
  path: string;
  size: number;
  sha256: string;
  progress: TransferProgress | undefined;
  result: TransferResult | undefined;
  error: TetherError | undefined;
  stored: { path: string; sha256: string } | undefined;
  /** Link drops while this file was part-way through. */
  cuts: number;
}

interface Check {
  name: string;
  detail: string;
  ok: boolean;
}

/** `tether demo` / `pnpm demo`: resolves with the exit code. */
export async function demo(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('demo', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(DEMO_HELP);
    return ExitCode.OK;
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`demo: unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  }
  const total = integer(parsed, 'messages', 5000);
  const seed = integer(parsed, 'seed', 20_251_122, 0);
  if (seed > 0xffffffff) throw new UsageError('demo: --seed must be a 32-bit unsigned integer');

  const start = performance.now();
  const log = (text: string): void => out.line(`${clock(start)} ${text}`);
  const dir = await mkdtemp(join(tmpdir(), 'tether-demo-'));
  const cleanup: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    // --- the files: an image made now, random bytes, text -------------------------------------
    const sources: [string, Buffer][] = [
      ['pixels.png', makePng(640, 480, seed)],
      ['random.bin', randomBytes(3 * 1024 * 1024)],
      [
        'notes.txt',
        Buffer.from(
          Array.from({ length: 4000 }, (_, i) => `line ${i}: the quick brown fox jumps\n`).join(''),
        ),
      ],
    ];
    const files: FileState[] = [];
    for (const [name, data] of sources) {
      const path = join(dir, name);
      await writeFile(path, data);
      files.push({
        name,
        path,
        size: data.length,
        sha256: sha256(data),
        progress: undefined,
        result: undefined,
        error: undefined,
        stored: undefined,
        cuts: 0,
      });
    }

    // --- server ---------------------------------------------------------------------------------
    const received: number[] = [];
    const server = new TetherServer({
      port: 0,
      uploadDir: join(dir, 'uploads'),
      pingIntervalMs: PING_INTERVAL_MS,
      evictAfterMs: DEAD_AFTER_MS,
      onRequest: (payload) => payload,
    });
    cleanup.unshift(() => server.close({ drainTimeoutMs: 200 }));
    server.on('message', (message) => {
      received.push(Number(message.text().slice(4)));
    });
    server.on('evict', (_peer, info) =>
      log(`server: evicted peer, silent ${formatMs(info.silentMs)}`),
    );
    server.on('connection', (_peer, info) =>
      log(`server: peer connected${info.resumed ? ', session resumed' : ''}`),
    );
    server.on('file', (file) => {
      const state = files.find((f) => f.name === file.name);
      if (state !== undefined) state.stored = { path: file.path, sha256: file.sha256 };
      log(`server: stored ${file.name} (${formatBytes(file.size)}) sha256 ${file.sha256}`);
    });
    const address = await server.listen();

    // --- chaos proxy ----------------------------------------------------------------------------
    const proxy = new ChaosProxy({
      target: { port: address.port },
      seed,
      highWaterMark: 64 * 1024,
    });
    cleanup.unshift(() => proxy.stop());
    await proxy.start();
    log(
      `server on 127.0.0.1:${address.port}, chaos proxy on 127.0.0.1:${proxy.port} (seed ${proxy.seed})`,
    );
    log(`uploads go to ${join(dir, 'uploads')}`);

    // --- client ---------------------------------------------------------------------------------
    const client = new TetherClient({
      port: proxy.port,
      clientId: 'demo',
      pingIntervalMs: PING_INTERVAL_MS,
      deadAfterMs: DEAD_AFTER_MS,
      connectTimeoutMs: 1000,
      healthyAfterMs: 500,
      backoff: { minDelayMs: 50, maxDelayMs: 500 },
      maxQueuedMessages: total + 100,
    });
    cleanup.unshift(() => client.close());
    let faultStart: number | undefined;
    let faultName = '';
    const detections: { fault: string; ms: number }[] = [];
    let rtt = client.stats().rtt;
    let heartbeats = 0;
    client.on('heartbeat', (stats) => {
      rtt = stats;
      heartbeats++;
    });
    client.on('state', (change) => {
      const code = change.error?.code;
      log(
        `client: ${change.previous} -> ${change.state}: ${change.reason}${code ? ` [${code}]` : ''}`,
      );
      if (change.state === ClientState.RECONNECTING) {
        for (const f of files) {
          const committed = f.progress?.bytesCommitted ?? 0;
          if (f.result === undefined && committed > 0 && committed < f.size) f.cuts++;
        }
      }
      if (
        change.state === ClientState.RECONNECTING &&
        code === ErrorCode.HEARTBEAT_TIMEOUT &&
        faultStart !== undefined
      ) {
        const ms = performance.now() - faultStart;
        detections.push({ fault: faultName, ms });
        faultStart = undefined;
        log(`client: dead link (${faultName}) detected ${formatMs(ms)} after the fault`);
      }
    });
    client.on('reconnecting', (info) =>
      log(`client: reconnect attempt ${info.attempt} in ${formatMs(info.delayMs)}`),
    );
    client.on('session', (info) => {
      if (info.resumed) log(`client: session resumed, ${info.resent} messages re-sent`);
    });

    // --- status: a live region on a terminal, a line a second otherwise -------------------------
    let acked = 0;
    let sent = 0;
    let failedSends = 0;
    const status = (): string =>
      `state ${client.state}  rtt last ${formatMs(rtt?.last)} srtt ${formatMs(rtt?.srtt)} (${heartbeats} heartbeats)  sent ${sent}  acked ${acked}  delivered ${received.length}/${total}  reconnects ${client.stats().reconnects}`;
    const bars = (): string[] =>
      files.map((f) => {
        const p = f.progress;
        const state = f.result ? 'verified' : f.error ? `failed ${f.error.code}` : undefined;
        return `  ${f.name.padEnd(11)} ${state ?? progressBar(p?.bytesCommitted ?? 0, f.size, p?.rateBytesPerSec ?? 0, p?.etaMs)}`;
      });
    const ticker = setInterval(
      () => {
        if (out.live) out.region(['', status(), ...bars()]);
        else
          log(
            `status: ${status()}  files ${files.map((f) => `${f.name} ${Math.floor(((f.progress?.bytesCommitted ?? 0) / f.size) * 100)}%`).join(', ')}`,
          );
      },
      out.live ? 100 : 1000,
    );
    cleanup.unshift(async () => clearInterval(ticker));

    client.connect().catch(() => {});

    // --- workload: messages spread over the whole run, files from the start ----------------------
    const ackedIndices: number[] = [];
    const sending = (async () => {
      const perTick = Math.ceil(total / (SEND_SPAN_MS / SEND_TICK_MS));
      while (sent < total) {
        for (let i = 0; i < perTick && sent < total; i++) {
          const index = sent++;
          client.send(`msg ${index}`).then(
            () => {
              acked++;
              ackedIndices.push(index);
            },
            (error: TetherError) => {
              failedSends++;
              log(`client: send ${index} failed: ${error.code}`);
            },
          );
        }
        await sleep(SEND_TICK_MS);
      }
    })();

    const fault = async (name: string, run: () => Promise<void>): Promise<void> => {
      log(`chaos: ${name}`);
      await run();
    };
    const connected = async (timeoutMs = 5000): Promise<void> => {
      const until = performance.now() + timeoutMs;
      while (client.state !== ClientState.CONNECTED && performance.now() < until) await sleep(20);
    };
    const detectable = (name: string): void => {
      faultName = name;
      faultStart = performance.now();
    };

    // Throttle the uplink so the files are still in flight when the faults hit.
    const throttle = proxy.addToxic({
      type: 'bandwidth',
      direction: 'upstream',
      rate: 1500,
      name: 'throttle',
    });
    await connected();
    await sleep(300);
    const transfers = files.map((f) => {
      const transfer = client.sendFile(f.path);
      transfer.on('progress', (p) => {
        f.progress = p;
      });
      return transfer.done.then(
        (result) => {
          f.result = result;
          const resent = Math.max(0, result.bytesSent - result.size);
          const cuts =
            f.cuts > 0 ? `, survived ${f.cuts} link drops (${formatBytes(resent)} re-sent)` : '';
          log(
            `client: ${f.name} verified in ${formatMs(result.durationMs)}${cuts} sha256 ${result.sha256}`,
          );
        },
        (error: TetherError) => {
          f.error = error;
          log(`client: ${f.name} failed: ${error.code} ${error.message}`);
        },
      );
    });
    log(
      `client: sending ${files.length} files (${files.map((f) => `${f.name} ${formatBytes(f.size)}`).join(', ')})`,
    );
    await sleep(1200);

    await fault('black hole, both directions, for 2 s', async () => {
      const hole = proxy.addToxic({ type: 'blackhole', direction: 'both' });
      detectable('black hole');
      await sleep(2000);
      proxy.removeToxic(hole);
      log('chaos: black hole removed');
      await connected();
      await sleep(800);
    });
    await fault('TCP reset of every link', async () => {
      proxy.resetAll();
      await sleep(100);
      await connected();
      await sleep(800);
    });
    await fault('slicer: 1 to 127-byte pieces, 0.5 ms apart, for 2 s', async () => {
      const slicer = proxy.addToxic({
        type: 'slicer',
        direction: 'both',
        average_size: 64,
        size_variation: 63,
        delay: 500,
      });
      await sleep(2000);
      proxy.removeToxic(slicer);
      await connected();
      await sleep(300);
    });
    await fault(
      'limit_data: each link dies after 40 KB upstream, mid-frame, for 1.5 s',
      async () => {
        const limit = proxy.addToxic({ type: 'limit_data', direction: 'upstream', bytes: 40_000 });
        await sleep(1500);
        proxy.removeToxic(limit);
        await connected();
        await sleep(500);
      },
    );
    proxy.removeToxic(throttle);
    await fault('half-open: nothing comes back from the server, for 2 s', async () => {
      const half = proxy.addToxic({ type: 'half_open', direction: 'downstream' });
      detectable('half-open');
      await sleep(2000);
      proxy.removeToxic(half);
      await connected();
      await sleep(500);
    });
    await fault('proxy down (connections refused) for 1 s', async () => {
      await proxy.setDown(true);
      await sleep(1000);
      await proxy.setDown(false);
      await connected();
    });
    log('chaos: over; waiting for the last messages and files');

    // --- settle ---------------------------------------------------------------------------------
    await sending;
    const settleUntil = Math.min(
      performance.now() + SETTLE_TIMEOUT_MS,
      Math.max(start + BUDGET_MS, performance.now() + 3000),
    );
    while (
      (acked + failedSends < total ||
        files.some((f) => !f.result && !f.error) ||
        files.some((f) => f.result && !f.stored)) &&
      performance.now() < settleUntil
    ) {
      await sleep(50);
    }
    await Promise.race([Promise.all(transfers), sleep(100)]);
    const endedConnected = client.state === ClientState.CONNECTED;
    const stats = client.stats();
    clearInterval(ticker);
    if (out.live) out.region(['', status(), ...bars()]);
    out.done();
    await within(client.close(), CLEANUP_STEP_MS);

    // --- verification ---------------------------------------------------------------------------
    const seen = new Map<number, number>();
    let outOfOrder = 0;
    for (let i = 0; i < received.length; i++) {
      const index = received[i] ?? -1;
      seen.set(index, (seen.get(index) ?? 0) + 1);
      if (i > 0 && index <= (received[i - 1] ?? -1)) outOfOrder++;
    }
    const duplicates = [...seen.values()].reduce((n, c) => n + (c > 1 ? c - 1 : 0), 0);
    const lost = ackedIndices.filter((i) => !seen.has(i)).length;
    const unexpected = [...seen.keys()].filter(
      (i) => !(Number.isInteger(i) && i >= 0 && i < sent),
    ).length;
    const exact = received.length === total && received.every((index, i) => index === i);
    const fileChecks = await Promise.all(
      files.map(async (f) => {
        if (f.result === undefined || f.stored === undefined) return false;
        const stored = sha256(await readFile(f.stored.path));
        return f.result.sha256 === f.sha256 && f.stored.sha256 === f.sha256 && stored === f.sha256;
      }),
    );
    const verified = fileChecks.filter(Boolean).length;
    const resumed = files.filter((f) => f.result !== undefined && f.cuts > 0).length;
    const worst = detections.reduce((m, d) => Math.max(m, d.ms), 0);
    const checks: Check[] = [
      { name: 'messages sent', detail: `${sent} of ${total}`, ok: sent === total },
      {
        name: 'messages acknowledged',
        detail: `${acked} (${failedSends} failed)`,
        ok: acked === total && failedSends === 0,
      },
      {
        name: 'delivered exactly once, in order',
        detail: `${received.length} delivered; ${lost} lost, ${duplicates} duplicated, ${outOfOrder} out of order, ${unexpected} unexpected`,
        ok: exact && lost === 0 && duplicates === 0 && outOfOrder === 0 && unexpected === 0,
      },
      {
        name: 'files verified by SHA-256',
        detail: `${verified} of ${files.length} byte-identical (${resumed} resumed after link drops)`,
        ok: verified === files.length,
      },
      {
        name: 'dead links detected',
        detail: `${detections.length} of 2 (${detections.map((d) => `${d.fault} ${formatMs(d.ms)}`).join(', ')})`,
        ok: detections.length === 2,
      },
      {
        name: 'worst detection time',
        detail: `${formatMs(worst)} (limit ${formatMs(DETECTION_LIMIT_MS)}, dead after ${formatMs(DEAD_AFTER_MS)})`,
        ok: detections.length > 0 && worst <= DETECTION_LIMIT_MS,
      },
      {
        name: 'client ends connected',
        detail: `${stats.reconnects} reconnects, last RTT ${formatMs(stats.rtt?.last)}`,
        ok: endedConnected,
      },
    ];
    const passed = checks.filter((c) => c.ok).length;
    const ok = passed === checks.length;
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    out.line('');
    out.line('=== Tether demo: verification summary ===');
    for (const row of table([
      ['CHECK', 'RESULT', 'DETAIL'],
      ...checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', c.detail]),
    ])) {
      out.line(row);
    }
    out.line(
      `reconnects: ${stats.reconnects}; proxy links: ${proxy.stats().connections}; seed ${proxy.seed}`,
    );
    out.line(
      ok
        ? `RESULT: PASS (${passed}/${checks.length} checks) in ${seconds} s`
        : `RESULT: FAIL (${passed}/${checks.length} checks) in ${seconds} s`,
    );
    return ok ? ExitCode.OK : ExitCode.FAILED;
  } finally {
    for (const step of cleanup) {
      await within(
        step().catch(() => {}),
        CLEANUP_STEP_MS,
      );
    }
  }
}
