import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TetherServer } from '../server.js';
import { Access, Refusal } from './access.js';
import { LiveStreams } from './live-stream.js';
import { Metrics } from './metrics.js';
import { Monitor } from './monitor.js';
import type { ResolvedDashboardOptions } from './options.js';
import { parsePeerQuery } from './peer-view.js';
import { Surveyor } from './survey.js';

// The page: plain HTML, CSS and JavaScript shipped with the package (static/), no build step.
const PAGE_FILES = {
  '/': { file: 'dashboard.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
} as const;
type PagePath = keyof typeof PAGE_FILES;

/** Everything else needs the token (or, without one, a loopback Host). */
const DATA_PATHS = new Set(['/healthz', '/readyz', '/metrics', '/events', '/api/snapshot']);

// Same path from src/dashboard/ (sources) and dist/dashboard/ (built).
const STATIC_DIR = new URL('../../static/', import.meta.url);

/**
 * No inline script or style, nothing from elsewhere: a peer string that slipped into markup
 * could run nothing. The page only talks to its own origin.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const COMMON_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
} as const;

// The same as a flat [name, value, ...] list, the form writeHead takes without walking an object
// per reply (a scrape a second pays it).
const COMMON_HEADER_LIST: readonly string[] = Object.entries(COMMON_HEADERS).flat();

const TEXT = 'text/plain; charset=utf-8';
const EVENT_STREAM = 'text/event-stream; charset=utf-8';

function hasSocket(
  response: http.ServerResponse,
): response is http.ServerResponse & { socket: Socket } {
  return response.socket !== null;
}

/** The `Date` header's value, made again when the second changes. */
class HttpDate {
  #second = Number.NaN;
  #text = '';

  now(): string {
    const ms = Date.now();
    const second = Math.floor(ms / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#text = new Date(ms).toUTCString();
    }
    return this.#text;
  }
}

/**
 * The dashboard's HTTP listener: the live page, `/events` (its Server-Sent Events), `/api/snapshot`,
 * `/metrics`, `/healthz` and `/readyz`. Built on the server's public API only (events, `stats()`,
 * `peers`, `draining`). Nothing it serves holds a resume token or a secret.
 */
export class Dashboard {
  readonly #server: TetherServer;
  readonly #options: ResolvedDashboardOptions;
  readonly #http: http.Server;
  readonly #access: Access;
  readonly #monitor: Monitor;
  readonly #metrics: Metrics;
  readonly #streams: LiveStreams;
  readonly #page = new Map<PagePath, Buffer>();
  readonly #date = new HttpDate();

  constructor(server: TetherServer, options: ResolvedDashboardOptions) {
    this.#server = server;
    this.#options = options;
    this.#access = new Access(options.token);
    this.#monitor = new Monitor(server, { logSize: options.logSize });
    const surveyor = new Surveyor(server, this.#monitor);
    this.#metrics = new Metrics(server, this.#monitor, surveyor, options);
    this.#streams = new LiveStreams(server, this.#monitor, surveyor, options);
    this.#http = http.createServer(
      { headersTimeout: 10_000, requestTimeout: 10_000, maxHeaderSize: 8192 },
      (request, response) => this.#handle(request, response),
    );
    // Browsers keep a few connections each; more than this is not a person looking.
    this.#http.maxConnections = options.maxStreams * 4 + 16;
  }

  /** Loads the page and starts listening. */
  async listen(): Promise<AddressInfo> {
    for (const [path, { file }] of Object.entries(PAGE_FILES)) {
      this.#page.set(path as PagePath, await readFile(new URL(file, STATIC_DIR)));
    }
    const { host, port } = this.#options;
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(port, host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    return this.#http.address() as AddressInfo;
  }

  /** The bound address, once listening. */
  get address(): AddressInfo | undefined {
    return (this.#http.address() as AddressInfo | null) ?? undefined;
  }

  /** Ends the live streams, stops listening and detaches from the server. */
  async close(): Promise<void> {
    this.#streams.close();
    this.#monitor.close();
    this.#metrics.close();
    if (!this.#http.listening) return;
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeAllConnections();
    await closed;
  }

  #handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    const path = url.pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      this.#reply(response, 405, 'method not allowed\n', TEXT, ['Allow', 'GET, HEAD']);
      return;
    }
    if (path === '/favicon.ico') {
      this.#reply(response, 204, '');
      return;
    }
    const page = this.#page.get(path as PagePath);
    if (page !== undefined) {
      if (!this.#allowed(response, this.#access.checkPage(request))) return;
      this.#reply(response, 200, page, PAGE_FILES[path as PagePath].type);
      return;
    }
    if (!DATA_PATHS.has(path)) {
      this.#reply(response, 404, 'not found\n');
      return;
    }
    if (!this.#allowed(response, this.#access.check(request, url))) return;
    switch (path) {
      case '/healthz':
        this.#reply(response, 200, 'ok\n');
        return;
      case '/readyz':
        this.#readyz(response);
        return;
      case '/metrics':
        this.#sendMetrics(response);
        return;
      case '/events':
        this.#events(response, url);
        return;
      case '/api/snapshot':
        this.#snapshot(response, url);
        return;
    }
  }

  #allowed(response: http.ServerResponse, refusal: Refusal | undefined): boolean {
    if (refusal === undefined) return true;
    if (refusal === Refusal.TOKEN) {
      this.#reply(response, 401, 'token required\n', TEXT, [
        'WWW-Authenticate',
        'Bearer realm="tether"',
      ]);
    } else {
      // 421: this server does not answer for that name.
      this.#reply(response, 421, 'this dashboard answers to loopback names only\n');
    }
    return false;
  }

  /** Answers with `body`; `headers`: more as a flat [name, value, ...] list. */
  #reply(
    response: http.ServerResponse,
    status: number,
    body: string | Buffer,
    contentType: string = TEXT,
    headers: readonly string[] = [],
  ): void {
    // Node's own Date header arms a timer each time its one-second cache runs out: every scrape.
    response.sendDate = false;
    response.writeHead(status, [
      ...COMMON_HEADER_LIST,
      'Date',
      this.#date.now(),
      'Content-Type',
      contentType,
      'Content-Length',
      String(Buffer.byteLength(body)),
      ...headers,
    ]);
    response.end(response.req.method === 'HEAD' ? undefined : body);
  }

  /** `/readyz`: listening and not draining. */
  #readyz(response: http.ServerResponse): void {
    const server = this.#server;
    if (server.draining) this.#reply(response, 503, 'draining\n');
    else if (!server.listening) this.#reply(response, 503, 'not listening\n');
    else this.#reply(response, 200, 'ready\n');
  }

  /** `/metrics`: Prometheus text format. */
  #sendMetrics(response: http.ServerResponse): void {
    this.#metrics.text().then(
      (text) => this.#reply(response, 200, text, this.#metrics.contentType),
      (error: unknown) => this.#reply(response, 500, `metrics failed: ${String(error)}\n`),
    );
  }

  /** `/events`: the live page's stream. */
  #events(response: http.ServerResponse, url: URL): void {
    if (response.req.method === 'HEAD') {
      this.#reply(response, 200, '', EVENT_STREAM);
      return;
    }
    // Queued behind a pipelined response on the same connection: the stream writes to its
    // socket itself, and has none yet.
    if (!hasSocket(response)) {
      this.#reply(response, 503, 'open /events on a connection of its own\n', TEXT, [
        'Retry-After',
        '1',
      ]);
      return;
    }
    for (const [name, value] of Object.entries(COMMON_HEADERS)) response.setHeader(name, value);
    if (!this.#streams.open(response, parsePeerQuery(url.searchParams))) {
      this.#reply(response, 503, 'too many live pages open\n', TEXT, ['Retry-After', '5']);
    }
  }

  /** `/api/snapshot`: one update as JSON, for scripts. */
  #snapshot(response: http.ServerResponse, url: URL): void {
    const update = this.#streams.once(parsePeerQuery(url.searchParams));
    this.#reply(response, 200, JSON.stringify(update), 'application/json; charset=utf-8');
  }
}
