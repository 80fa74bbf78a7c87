import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosProxy } from '@tether/chaos';
import { TetherClient } from '@tether/client';
import { type Peer, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseMetrics, seriesValue } from '../helpers/dashboard.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// prom-client is a dependency of @tether/server only: an application passing its own registry
// uses the copy the server resolves, as this test does.
const { Registry } = createRequire(new URL('../../packages/server/package.json', import.meta.url))(
  'prom-client',
) as {
  Registry: new () => {
    getSingleMetric(name: string): unknown;
    metrics(): Promise<string>;
  };
};

const TOKEN = 'dashboard-test-token-0123456789';
const SECRET = 'server-shared-secret-never-shown';

async function startServer(options: ConstructorParameters<typeof TetherServer>[0] = {}) {
  const server = new TetherServer({
    pingIntervalMs: 100,
    evictAfterMs: 600,
    ...options,
    dashboard: { port: 0, processMetrics: false, ...options.dashboard },
  });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  const dashboard = `http://127.0.0.1:${server.dashboardAddress?.port}`;
  return { server, port, dashboard };
}

function newClient(port: number, options: Partial<ConstructorParameters<typeof TetherClient>[0]>) {
  const client = new TetherClient({
    port,
    pingIntervalMs: 50,
    deadAfterMs: 1000,
    backoff: { minDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

/** A raw HTTP GET, so the test chooses the Host header (fetch does not let it). */
function rawGet(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
    });
    socket.on('end', () => resolve(Number(head.split(' ')[1])));
    socket.on('error', reject);
  });
}

/** Reads the first `count` events of an SSE response. */
async function readEvents(response: Response, count: number): Promise<unknown[]> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: unknown[] = [];
  let buffer = '';
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0 && events.length < count) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      expect(line.startsWith('data: ')).toBe(true);
      events.push(JSON.parse(line.slice(6)));
      end = buffer.indexOf('\n\n');
    }
  }
  await reader.cancel();
  return events;
}

/** Sends `request` as is and reads the answer until the server closes or `enough` says so. */
function rawExchange(
  port: number,
  request: string,
  enough: (text: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    const done = () => {
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (enough(text)) done();
    });
    socket.on('end', done);
    socket.on('error', reject);
  });
}

describe('dashboard - the live stream on the wire', () => {
  it('ends its body with the connection (no chunked framing); HEAD gets headers only', async () => {
    const { dashboard } = await startServer();
    const port = Number(new URL(dashboard).port);
    const host = `Host: 127.0.0.1:${port}\r\n`;
    const get = await rawExchange(port, `GET /events HTTP/1.1\r\n${host}\r\n`, (t) =>
      t.includes('\n\n', t.indexOf('\r\n\r\n') + 4),
    );
    const [head = '', body = ''] = get.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head).toMatch(/\r\ncontent-type: text\/event-stream/i);
    expect(head).toMatch(/\r\nconnection: close/i);
    expect(head).not.toMatch(/transfer-encoding/i);
    // The first event right after the head, with no chunk size before it.
    expect(body.startsWith('data: {"time":')).toBe(true);
    const update = JSON.parse(body.slice(6, body.indexOf('\n\n'))) as {
      peers: { rows: unknown[] };
    };
    expect(update.peers.rows).toEqual([]);

    const headOnly = await rawExchange(
      port,
      `HEAD /events HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
      () => false,
    );
    expect(headOnly).toMatch(/^HTTP\/1\.1 200 /);
    expect(headOnly).toMatch(/\r\ncontent-type: text\/event-stream/i);
    expect(headOnly.endsWith('\r\n\r\n')).toBe(true);
  });

  it('a stream asked for behind another request on one connection is refused, not mixed in', async () => {
    const { dashboard } = await startServer();
    const port = Number(new URL(dashboard).port);
    const host = `Host: 127.0.0.1:${port}\r\n`;
    const answer = await rawExchange(
      port,
      `GET /healthz HTTP/1.1\r\n${host}\r\nGET /events HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
      () => false,
    );
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '503']);
    expect(answer).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(answer).not.toContain('data: ');
  });
});

