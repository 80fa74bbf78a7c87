// The browser build's open-socket.ts (package.json "browser" field): a page has no TCP, only
// WebSocket (the `url` option).
import type { Scheduler } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';

export { sleep } from './sleep.js';

/** Where and how to connect (TCP is not available here). */
export interface SocketTarget {
  host: string;
  port: number;
  tls: unknown;
}

/** Rejects: a browser cannot open TCP connections; give the `url` option (ws:// or wss://). */
export function openSocket(
  target: SocketTarget,
  _timeoutMs: number,
  _signal: AbortSignal,
  _scheduler: Scheduler,
): Promise<never> {
  return Promise.reject(
    new TetherError(
      ErrorCode.INVALID_OPTION,
      `cannot connect to ${target.host}:${target.port} over TCP in a browser: give the url option (ws:// or wss://)`,
    ),
  );
}

/** No TLS errors without TLS sockets. */
export function isTlsError(_error: Error): boolean {
  return false;
}
