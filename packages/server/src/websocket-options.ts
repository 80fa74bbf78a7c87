import type * as http from 'node:http';
import { port as checkPort } from '@tether/core';

/**
 * Where and how the server takes Tether over WebSocket (subprotocol `tether.v1`, binary
 * messages), beside its TCP listener: on a port of its own, or on an existing HTTP(S) server's
 * upgrade requests at `path`.
 */
export interface WebSocketOptions {
  /**
   * Listen for WebSocket upgrades on this port (0 picks a free one), plain HTTP: for `wss://`
   * give `server` an `https.Server`, or put a TLS-terminating proxy in front. Default 0 unless
   * `server` is given.
   */
  port?: number;
  /** Interface of the own port. Default the server's `host`. */
  host?: string;
  /**
   * Take upgrade requests for `path` on this HTTP(S) server instead of a port of our own
   * (requests for other paths are left to the server's other `upgrade` listeners). Its
   * listening and closing are yours.
   */
  server?: http.Server;
  /** Path of the endpoint; other paths get 404 on the own port. Default `/tether`. */
  path?: string;
  /**
   * Browser origins allowed to connect (exact `scheme://host[:port]` strings), `'*'` for any,
   * or a function deciding. Other origins get HTTP 403 before the upgrade. Default: the same
   * origin only (the Origin's host equals the request's Host). A request without an Origin
   * header (no browser sends one without it: a Node client, a proxy's health check) is allowed.
   */
  origins?: readonly string[] | '*' | ((origin: string) => boolean);
  /**
   * Name connections by the last address in X-Forwarded-For (the client as the proxy in front
   * saw it) instead of the socket's: connection limits per address and events then use it.
   * Only with a proxy you run that sets the header: otherwise anyone can claim any address.
   * Default false.
   */
  trustForwardedFor?: boolean;
}

/** {@link WebSocketOptions} with defaults filled in. */
export interface ResolvedWebSocketOptions {
  port: number;
  host: string | undefined;
  server: http.Server | undefined;
  path: string;
  allowOrigin: (origin: string, host: string | undefined) => boolean;
  trustForwardedFor: boolean;
}

/** Validates the `webSocket` option; a bad value throws a TypeError naming it. */
export function resolveWebSocketOptions(options: WebSocketOptions): ResolvedWebSocketOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('webSocket must be an object');
  }
  if (options.server !== undefined && options.port !== undefined) {
    throw new TypeError('webSocket: give port or server, not both');
  }
  const path = options.path ?? '/tether';
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`webSocket.path must start with /, got ${String(path)}`);
  }
  return {
    port: checkPort('webSocket.port', options.port ?? 0),
    host: options.host,
    server: options.server,
    path,
    allowOrigin: originCheck(options.origins),
    trustForwardedFor: options.trustForwardedFor ?? false,
  };
}

function originCheck(
  origins: WebSocketOptions['origins'],
): (origin: string, host: string | undefined) => boolean {
  if (origins === undefined) return sameOrigin;
  if (origins === '*') return () => true;
  if (typeof origins === 'function') return (origin) => origins(origin) === true;
  if (!Array.isArray(origins) || !origins.every((o) => typeof o === 'string')) {
    throw new TypeError("webSocket.origins must be an array of origins, '*' or a function");
  }
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  return (origin) => allowed.has(origin.toLowerCase());
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
