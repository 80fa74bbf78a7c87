import * as net from 'node:net';
import * as tls from 'node:tls';
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
            servername: target.host,
            ALPNProtocols: ['tether/1'],
            ...target.tls,
            host: target.host,
            port: target.port,
          });
    const readyEvent = target.tls === undefined ? 'connect' : 'secureConnect';
    const timer = setTimeout(
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
          ErrorCode.CONNECTION_LOST,
          `cannot connect to ${target.host}:${target.port}: ${error.message}`,
          { cause: error },
        ),
      );
    const onReady = (): void => {
      cleanup();
      resolve(socket);
    };
    function cleanup(): void {
      clearTimeout(timer);
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

/** Resolves after `ms`, or rejects with ABORTED when `signal` fires first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new TetherError(ErrorCode.ABORTED, 'aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new TetherError(ErrorCode.ABORTED, 'aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
