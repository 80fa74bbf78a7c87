import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChaosProxy } from '@tether/chaos';
import { TetherClient } from '@tether/client';
import { TetherServer } from '@tether/server';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_FLAGS, HAVE_CHROMIUM, SKIP_NOTE } from '../helpers/chromium.js';

// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core (no
// browser download). `.ci/run` installs chromium; elsewhere without it these tests skip.

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..');
// Screenshots, kept after the run (gitignored).
const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'dashboard');
const TOKEN = 'browser-test-token-0123456789abcdef';
// Controls, a bidi override and markup: the page must show it escaped and inert.
const EVIL_ID = 'evil\u202e\u0007<img src=x onerror="window.pwned=1">\u200b';
const EVIL_SHOWN = 'evil\\u202e\\x07<img src=x onerror="window.pwned=1">\\u200b';

const cleanups: (() => unknown)[] = [];
let server: TetherServer;
let page: Page;
let context: BrowserContext;
let tetherPort = 0;
let workDir = '';

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function client(port: number, options: Partial<ConstructorParameters<typeof TetherClient>[0]>) {
  const c = new TetherClient({
    port,
    pingIntervalMs: 100,
    deadAfterMs: 3000,
    backoff: { minDelayMs: 50, maxDelayMs: 200 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

/** `tether simulate` against the server, as its own process; stops by itself. */
function simulate(port: number): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tether/source',
      join(ROOT, 'packages', 'cli', 'src', 'main.ts'),
      'simulate',
      `127.0.0.1:${port}`,
      '--clients',
      '4',
      '--rate',
      '5',
      '--duration',
      '40s',
      '--client-id',
      'sim',
    ],
    { cwd: ROOT, env: { ...process.env, CI: '1' }, stdio: 'ignore' },
  );
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** The client ids the page shows in its table. */
function shownIds(): Promise<string[]> {
  return page.$$eval('#rows td.client-id', (cells) => cells.map((c) => c.textContent ?? ''));
}

describe('dashboard - in a real browser', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    if (!HAVE_CHROMIUM) return;
    await mkdir(ARTIFACTS, { recursive: true });
    workDir = await mkdtemp(join(tmpdir(), 'tether-dash-browser-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    const uploads = join(workDir, 'uploads');
    await mkdir(uploads);
    server = new TetherServer({
      pingIntervalMs: 200,
      evictAfterMs: 1000,
      uploadDir: uploads,
      dashboard: { port: 0, token: TOKEN, intervalMs: 200, processMetrics: false },
    });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    tetherPort = (await server.listen()).port;
    const profile = join(workDir, 'profile');
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_FLAGS],
      viewport: { width: 1500, height: 900 },
    });
    cleanups.push(() => context.close());
    page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    cleanups.push(() => expect(errors).toEqual([]));
    // The token in the fragment: never sent by the browser, passed as a header by the page.
    await page.goto(`http://127.0.0.1:${server.dashboardAddress?.port}/#token=${TOKEN}`);
  }, 60_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('shows the clients of tether simulate, live', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    simulate(tetherPort);
    await expect
      .poll(async () => (await shownIds()).sort(), { timeout: 30_000, interval: 200 })
      .toEqual(['sim-1', 'sim-2', 'sim-3', 'sim-4']);
    expect(await page.textContent('#status')).toBe('live');
    // Messages flow: the count in the header goes up between updates.
    const read = async () =>
      Number((await page.textContent('[data-total="messagesIn"]'))?.replaceAll(',', ''));
    const first = await read();
    await expect.poll(read, { timeout: 10_000 }).toBeGreaterThan(first);
    expect(await page.textContent('[data-total="sessions"]')).toBe('4');
    await shot('1-simulated-clients');
  });

  it('shows a client id with control and bidi characters escaped, and inert', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    await client(tetherPort, { clientId: EVIL_ID }).connect();
    await expect.poll(shownIds, { timeout: 10_000 }).toContain(EVIL_SHOWN);
    // Its connect line in the log, escaped the same way.
    const logged = await page.$$eval('#log li[data-kind="connect"] .client-id', (cells) =>
      cells.map((c) => (c.textContent ?? '').trim()),
    );
    expect(logged).toContain(EVIL_SHOWN);
    expect(await page.$$eval('img', (images) => images.length)).toBe(0);
    expect(await page.evaluate(() => (globalThis as { pwned?: number }).pwned)).toBeUndefined();
    // No raw control or bidi character anywhere in the page's text.
    const text = await page.evaluate(
      () =>
        (globalThis as unknown as { document: { body: { textContent: string } } }).document.body
          .textContent,
    );
    // biome-ignore lint/suspicious/noControlCharactersInRegex: that is what must not appear.
    expect(text).not.toMatch(/[\u0007\u202e\u200b]/);
    await page.fill('#filter', 'evil');
    await expect.poll(shownIds, { timeout: 5000 }).toEqual([EVIL_SHOWN]);
    await shot('2-escaped-client-id');
    await page.fill('#filter', '');
  });

  it("moves a transfer's progress bar", async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const source = join(workDir, 'upload.bin');
    await writeFile(source, randomBytes(3 * 1024 * 1024));
    // 600 KB/s upstream through a proxy: the 3 MiB upload takes about 5 s.
    const proxy = new ChaosProxy({ target: { port: tetherPort } });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    proxy.addToxic({ type: 'bandwidth', direction: 'upstream', rate: 600 });
    const uploader = client(proxy.port, { clientId: 'uploader', deadAfterMs: 10_000 });
    await uploader.connect();
    const transfer = uploader.sendFile(source, { name: 'big-upload.bin' });
    cleanups.push(() => transfer.cancel());
    const bar = 'tr:has(td.client-id:text-is("uploader")) .transfer progress';
    const value = async (): Promise<number> => {
      const found = await page.$(bar);
      return found === null ? -1 : Number(await found.getAttribute('value'));
    };
    await expect.poll(value, { timeout: 15_000, interval: 100 }).toBeGreaterThan(0);
    const first = await value();
    expect(await page.textContent('tr:has(td.client-id:text-is("uploader")) .transfer .name')).toBe(
      'big-upload.bin',
    );
    expect(Number(await page.getAttribute(bar, 'max'))).toBe(3 * 1024 * 1024);
    await shot('3-transfer-early');
    await expect.poll(value, { timeout: 15_000, interval: 100 }).toBeGreaterThan(first);
    await shot('4-transfer-later');
    await transfer.done;
    // Done: the bar goes, the log has its line.
    await expect.poll(value, { timeout: 5000 }).toBe(-1);
    const lines = await page.$$eval('#log li[data-kind="transfer"]', (items) =>
      items.map((i) => i.textContent ?? ''),
    );
    expect(lines.some((l) => l.includes('completed') && l.includes('big-upload.bin'))).toBe(true);
  });

  it('shows an evicted client in the log', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    const proxy = new ChaosProxy({ target: { port: tetherPort } });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    await client(proxy.port, { clientId: 'doomed', deadAfterMs: 10_000 }).connect();
    await expect.poll(shownIds, { timeout: 5000 }).toContain('doomed');
    // Silence both ways: the server evicts it after 1 s.
    proxy.addToxic({ type: 'blackhole', direction: 'both' });
    const evictions = async () =>
      page.$$eval('#log li[data-kind="evict"]', (items) => items.map((i) => i.textContent ?? ''));
    await expect
      .poll(async () => (await evictions()).some((l) => l.includes('doomed')), { timeout: 10_000 })
      .toBe(true);
    const line = (await evictions()).find((l) => l.includes('doomed')) ?? '';
    expect(line).toContain('EVICTED');
    expect(line).toMatch(/silent for \d+ ms/);
    // Its row stays, away, while the session waits for a resume.
    await expect
      .poll(() => page.textContent('tr:has(td.client-id:text-is("doomed")) td.state'))
      .toBe('away');
    await shot('5-evicted');
  });

  it('sorts, pages and asks for the token when it is missing', async (ctx) => {
    ctx.skip(!HAVE_CHROMIUM, SKIP_NOTE);
    await page.selectOption('#size', '25');
    await page.click('th[data-sort="client"]');
    await expect
      .poll(() => page.getAttribute('th[data-sort="client"]', 'aria-sort'))
      .toBe('descending');
    const ids = await shownIds();
    expect(ids).toEqual([...ids].sort().reverse());
    const other = await context.newPage();
    cleanups.push(() => other.close());
    await other.goto(`http://127.0.0.1:${server.dashboardAddress?.port}/`);
    await expect
      .poll(() => other.textContent('#status'), { timeout: 5000 })
      .toContain('token required');
  });
});
