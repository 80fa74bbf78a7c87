import { isIP } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * The server's own HTTP listener for people and monitoring systems: a live page of the peers
 * (`/`), Prometheus metrics (`/metrics`), health (`/healthz`) and readiness (`/readyz`). See the
 * package README, section "Dashboard, metrics and health".
 */
export interface DashboardOptions {
  /**
   * Address to listen on. Default `127.0.0.1`. Any address but a loopback one needs `token`.
   */
  host?: string;
  /** Port; 0 picks a free one. Default 9090. */
  port?: number;
  /**
   * Required for every request but the page's own files when set, and it must be set for an
   * address other than loopback: `Authorization: Bearer <token>`, or `?token=<token>` for tools
   * that cannot send a header. The page takes it from its address's fragment (`/#token=...`),
   * which the browser never sends, and sends it as the header. At least 16 characters.
   */
  token?: string;
  /** How often the live page is updated. Default 1000 ms. */
  intervalMs?: number;
  /** Live pages open at once; the next gets 503. Default 16. */
  maxStreams?: number;
  /** Events the page's log keeps (connects, resumes, drops, evictions, expiries, transfers). Default 500. */
  logSize?: number;
  /** RTT samples the server keeps in each session for its graph (`peer.rttHistory()`). Default 30. */
  rttHistory?: number;
  /**
   * prom-client's default process and Node.js metrics (CPU, memory, event-loop lag, GC) in
   * `/metrics` as well. Default false: they cost more than the rest of the dashboard (their
   * event-loop-lag monitor wakes the process 100 times a second, about 0.35 % of a core on its
   * own, and each scrape reads `/proc` and the lag histogram's percentiles).
   */
  processMetrics?: boolean;
  /**
   * Register Tether's metrics in this prom-client registry instead of a private one (then
   * `/metrics` serves everything in it, the application's metrics too). Default: a private one.
   */
  registry?: Registry;
}

/** {@link DashboardOptions} with defaults, checked. */
export interface ResolvedDashboardOptions {
  host: string;
  port: number;
  token: string | undefined;
  intervalMs: number;
  maxStreams: number;
  logSize: number;
  rttHistory: number;
  processMetrics: boolean;
  registry: Registry | undefined;
  /** Whether `host` is a loopback address (then the Host header must name loopback too). */
  loopback: boolean;
}

/** Shortest token accepted. */
export const MIN_TOKEN_LENGTH = 16;

/** Whether `host` names only this machine: `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === 'localhost') return true;
  const family = isIP(bare);
  if (family === 4) return bare.startsWith('127.');
  if (family === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw new TypeError(`dashboard.${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** Fills in defaults and validates; a bad option throws a TypeError naming it. */
export function resolveDashboardOptions(options: DashboardOptions): ResolvedDashboardOptions {
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) {
    throw new TypeError(`dashboard.host must be a non-empty string, got ${String(host)}`);
  }
  const token = options.token;
  if (token !== undefined && (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH)) {
    throw new TypeError(
      `dashboard.token must be a string of at least ${MIN_TOKEN_LENGTH} characters`,
    );
  }
  const loopback = isLoopbackHost(host);
  if (!loopback && token === undefined) {
    throw new TypeError(
      `dashboard.token is required to listen on ${host}: without one the dashboard binds to loopback only`,
    );
  }
  return {
    host,
    port: integerIn('port', options.port ?? 9090, 0, 65535),
    token,
    intervalMs: integerIn('intervalMs', options.intervalMs ?? 1000, 50, 60_000),
    maxStreams: integerIn('maxStreams', options.maxStreams ?? 16, 1, 1000),
    logSize: integerIn('logSize', options.logSize ?? 500, 1, 100_000),
    rttHistory: integerIn('rttHistory', options.rttHistory ?? 30, 2, 1000),
    processMetrics: options.processMetrics ?? false,
    registry: options.registry,
    loopback,
  };
}
