import {
  type Scheduler,
  WEBSOCKET_MAX_MESSAGE,
  WEBSOCKET_SUBPROTOCOL,
  type WebSocketLike,
  WebSocketTransport,
} from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';

/** A WebSocket while it opens: the WHATWG interface plus its `open` event. */
type OpeningSocket = WebSocketLike & {
  addEventListener(type: 'open', listener: () => void): void;
};
type WebSocketClass = new (url: string, protocols: string[], options?: object) => OpeningSocket;

// A browser cannot stop the server from sending while reading is paused (when the client's own
// replies cannot leave): the server's windows bound what it sends; past this much the link is cut.
const MAX_PAUSED_BYTES = 64 * 1024 * 1024;

let wsPackage: Promise<WebSocketClass> | undefined;

/**
 * The runtime's WebSocket: the global one (browsers, Node 22+, Deno, Bun), else the `ws`
 * package, imported on first use so that clients on TCP never load it.
 */
function webSocketClass(): Promise<WebSocketClass> {
  const global = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (global !== undefined) return Promise.resolve(global);
  wsPackage ??= import('ws').then(
    (module) => module.WebSocket as unknown as WebSocketClass,
    (error: unknown) => {
      wsPackage = undefined;
      throw new TetherError(
        ErrorCode.INVALID_OPTION,
        'this runtime has no global WebSocket and the ws package cannot be loaded',
        { cause: error },
      );
    },
  );
  return wsPackage;
}

/**
 * Opens a WebSocket to `url` with subprotocol `tether.v1`; rejects with CONNECT_TIMEOUT after
 * `timeoutMs`, with ABORTED when `signal` fires, with CONNECTION_LOST when it fails, and with
 * PREFACE_INVALID when the server does not speak `tether.v1`. The socket is closed on every
 * failure path.
 */
export async function openWebSocket(
  url: string,
  timeoutMs: number,
  signal: AbortSignal,
  scheduler: Scheduler,
): Promise<WebSocketTransport> {
  const WebSocket = await webSocketClass();
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new TetherError(ErrorCode.ABORTED, 'connect aborted'));
      return;
    }
    let socket: OpeningSocket;
    try {
      // The options are ws's (a global WebSocket ignores them): no compression, the message cap.
      socket = new WebSocket(url, [WEBSOCKET_SUBPROTOCOL], {
        perMessageDeflate: false,
        maxPayload: WEBSOCKET_MAX_MESSAGE,
      });
    } catch (error) {
      reject(
        new TetherError(ErrorCode.CONNECTION_LOST, `cannot connect to ${url}: ${String(error)}`, {
          cause: error,
        }),
      );
      return;
    }
    let settled = false;
    const timer = scheduler.setTimeout(
      () =>
        fail(
          new TetherError(
            ErrorCode.CONNECT_TIMEOUT,
            `no connection to ${url} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    const onAbort = (): void => fail(new TetherError(ErrorCode.ABORTED, 'connect aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      scheduler.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      return true;
    };
    function fail(error: TetherError): void {
      if (!finish()) return;
      try {
        socket.close();
      } catch {
        // Not open yet in some runtimes: it is dropped with the connection.
      }
      reject(error);
    }
    // Before the open, an error is followed by a close; the close (with its code) decides.
    socket.addEventListener('error', (event) => {
      const detail = event.error instanceof Error ? `: ${event.error.message}` : '';
      fail(new TetherError(ErrorCode.CONNECTION_LOST, `cannot connect to ${url}${detail}`));
    });
    socket.addEventListener('close', (event) =>
      fail(
        new TetherError(
          ErrorCode.CONNECTION_LOST,
          `cannot connect to ${url}: closed with code ${event.code}`,
        ),
      ),
    );
    socket.addEventListener('open', () => {
      if (socket.protocol !== WEBSOCKET_SUBPROTOCOL) {
        fail(
          new TetherError(
            ErrorCode.PREFACE_INVALID,
            `${url} did not accept subprotocol ${WEBSOCKET_SUBPROTOCOL}: not a Tether endpoint`,
          ),
        );
        return;
      }
      if (!finish()) return;
      resolve(new WebSocketTransport(socket, { scheduler, maxPausedBytes: MAX_PAUSED_BYTES }));
    });
  });
}