describe('dashboard - peer.rttHistory()', () => {
  it("the server keeps each session's last rttHistory samples with a dashboard, none without", async () => {
    // The server's RTT ping every 6 ping intervals: 600 ms here.
    const { server, port } = await startServer({ dashboard: { rttHistory: 3 } });
    const plain = new TetherServer({ pingIntervalMs: 100, evictAfterMs: 600 });
    cleanups.push(() => plain.close({ drainTimeoutMs: 0 }));
    const plainPort = (await plain.listen()).port;
    const client = newClient(port, { clientId: 'kept' });
    const other = newClient(plainPort, { clientId: 'none' });
    await client.connect();
    await other.connect();
    const peer = server.peers[0] as Peer;
    const samples = () => peer.stats().rtt?.samples ?? 0;
    await vi.waitFor(() => expect(samples()).toBeGreaterThanOrEqual(4), {
      timeout: 10_000,
      interval: 50,
    });
    const history = peer.rttHistory();
    // The last 3 of 4 or more, the newest last, each to 0.01 ms.
    expect(history).toHaveLength(3);
    expect(history.at(-1)).toBeCloseTo(peer.stats().rtt?.last as number, 2);
    for (const ms of history) expect(ms).toBeGreaterThan(0);
    const otherPeer = plain.peers[0] as Peer;
    await vi.waitFor(() => expect(otherPeer.stats().rtt?.samples ?? 0).toBeGreaterThanOrEqual(1), {
      timeout: 10_000,
      interval: 50,
    });
    expect(otherPeer.rttHistory()).toEqual([]);
  });
});

describe('dashboard - RTT histories on the live stream', () => {
  it('a row carries its RTT history when it has a new sample since the stream last sent it', async () => {
    // The server's RTT ping every 6 ping intervals (600 ms): most 100 ms updates have none new.
    const { port, dashboard } = await startServer({ dashboard: { intervalMs: 100 } });
    for (const id of ['rtt-a', 'rtt-b']) await newClient(port, { clientId: id }).connect();
    const response = await fetch(`${dashboard}/events`);
    type Row = { id: string; rtt?: number[] };
    const updates = (await readEvents(response, 20)) as { peers: { rows: Row[] } }[];
    const [first, ...rest] = updates;
    expect(first?.peers.rows).toHaveLength(2);
    // A new stream gets every row's history.
    for (const row of first?.peers.rows ?? []) expect(Array.isArray(row.rtt)).toBe(true);
    const sent = new Map((first?.peers.rows ?? []).map((r) => [r.id, r.rtt?.length ?? 0]));
    let left = 0;
    let again = 0;
    for (const update of rest) {
      for (const row of update.peers.rows) {
        if (row.rtt === undefined) {
          left++;
          continue;
        }
        // Sent again only with a new sample: the history (not yet full) is longer.
        again++;
        expect(row.rtt.length).toBeGreaterThan(sent.get(row.id) as number);
        sent.set(row.id, row.rtt.length);
      }
    }
    expect(left).toBeGreaterThan(0);
    expect(again).toBeGreaterThan(0);
    // /api/snapshot always has them.
    const snapshot = (await (await fetch(`${dashboard}/api/snapshot`)).json()) as {
      peers: { rows: Row[] };
    };
    for (const row of snapshot.peers.rows) {
      expect(row.rtt?.length).toBeGreaterThanOrEqual(sent.get(row.id) as number);
    }
  });
});

/** Reads a live stream's updates one at a time. */
function updateReader(response: Response): () => Promise<unknown> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  cleanups.push(() => reader.cancel());
  const decoder = new TextDecoder();
  let buffer = '';
  return async () => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        return JSON.parse(line.slice('data: '.length));
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

