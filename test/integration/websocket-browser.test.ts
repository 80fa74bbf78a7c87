import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChaosProxy } from '@tether/chaos';
import { type Peer, type ReceivedFile, TetherServer } from '@tether/server';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_FLAGS, HAVE_CHROMIUM, SKIP_NOTE } from '../helpers/chromium.js';

// The client's browser build in a real browser: Debian's chromium, headless, driven by
// playwright-core (no browser download), through the chaos proxy to a TetherServer's WebSocket
// endpoint. `.ci/run` installs chromium; elsewhere without it these tests skip.

// Playwright turns off Chromium's throttling of background pages; a browser test of background
// behaviour needs it on, as users have it.
const THROTTLING_OFF = [
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..');
const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'websocket-browser');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
};
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Tether in the browser</title>
<style>body { font: 15px system-ui; margin: 2em } pre { font-size: 14px; background: #f4f4f4; padding: 1em }</style>
</head><body><h1>Tether over WebSocket</h1><pre id="status">loading</pre>
<script type="module" src="/websocket-page.js"></script></body></html>`;

const cleanups: (() => unknown)[] = [];
let server: TetherServer;
let proxy: ChaosProxy;
let context: BrowserContext;
let page: Page;
let uploads = '';
let url = '';
let peer: Peer | undefined;
const atServer: string[] = [];
const files: ReceivedFile[] = [];

interface Harness {
  connect(url: string, options: object): Promise<string>;
  sendMany(prefix: string, count: number, batch: number, pauseMs: number): Promise<number>;
  received(): string[];
  clearReceived(): void;
  requests(count: number, concurrency: number): Promise<string[]>;
  upload(
    size: number,
    seed: number,
    name: string,
  ): Promise<{
    local: string;
    result: { sha256: string; size: number; resumedFrom: number; bytesSent: number };
    progress: number;
    id: string;
  }>;
  throttleTimers(ms: number): void;
  unthrottleTimers(): void;
  armProbe(): void;
  probeFired(): boolean;
  stats(): {
    state: string;
    reconnects: number;
    sessions: { resumed: boolean; sessionId: string }[];
    errors: string[];
    outbox: number;
  };
  close(): Promise<void>;
  refusals(): Promise<{ store: string; tcp: string; tcpReconnects: number }>;
  downloads(): { name: string; size: number; sha256: string; blobSize: number; digest: string }[];
}

/** Runs `call` on the page's harness. */
function harness<T>(call: (h: Harness, arg: never) => T | Promise<T>, arg?: unknown): Promise<T> {
  return page.evaluate(
    ([source, value]) => {
      const h = (globalThis as unknown as { harness: Harness }).harness;
      // The test's own function, sent as its source (page.evaluate takes no closures).
      const run = new Function(`return (${source})`)() as (h: Harness, value: unknown) => T;
      return run(h, value);
    },
    [call.toString(), arg] as const,
  ) as Promise<T>;
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Serves the page and the client's browser build (built fresh into `dir`). */
async function servePage(dir: string): Promise<number> {
  const pageScript = await readFile(join(here, 'websocket-page.js'));
  const httpServer = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const send = (status: number, body: Buffer | string, type = 'text/plain'): void => {
      response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(body);
    };
    if (path === '/') return send(200, PAGE, TYPES['.html']);
    if (path === '/websocket-page.js') return send(200, pageScript, TYPES['.js']);
    const name = path.slice(1);
    if (!/^[\w.-]+$/.test(name)) return send(404, 'not found');
    readFile(join(dir, name)).then(
      (body) => send(200, body, TYPES[extname(name)] ?? 'application/octet-stream'),
      () => send(404, 'not found'),
    );
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    httpServer.closeAllConnections();
    return new Promise((resolve) => httpServer.close(resolve));
  });
  return (httpServer.address() as AddressInfo).port;
}

describe('websocket - the browser build in Chromium', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    if (!HAVE_CHROMIUM) return;
    await mkdir(ARTIFACTS, { recursive: true });
    const work = await mkdtemp(join(tmpdir(), 'tether-ws-browser-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const bundle = join(work, 'bundle');
    execFileSync(
      process.execPath,
      [join(ROOT, 'packages', 'client', 'build-browser.mjs'), bundle],
      {
        stdio: 'pipe',
      },
    );
    const httpPort = await servePage(bundle);
    uploads = join(work, 'uploads');
    await mkdir(uploads);
    server = new TetherServer({
      pingIntervalMs: 500,
      evictAfterMs: 2000,
      sessionTtlMs: 60_000,
      uploadDir: uploads,
      onRequest: (payload) => `re:${payload.toString()}`,
      // The page's origin; the proxy's port is another, so the same-origin default would refuse it.
      webSocket: { origins: [`http://127.0.0.1:${httpPort}`] },
    });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    server.on('message', (message, from) => {
      peer = from;
      atServer.push(message.text());
    });
    server.on('connection', (from) => {
      peer = from;
    });
    server.on('file', (file) => files.push(file));
    await server.listen();
    proxy = new ChaosProxy({ target: { port: server.webSocketAddress?.port ?? 0 } });
    proxy.on('error', () => {});
    await proxy.start();
    cleanups.push(() => proxy.stop());
    url = `ws://127.0.0.1:${proxy.port}/tether`;
    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_FLAGS],
      ignoreDefaultArgs: THROTTLING_OFF,
      viewport: { width: 900, height: 600 },
    });
    cleanups.push(() => context.close());
    page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    cleanups.push(() => expect(errors).toEqual([]));
    await page.goto(`http://127.0.0.1:${httpPort}/`);
    await page.waitForFunction(() => (globalThis as { ready?: boolean }).ready === true);
    await harness(
      (h, target: string) =>
        h.connect(target, {
          clientId: 'browser',
          pingIntervalMs: 500,
          deadAfterMs: 2000,
          backoff: { minDelayMs: 50, maxDelayMs: 300 },
          acceptFile: () => true,
        }),
      url,
    );
  }, 120_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('websocket browser - 5,000 messages each way, exactly once and in order, across 5 cuts', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const N = 5000;
    const expected = (prefix: string) => Array.from({ length: N }, (_, i) => `${prefix}${i}`);
    // Both directions paced over a few seconds, so the cuts land in the middle of the traffic.
    const fromPage = harness((h) => h.sendMany('c', 5000, 50, 25));
    const fromServer = (async () => {
      for (let i = 0; i < N; i += 50) {
        const target = peer as Peer;
        await Promise.all(Array.from({ length: 50 }, (_, j) => target.send(`s${i + j}`)));
        await sleep(25);
      }
    })();
    const cuts: (() => Promise<void>)[] = [
      async () => proxy.resetAll(),
      async () => {
        // Silence both ways past both deadlines, then the links die (TCP would have).
        const id = proxy.addToxic({ type: 'blackhole', direction: 'both' });
        await sleep(2500);
        proxy.removeToxic(id);
        proxy.resetAll();
      },
      async () => {
        await proxy.setDown(true);
        await sleep(600);
        await proxy.setDown(false);
      },
      async () => proxy.resetAll(),
      async () => {
        const id = proxy.addToxic({ type: 'blackhole', direction: 'upstream' });
        await sleep(2500);
        proxy.removeToxic(id);
        proxy.resetAll();
      },
    ];
    for (const cut of cuts) {
      await sleep(500);
      await cut();
    }
    await shot('1-during-cuts');
    expect(await fromPage).toBe(N);
    await fromServer;
    await expect.poll(() => harness((h) => h.received().length), { timeout: 30_000 }).toBe(N);
    expect(await harness((h) => h.received())).toEqual(expected('s'));
    expect(atServer.filter((m) => m.startsWith('c'))).toEqual(expected('c'));
    const stats = await harness((h) => h.stats());
    expect(stats.reconnects).toBeGreaterThanOrEqual(5);
    // One session all along: every reconnect resumed it.
    expect(stats.sessions.length).toBeGreaterThanOrEqual(6);
    expect(stats.sessions.slice(1).every((s) => s.resumed)).toBe(true);
    await shot('2-after-cuts');
  });

  it('websocket browser - a page has no TCP and no store: both refused at once', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const refusals = await harness((h) => h.refusals());
    expect(refusals.store).toMatch(/^TypeError: the store option needs a file system/);
    expect(refusals.tcp).toBe('INVALID_OPTION');
    expect(refusals.tcpReconnects).toBe(0);
  });

  it('websocket browser - a stream of requests across a cut, every reply to its request', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const replies = harness((h) => h.requests(1000, 20));
    await sleep(150);
    proxy.resetAll();
    expect(await replies).toEqual(Array.from({ length: 1000 }, (_, i) => `re:q${i}`));
  });

  it('websocket browser - a 20 MB Blob uploads across a cut and is verified by SHA-256', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const size = 20 * 1024 * 1024;
    // 10 MB/s upstream: the upload takes about 2 s, and a reset halfway makes it resume.
    const slow = proxy.addToxic({ type: 'bandwidth', direction: 'upstream', rate: 10_000 });
    const upload = harness((h) => h.upload(20 * 1024 * 1024, 12_345, 'page-upload.bin'));
    await sleep(1000);
    proxy.resetAll();
    const { local, result, progress, id } = await upload;
    proxy.removeToxic(slow);
    expect(result.size).toBe(size);
    expect(result.sha256).toBe(local);
    expect(result.resumedFrom).toBe(0);
    // The cut lost what was in flight: some bytes went twice.
    expect(result.bytesSent).toBeGreaterThan(size);
    expect(progress).toBeGreaterThan(0);
    const stored = files.find((f) => f.id === id);
    expect(stored?.name).toBe('page-upload.bin');
    const onDisk = createHash('sha256')
      .update(await readFile(stored?.path ?? ''))
      .digest('hex');
    expect(onDisk).toBe(local);
    await shot('3-upload-done');
  });

  it('websocket browser - a file from the server downloads into a Blob across a cut, verified', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const source = join(uploads, '..', 'download.bin');
    const data = randomBytes(6 * 1024 * 1024);
    await writeFile(source, data);
    const slow = proxy.addToxic({ type: 'bandwidth', direction: 'downstream', rate: 6000 });
    const transfer = (peer as Peer).sendFile(source, { name: 'for-the-page.bin' });
    await sleep(400);
    proxy.resetAll();
    const result = await transfer.done;
    proxy.removeToxic(slow);
    const sha256 = createHash('sha256').update(data).digest('hex');
    expect(result.sha256).toBe(sha256);
    // The cut lost bytes in flight (some went twice), and the page's memory resumed the rest:
    // not sent again from zero.
    expect(result.bytesSent).toBeGreaterThan(data.length);
    expect(result.bytesSent).toBeLessThan(2 * data.length);
    await expect
      .poll(() => harness((h) => h.downloads()))
      .toEqual([
        {
          name: 'for-the-page.bin',
          size: data.length,
          sha256,
          blobSize: data.length,
          digest: sha256,
        },
      ]);
    await shot('4-download-done');
  });

  it('websocket browser - a hidden tab (timers throttled) answers PINGs and is not evicted; a frozen one resumes', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const evictions: string[] = [];
    server.on('evict', (p) => evictions.push(p.clientId));
    const rtts: number[] = [];
    server.on('rtt', (_p, rtt) => rtts.push(rtt.last));
    await harness((h) => h.clearReceived());
    const reconnectsBefore = (await harness((h) => h.stats())).reconnects;
    // Chromium's intensive throttling of a tab hidden for 5 minutes: timers at most once a minute.
    await harness((h) => h.throttleTimers(60_000));
    await harness((h) => h.armProbe());
    // Three eviction deadlines: the server PINGs, the page answers from its message handler (the
    // write of the PONG waits on no timer), and messages still arrive.
    const target = peer as Peer;
    for (let i = 0; i < 30; i++) {
      await target.send(`hidden-${i}`);
      await sleep(200);
    }
    expect(evictions).toEqual([]);
    expect((await harness((h) => h.stats())).reconnects).toBe(reconnectsBefore);
    expect(await harness((h) => h.received())).toEqual(
      Array.from({ length: 30 }, (_, i) => `hidden-${i}`),
    );
    // PONGs came at once (a timer-driven write would have waited up to a minute).
    expect(rtts.length).toBeGreaterThan(0);
    expect(Math.max(...rtts)).toBeLessThan(250);
    // The emulation was in force: the page's 10 ms timer did not run in six seconds.
    expect(await harness((h) => h.probeFired())).toBe(false);
    await shot('5-hidden-tab');
    await harness((h) => h.unthrottleTimers());

    // Frozen (what Chromium does to some background tabs): none of the page's code runs. Headless
    // Chromium ignores Page.setWebLifecycleState, so the page is stopped in the debugger instead,
    // with the same effect on it. The server evicts it and keeps its session; thawed, it
    // reconnects, resumes, and gets what was sent meanwhile.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    const sent = Promise.all(Array.from({ length: 20 }, (_, i) => target.send(`frozen-${i}`)));
    await expect.poll(() => evictions, { timeout: 10_000 }).toEqual(['browser']);
    await cdp.send('Debugger.resume');
    await cdp.send('Debugger.disable');
    await sent;
    await expect
      .poll(async () => (await harness((h) => h.received())).filter((m) => m.startsWith('frozen')))
      .toEqual(Array.from({ length: 20 }, (_, i) => `frozen-${i}`));
    const stats = await harness((h) => h.stats());
    expect(stats.sessions.at(-1)?.resumed).toBe(true);
    await shot('6-thawed');
  });
});
