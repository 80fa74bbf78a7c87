import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Scheduler } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';

/** Where and how to connect. */
export interface SocketTarget {
  host: string;
  port: number;
  tls: tls.ConnectionOptions | undefined;
}

/**
 * Opens a TCP (or TLS) connection; rejects with CONNECT_TIMEOUT after `timeoutMs`, with
 * ABORTED when `signal` fires, and with CONNECTION_LOST when the connection fails. The socket is
 * destroyed on every failure path.
 */
export function openSocket(
  target: SocketTarget,
  timeoutMs: number,
  signal: AbortSignal,
  scheduler: Scheduler,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new TetherError(ErrorCode.ABORTED, 'connect aborted'));
      return;
    }
    const socket =
      target.tls === undefined
        ? net.connect({ host: target.host, port: target.port })
        : tls.connect({
            // SNI takes host names only (RFC 6066); an IP address is left out.
            ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}),
            ALPNProtocols: [TETHER_ALPN],
            minVersion: 'TLSv1.2',
            ...target.tls,
            host: target.host,
            port: target.port,
          });
    const readyEvent = target.tls === undefined ? 'connect' : 'secureConnect';
    const timer = scheduler.setTimeout(
      () =>
        fail(
          new TetherError(
            ErrorCode.CONNECT_TIMEOUT,
            `no connection to ${target.host}:${target.port} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    const onAbort = (): void => fail(new TetherError(ErrorCode.ABORTED, 'connect aborted'));
    const onError = (error: Error): void =>
      fail(
        new TetherError(
          isTlsError(error) ? ErrorCode.TLS_FAILED : ErrorCode.CONNECTION_LOST,
          `cannot connect to ${target.host}:${target.port}: ${error.message}`,
          { cause: error },
        ),
      );
    const onReady = (): void => {
      if (socket instanceof tls.TLSSocket && socket.alpnProtocol !== TETHER_ALPN) {
        const chosen = socket.alpnProtocol || 'none';
        fail(
          new TetherError(ErrorCode.TLS_FAILED, `server chose ALPN ${chosen}, not ${TETHER_ALPN}`),
        );
        return;
      }
      cleanup();
      resolve(socket);
    };
    function cleanup(): void {
      scheduler.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(readyEvent, onReady);
    }
    function fail(error: TetherError): void {
      cleanup();
      socket.destroy();
      reject(error);
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once(readyEvent, onReady);
  });
}

const TETHER_ALPN = 'tether/1';

/** Certificate, protocol-version and handshake failures: retrying the same way cannot help. */
export function isTlsError(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    (code.startsWith('ERR_SSL') ||
      code.startsWith('ERR_TLS') ||
      code.includes('CERT') ||
      code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  );
}

export { sleep } from './sleep.js';
