import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientState } from '@tether/client';
import { ExitCode, flag, integer, parse, UsageError } from './args.js';
import { type DemoContext, type MessageCounts, within } from './demo-context.js';
import { runCuts, throttleUplink } from './demo-faults.js';
import { connected, startClient, startProxy, startServer } from './demo-stack.js';
import { printSummary, verify } from './demo-verify.js';
import { makeFiles, sendFiles, sendMessages, settle, showStatus } from './demo-workload.js';
import { clock, createOutput, type Output } from './term.js';

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

// Each cleanup step (close client, proxy, server) gets this long.
const CLEANUP_STEP_MS = 3000;

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
  const dir = await mkdtemp(join(tmpdir(), 'tether-demo-'));
  const cleanup: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const context: DemoContext = {
    out,
    log: (text) => out.line(`${clock(start)} ${text}`),
    start,
    dir,
    seed,
    total,
    defer: (step) => cleanup.unshift(step),
  };
  try {
    return await run(context);
  } finally {
    for (const step of cleanup) {
      await within(
        step().catch(() => {}),
        CLEANUP_STEP_MS,
      );
    }
  }
}

/** The demo, step by step; every step registers its own cleanup. */
async function run(demo: DemoContext): Promise<number> {
  const files = await makeFiles(demo);
  const server = await startServer(demo, files);
  const proxy = await startProxy(demo, server.port);
  demo.log(
    `server on 127.0.0.1:${server.port}, chaos proxy on 127.0.0.1:${proxy.port} (seed ${proxy.seed})`,
  );
  demo.log(`uploads go to ${join(demo.dir, 'uploads')}`);
  const observed = startClient(demo, proxy.port, files);
  const { client } = observed;
  const counts: MessageCounts = { sent: 0, acked: 0, failed: 0, ackedIndices: [] };
  const status = showStatus(demo, observed, counts, server.received, files);
  client.connect().catch(() => {});

  // Messages spread over the whole run; files from the start, through a throttled uplink so
  // they are still in flight when the cuts come.
  const sending = sendMessages(demo, client, counts);
  const throttle = throttleUplink(proxy);
  await connected(client);
  await sleep(300);
  const transfers = sendFiles(demo, client, files);
  await sleep(1200);
  await runCuts(demo, proxy, observed, throttle);

  await settle(demo, counts, sending, files, transfers);
  const endedConnected = client.state === ClientState.CONNECTED;
  const stats = client.stats();
  status.finish();
  await within(client.close(), CLEANUP_STEP_MS);

  const checks = await verify(demo, {
    counts,
    received: server.received,
    files,
    detections: observed.detections,
    stats,
    endedConnected,
  });
  const ok = printSummary(
    demo,
    checks,
    `reconnects: ${stats.reconnects}; proxy links: ${proxy.stats().connections}; seed ${proxy.seed}`,
  );
  return ok ? ExitCode.OK : ExitCode.FAILED;
}
