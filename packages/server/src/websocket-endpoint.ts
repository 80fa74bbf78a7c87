import * as http from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type Scheduler,
  type Transport,
  WEBSOCKET_MAX_MESSAGE,
  WEBSOCKET_SUBPROTOCOL,
  WebSocketClose,
  WebSocketTransport,
} from '@tether/core';
import { ErrorCode, encodeError, PREFACE } from '@tether/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import type { ConnectionLimits } from './connection-limits.js';
import type { ResolvedWebSocketOptions } from './websocket-options.js';

/** What the endpoint asks of the server. */
export interface WebSocketHost {
  scheduler: Scheduler;
  /** The server's connection counts, shared with its TCP listener. */
  limits: ConnectionLimits;
  /** Whether the server is closing (upgrades get 503). */
  closing(): boolean;
  /** A WebSocket ready for the Tether handshake. */
  accept(transport: Transport, remoteAddress: string): void;
  /** An upgrade must complete its HTTP request within this long (slowloris). */
  requestTimeoutMs: number;
}

// A socket whose reading is paused (the server's inbound budget, a peer that does not read its
// replies) stops TCP reads; what ws had read already still arrives. Past this the peer is cut.
const MAX_PAUSED_BYTES = 1024 * 1024;
// Clients refused at the connection limit are asked to come back after this long (as on TCP).
const REFUSAL_RETRY_AFTER_MS = 1000;
// A refused WebSocket that never closes must not stay open.
const LINGER_MS = 1000;

/**
 * The server's WebSocket endpoint (the `ws` package): checks each upgrade request (path, origin,
 * subprotocol `tether.v1`, connection limits) before any WebSocket work, then hands the
 * WebSocket, as a {@link WebSocketTransport}, to the server like a TCP connection.
 */
export class WebSocketEndpoint {
  readonly #options: ResolvedWebSocketOptions;
  readonly #host: WebSocketHost;
  readonly #wss: WebSocketServer;
  /** Our own HTTP server, when the endpoint has a port of its own. */
  readonly #own: http.Server | undefined;
  readonly #onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void =>
    this.#upgrade(request, socket, head);

  constructor(options: ResolvedWebSocketOptions, host: WebSocketHost) {
    this.#options = options;
    this.#host = host;
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: WEBSOCKET_MAX_MESSAGE,
      // Compression would let a small message inflate past every limit, and costs CPU per byte.
      perMessageDeflate: false,
      handleProtocols: () => WEBSOCKET_SUBPROTOCOL,
    });
    if (options.server !== undefined) {
      this.#own = undefined;
      return;
    }
    const timeout = Math.max(host.requestTimeoutMs, 1000);
    this.#own = http.createServer(
      { headersTimeout: timeout, requestTimeout: timeout, connectionsCheckingInterval: 1000 },
      (_request, response) => {
        response.writeHead(426, { Connection: 'close', Upgrade: 'websocket' });
        response.end('Tether over WebSocket: upgrade with subprotocol tether.v1\n');
      },
    );
  }

  /** The own port's address, once listening (undefined when attached to a given server). */
  get address(): net.AddressInfo | undefined {
    const address = this.#own?.address();
    return address === null || typeof address !== 'object' ? undefined : address;
  }

  /** Starts taking upgrades: listens on the own port, or attaches to the given server. */
  listen(): Promise<void> {
    const own = this.#own;
    if (own === undefined) {
      this.#options.server?.on('upgrade', this.#onUpgrade);
      return Promise.resolve();
    }
    own.on('upgrade', this.#onUpgrade);
    return new Promise((resolve, reject) => {
      own.once('error', reject);
      own.listen(this.#options.port, this.#options.host, () => {
        own.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops taking upgrades (the WebSockets already open are the server's connections). */
  async close(): Promise<void> {
    const own = this.#own;
    if (own === undefined) {
      this.#options.server?.off('upgrade', this.#onUpgrade);
      return;
    }
    await new Promise<void>((resolve) => {
      own.close(() => resolve());
      own.closeAllConnections();
    });
  }

  #upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = pathOf(request.url);
    if (path !== this.#options.path) {
      // On a server we were given, other paths belong to its other upgrade listeners.
      if (this.#own !== undefined) refuse(socket, 404, 'Not Found');
      return;
    }
    if (this.#host.closing()) {
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !this.#options.allowOrigin(origin, request.headers.host)) {
      refuse(socket, 403, 'Forbidden', 'origin not allowed\n');
      return;
    }
    if (!offers(request.headers['sec-websocket-protocol'], WEBSOCKET_SUBPROTOCOL)) {
      refuse(socket, 400, 'Bad Request', `subprotocol ${WEBSOCKET_SUBPROTOCOL} required\n`);
      return;
    }
    const address = this.#addressOf(request);
    const remoteAddress =
      address === request.socket.remoteAddress
        ? `${address}:${request.socket.remotePort}`
        : address;
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      // Counted once the WebSocket exists (a failed upgrade never calls back, so never releases).
      if (!this.#host.limits.admit(address)) {
        this.#refuseFull(ws);
        return;
      }
      ws.once('close', () => this.#host.limits.release(address));
      const transport = new WebSocketTransport(ws, {
        scheduler: this.#host.scheduler,
        maxPausedBytes: MAX_PAUSED_BYTES,
      });
      if (this.#host.closing()) transport.destroy();
      else this.#host.accept(transport, remoteAddress);
    });
  }

  // As on TCP: the client learns TOO_MANY_CONNECTIONS and when to come back, in Tether's words.
  #refuseFull(ws: WebSocket): void {
    ws.on('error', () => {});
    const error = encodeError({
      code: ErrorCode.TOO_MANY_CONNECTIONS,
      message: 'connection limit reached',
      retryAfterMs: REFUSAL_RETRY_AFTER_MS,
    });
    ws.send(Buffer.concat([PREFACE, error]));
    ws.close(WebSocketClose.NORMAL);
    this.#host.scheduler.setTimeout(() => ws.terminate(), LINGER_MS, true);
  }

  // The socket's address, or the last X-Forwarded-For entry when the proxy in front is trusted.
  #addressOf(request: http.IncomingMessage): string {
    const own = request.socket.remoteAddress ?? '';
    if (!this.#options.trustForwardedFor) return own;
    const header = request.headers['x-forwarded-for'];
    const list = Array.isArray(header) ? header.join(',') : (header ?? '');
    const last = list.split(',').at(-1)?.trim() ?? '';
    return net.isIP(last) === 0 ? own : last;
  }
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const end = raw.indexOf('?');
  return end < 0 ? raw : raw.slice(0, end);
}

function offers(header: string | undefined, protocol: string): boolean {
  return header?.split(',').some((p) => p.trim() === protocol) ?? false;
}

// Answers an upgrade request with an HTTP error, before any WebSocket work.
function refuse(socket: Duplex, status: number, text: string, body = ''): void {
  socket.on('error', () => {});
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