describe('dashboard - RTT histories when rows come and go', () => {
  it('a row back on the page carries its history again, though its session had no new sample', async () => {
    // Pings every 5 s: the server's RTT ping comes every 30 s, so no session gets a sample here.
    const { server, port, dashboard } = await startServer({
      pingIntervalMs: 5000,
      evictAfterMs: 15_000,
      dashboard: { intervalMs: 50 },
    });
    const quiet = { pingIntervalMs: 1000, deadAfterMs: 3000 };
    await newClient(port, { clientId: 'page-b', ...quiet }).connect();
    // One row a page, by client id: page-a, while it exists, pushes page-b off the page.
    const next = updateReader(await fetch(`${dashboard}/events?sort=client&size=1&page=0`));
    type Row = { clientId: string; rtt?: number[] };
    const shown = async (clientId: string): Promise<Row[]> => {
      const seen: Row[] = [];
      for (let i = 0; i < 200; i++) {
        const row = ((await next()) as { peers: { rows: Row[] } }).peers.rows[0];
        if (row?.clientId === clientId) seen.push(row);
        else if (seen.length > 0) return seen;
        if (seen.length === 2) return seen;
      }
      throw new Error(
        `${clientId} was not shown twice in a row; last ${JSON.stringify(((await next()) as { peers: unknown }).peers)}`,
      );
    };
    // First shown: its history; the next update, nothing new: none.
    const [firstB, againB] = await shown('page-b');
    expect(firstB?.rtt).toEqual([]);
    expect(againB).not.toHaveProperty('rtt');
    const a = newClient(port, { clientId: 'page-a', ...quiet });
    await a.connect();
    expect((await shown('page-a'))[0]?.rtt).toEqual([]);
    // Its client gone and its session ended.
    await a.close();
    for (const peer of server.peers) if (peer.clientId === 'page-a') peer.close();
    // page-a's session ended: page-b is back, new to the page since the stream's last update.
    const [back] = await shown('page-b');
    expect(back?.rtt).toEqual([]);
  });
});

describe('dashboard - options', () => {
  it('refuses an address other than loopback without a token, and a short token', () => {
    expect(() => new TetherServer({ dashboard: { host: '0.0.0.0' } })).toThrow(TypeError);
    expect(() => new TetherServer({ dashboard: { host: '::' } })).toThrow(TypeError);
    expect(() => new TetherServer({ dashboard: { host: '192.0.2.1' } })).toThrow(TypeError);
    expect(() => new TetherServer({ dashboard: { token: 'short' } })).toThrow(TypeError);
    expect(() => new TetherServer({ dashboard: { port: 70000 } })).toThrow(TypeError);
    expect(() => new TetherServer({ dashboard: { host: '0.0.0.0', token: TOKEN } })).not.toThrow();
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) {
      expect(() => new TetherServer({ dashboard: { host } })).not.toThrow();
    }
  });

  it('a dashboard port in use fails listen(), and the server does not start either', async () => {
    const { server: first } = await startServer();
    const taken = first.dashboardAddress?.port;
    const second = new TetherServer({ dashboard: { port: taken as number } });
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(second.address).toBeUndefined();
    expect(second.listening).toBe(false);
    expect(second.dashboardAddress).toBeUndefined();
  });
});

