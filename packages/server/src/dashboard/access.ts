import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from './options.js';

/** Why a request was refused, or undefined when it may go on. */
export const Refusal = {
  /** No token, or the wrong one: 401. */
  TOKEN: 'token',
  /** A loopback dashboard reached under a name that is not loopback (DNS rebinding): 421. */
  HOST: 'host',
} as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal];

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Who may read the dashboard. With a token, every data request must carry it: the
 * `Authorization: Bearer` header, or the `token` query parameter. Without one (loopback only),
 * the Host header must name loopback: a web page whose own name an attacker pointed at
 * 127.0.0.1 (DNS rebinding) is same-origin with it in the browser, and would otherwise read it.
 */
export class Access {
  readonly #token: Buffer | undefined;

  constructor(token: string | undefined) {
    // Compared as digests: equal lengths for timingSafeEqual, and no early exit on the length.
    this.#token = token === undefined ? undefined : digest(token);
  }

  /** Checks a request for a data endpoint. */
  check(request: IncomingMessage, url: URL): Refusal | undefined {
    if (this.#token === undefined) return hostIsLoopback(request) ? undefined : Refusal.HOST;
    const given = bearer(request.headers.authorization) ?? url.searchParams.get('token');
    if (given === null || given === undefined) return Refusal.TOKEN;
    return timingSafeEqual(digest(given), this.#token) ? undefined : Refusal.TOKEN;
  }

  /** Checks a request for the page's own files (they hold no data). */
  checkPage(request: IncomingMessage): Refusal | undefined {
    return this.#token === undefined && !hostIsLoopback(request) ? Refusal.HOST : undefined;
  }
}

function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
  return match?.[1];
}

// The Host header's name without its port: `localhost:9090`, `127.0.0.1`, `[::1]:9090`.
function hostIsLoopback(request: IncomingMessage): boolean {
  const host = request.headers.host;
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name !== undefined && isLoopbackHost(name);
}