describe('dashboard - health and readiness', () => {
  it('/healthz and /readyz answer 200; /readyz turns 503 "draining" for the whole drain', async () => {
    const { server, port, dashboard } = await startServer();
    expect((await fetch(`${dashboard}/healthz`)).status).toBe(200);
    const ready = await fetch(`${dashboard}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
    expect(server.listening).toBe(true);
    // A message the client holds unacknowledged keeps the drain going until its timeout.
    const client = newClient(port, {});
    client.on('message', () => new Promise(() => {}));
    await client.connect();
    const peer = server.peers[0] as Peer;
    void peer.send('held').catch(() => {});
    const closing = server.close({ drainTimeoutMs: 1500 });
    const during = await fetch(`${dashboard}/readyz`);
    expect(during.status).toBe(503);
    expect(await during.text()).toBe('draining\n');
    expect((await fetch(`${dashboard}/healthz`)).status).toBe(200);
    await closing;
    expect(server.listening).toBe(false);
    // Closed with the server.
    await expect(fetch(`${dashboard}/healthz`)).rejects.toThrow();
  });
});

describe('dashboard - access', () => {
  it('with a token: data needs it (header or query), the page files do not', async () => {
    const { dashboard } = await startServer({ dashboard: { token: TOKEN } });
    for (const path of ['/metrics', '/healthz', '/readyz', '/api/snapshot', '/events']) {
      const none = await fetch(`${dashboard}${path}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tether"');
      const wrong = await fetch(`${dashboard}${path}`, {
        headers: { Authorization: `Bearer ${TOKEN}x` },
      });
      expect(wrong.status).toBe(401);
      const short = await fetch(`${dashboard}${path}?token=${TOKEN.slice(0, -1)}`);
      expect(short.status).toBe(401);
    }
    const header = await fetch(`${dashboard}/metrics`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(header.status).toBe(200);
    expect((await fetch(`${dashboard}/readyz?token=${TOKEN}`)).status).toBe(200);
    for (const path of ['/', '/dashboard.js', '/dashboard.css']) {
      expect((await fetch(`${dashboard}${path}`)).status).toBe(200);
    }
  });

  it('without a token, a Host header that is not loopback is refused (DNS rebinding)', async () => {
    const { server } = await startServer();
    const port = server.dashboardAddress?.port as number;
    expect(await rawGet(port, '/metrics', `127.0.0.1:${port}`)).toBe(200);
    expect(await rawGet(port, '/metrics', `localhost:${port}`)).toBe(200);
    expect(await rawGet(port, '/metrics', `[::1]:${port}`)).toBe(200);
    expect(await rawGet(port, '/metrics', `attacker.example:${port}`)).toBe(421);
    expect(await rawGet(port, '/', `attacker.example:${port}`)).toBe(421);
    expect(await rawGet(port, '/events', '127.0.0.1.attacker.example')).toBe(421);
  });

  it('every response carries a strict Content-Security-Policy and no-sniff; only GET and HEAD', async () => {
    const { dashboard } = await startServer();
    for (const path of ['/', '/dashboard.js', '/metrics', '/nope']) {
      const response = await fetch(`${dashboard}${path}`);
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      // RFC 9110 section 6.6.1: an origin server with a clock sends Date in 2xx to 4xx answers.
      const date = Date.parse(response.headers.get('date') ?? '');
      expect(Math.abs(date - Date.now())).toBeLessThan(5000);
    }
    expect((await fetch(`${dashboard}/nope`)).status).toBe(404);
    expect((await fetch(`${dashboard}/metrics`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${dashboard}/constructor`)).status).toBe(404);
    const page = await (await fetch(`${dashboard}/`)).text();
    expect(page).not.toMatch(/<script>|<style>|\son\w+=/);
  });
});

describe('dashboard - /metrics', () => {
  it('parses as Prometheus text and counts sessions, messages, bytes, resumes, closes, evictions and RTT', async () => {
    const { server, port, dashboard } = await startServer({ secret: SECRET });
    const proxy = new ChaosProxy({ target: { port } });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const a = newClient(port, { clientId: 'metrics-a', secret: SECRET });
    const b = newClient(proxy.port, { clientId: 'metrics-b', secret: SECRET, deadAfterMs: 5000 });
    await a.connect();
    await b.connect();
    for (let i = 0; i < 7; i++) await a.send(`m${i}`);
    await b.send('x');
    // b's session: one drop (reset) and a resume; then a black hole until the server evicts it.
    const resumed = new Promise((resolve) => server.once('connection', resolve));
    server.peers.find((p) => p.clientId === 'metrics-b')?.disconnect('test drop');
    await resumed;
    const evicted = new Promise((resolve) => server.once('evict', resolve));
    proxy.addToxic({ type: 'blackhole', direction: 'both' });
    await evicted;
    await expect.poll(() => server.stats().connections).toBe(1);
    const families = parseMetrics(await (await fetch(`${dashboard}/metrics`)).text());
    expect(families.get('tether_sessions')?.type).toBe('GAUGE');
    expect(seriesValue(families, 'tether_sessions')).toBe(2);
    expect(seriesValue(families, 'tether_connections')).toBe(1);
    expect(seriesValue(families, 'tether_sessions_connected')).toBe(1);
    expect(seriesValue(families, 'tether_sessions_opened_total')).toBe(2);
    expect(seriesValue(families, 'tether_session_resumes_total')).toBe(1);
    expect(seriesValue(families, 'tether_evictions_total')).toBe(1);
    expect(seriesValue(families, 'tether_messages_total', { direction: 'in' })).toBe(8);
    expect(seriesValue(families, 'tether_messages_total', { direction: 'out' })).toBe(0);
    expect(seriesValue(families, 'tether_connection_closes_total', { code: 'EVICTED' })).toBe(1);
    expect(
      seriesValue(families, 'tether_connection_closes_total', { code: 'CONNECTION_LOST' }),
    ).toBe(1);
    const bytesIn = seriesValue(families, 'tether_bytes_total', { direction: 'in' }) as number;
    const peersIn = server.peers.reduce((sum, p) => sum + p.stats().bytesIn, 0);
    expect(bytesIn).toBe(peersIn);
    expect(bytesIn).toBeGreaterThan(8 * 2);
    const rtt = families.get('tether_rtt_seconds');
    expect(rtt?.type).toBe('HISTOGRAM');
    expect(Number(rtt?.metrics[0]?.count)).toBeGreaterThan(0);
    expect(seriesValue(families, 'tether_draining')).toBe(0);
    // No process metrics unless asked for.
    expect([...families.keys()].every((name) => name.startsWith('tether_'))).toBe(true);
  });

  it('bytes of an expired session stay counted; file bytes and transfers by outcome', async () => {
    const uploads = await mkdtemp(join(tmpdir(), 'tether-dash-'));
    cleanups.push(() => rm(uploads, { recursive: true, force: true }));
    const file = join(uploads, '..', `dash-${process.pid}-${Date.now()}.bin`);
    await writeFile(file, randomBytes(300_000));
    cleanups.push(() => rm(file, { force: true }));
    const { server, port, dashboard } = await startServer({ uploadDir: uploads });
    const client = newClient(port, { clientId: 'files' });
    await client.connect();
    await client.sendFile(file).done;
    const before = parseMetrics(await (await fetch(`${dashboard}/metrics`)).text());
    const bytesBefore = seriesValue(before, 'tether_bytes_total', { direction: 'in' }) as number;
    expect(bytesBefore).toBeGreaterThan(300_000);
    expect(seriesValue(before, 'tether_file_bytes_total', { direction: 'in' })).toBe(300_000);
    expect(
      seriesValue(before, 'tether_transfers_total', { direction: 'in', outcome: 'completed' }),
    ).toBe(1);
    server.peers[0]?.close();
    await expect.poll(() => server.stats().sessions).toBe(0);
    const after = parseMetrics(await (await fetch(`${dashboard}/metrics`)).text());
    expect(seriesValue(after, 'tether_bytes_total', { direction: 'in' })).toBe(bytesBefore);
    expect(seriesValue(after, 'tether_sessions_expired_total')).toBe(1);
  });

  it('with processMetrics, prom-client process metrics are there too; an app registry serves its own', async () => {
    const registry = new Registry();
    const { dashboard } = await startServer({
      dashboard: { processMetrics: true, registry: registry as never },
    });
    const families = parseMetrics(await (await fetch(`${dashboard}/metrics`)).text());
    expect(families.get('process_cpu_seconds_total')?.type).toBe('COUNTER');
    expect(families.has('nodejs_eventloop_lag_seconds')).toBe(true);
    // Not those that walk every socket at each scrape.
    expect(families.has('nodejs_active_handles')).toBe(false);
    expect(families.has('process_open_fds')).toBe(false);
    expect(families.has('tether_sessions')).toBe(true);
    expect(registry.getSingleMetric('tether_sessions')).toBeDefined();
    expect(await registry.metrics()).toContain('# TYPE tether_sessions gauge');
    // A later server takes the same registry up again (a restart in the same process).
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    expect(registry.getSingleMetric('tether_sessions')).toBeUndefined();
    const again = await startServer({
      dashboard: { processMetrics: true, registry: registry as never },
    });
    const text = await (await fetch(`${again.dashboard}/metrics`)).text();
    expect(parseMetrics(text).has('tether_sessions')).toBe(true);
  });

  it('the parser checks fail on what a scraper would reject', () => {
    expect(() =>
      parseMetrics('# HELP a_total x\n# TYPE a_total counter\na_total{x="1" 2\n'),
    ).toThrow();
    expect(() => parseMetrics('# HELP a x\n# TYPE a counter\na 1\n')).toThrow(/_total/);
    expect(() =>
      parseMetrics('# HELP tether_g_total x\n# TYPE tether_g_total gauge\ntether_g_total 1\n'),
    ).toThrow(/_total/);
    expect(() => parseMetrics('u 1\n')).toThrow();
    const histogram = (second: number) =>
      `# HELP tether_h x\n# TYPE tether_h histogram\ntether_h_bucket{le="1"} 3\ntether_h_bucket{le="2"} ${second}\ntether_h_bucket{le="+Inf"} 3\ntether_h_sum 1\ntether_h_count 3\n`;
    expect(() => parseMetrics(histogram(3))).not.toThrow();
    expect(() => parseMetrics(histogram(2))).toThrow(/cumulative/);
  });
});

describe('dashboard - live stream and snapshot', () => {
  it('/events sends an update at once and then per interval, with the page asked for', async () => {
    const { port, dashboard } = await startServer({ dashboard: { intervalMs: 100 } });
    for (const id of ['c-3', 'c-1', 'c-2', 'other'])
      await newClient(port, { clientId: id }).connect();
    const response = await fetch(
      `${dashboard}/events?sort=client&dir=desc&filter=C-&size=2&page=0`,
    );
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const [first, second] = (await readEvents(response, 2)) as {
      time: number;
      peers: { total: number; matched: number; pages: number; rows: { clientId: string }[] };
      log: { kind: string; clientId: string }[];
      totals: { sessions: number };
    }[];
    expect(first?.peers.total).toBe(4);
    expect(first?.peers.matched).toBe(3);
    expect(first?.peers.pages).toBe(2);
    expect(first?.peers.rows.map((r) => r.clientId)).toEqual(['c-3', 'c-2']);
    expect(first?.totals.sessions).toBe(4);
    expect(first?.log.filter((e) => e.kind === 'connect').map((e) => e.clientId)).toEqual([
      'c-3',
      'c-1',
      'c-2',
      'other',
    ]);
    // The log is sent once: the next update carries only what came after.
    expect(second?.log).toEqual([]);
    expect((second?.time ?? 0) - (first?.time ?? 0)).toBeGreaterThanOrEqual(50);
  });

  it('viewers beyond maxStreams get 503; closing one frees its place', async () => {
    const { dashboard } = await startServer({ dashboard: { maxStreams: 1 } });
    const controller = new AbortController();
    const first = await fetch(`${dashboard}/events`, { signal: controller.signal });
    expect(first.status).toBe(200);
    expect((await fetch(`${dashboard}/events`)).status).toBe(503);
    controller.abort();
    await expect
      .poll(async () => {
        const next = await fetch(`${dashboard}/api/snapshot`);
        await next.text();
        const again = new AbortController();
        const stream = await fetch(`${dashboard}/events`, { signal: again.signal });
        again.abort();
        return stream.status;
      })
      .toBe(200);
  });

  it('no resume token and no secret in anything served', async () => {
    const { server, port, dashboard } = await startServer({
      secret: SECRET,
      dashboard: { token: TOKEN },
    });
    const client = newClient(port, { clientId: 'secretive', secret: SECRET });
    await client.connect();
    await client.send('hello');
    const peer = server.peers[0] as Peer;
    const headers = { Authorization: `Bearer ${TOKEN}` };
    const bodies = await Promise.all(
      ['/api/snapshot', '/metrics', '/', '/dashboard.js'].map(async (path) =>
        (await fetch(`${dashboard}${path}`, { headers })).text(),
      ),
    );
    const snapshot = bodies[0] as string;
    expect(snapshot).toContain('secretive');
    expect(snapshot).toContain(peer.id);
    for (const body of bodies) {
      expect(body).not.toContain(SECRET);
      expect(body).not.toContain(TOKEN);
      // A resume token is `${sessionId}.${secret}`.
      expect(body).not.toContain(`${peer.id}.`);
    }
  });
});
