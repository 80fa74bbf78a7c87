import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Scheduler } from '@tether/core';
import { ErrorCode, encodeError, PREFACE } from '@tether/protocol';
import { ConnectionLimits } from './connection-limits.js';
import type { ResolvedServerOptions, TlsIdentity } from './options.js';

const TETHER_ALPN = 'tether/1';
// Clients refused at the connection limit are asked to come back after this long.
const REFUSAL_RETRY_AFTER_MS = 1000;
// A refused socket that never reads must not stay open.
const LINGER_MS = 1000;

/** What the listener hands the server. */
export interface ListenerHost {
  /** Whether the server is closing (new connections are refused). */
  closing(): boolean;
  /** A connection ready for the Tether handshake (after TLS, when TLS is on). */
  accept(socket: net.Socket, tlsIdentity: TlsIdentity | undefined): void;
  /** A TLS handshake, its ALPN or its client certificate failed. */
  tlsFailed(cause: Error, remoteAddress: string): void;
}

/**
 * The server's TCP (or TLS) listener: it enforces the connection limits on raw connections,
 * before any TLS work, checks ALPN and the client certificate once TLS is up, and hands each
 * accepted socket to the server.
 */
export class Listener {
  readonly server: net.Server;
  readonly #options: ResolvedServerOptions;
  readonly #scheduler: Scheduler;
  readonly #host: ListenerHost;
  /** The server's connection counts (its WebSocket endpoint shares them). */
  readonly limits: ConnectionLimits;
  /** Raw sockets refused at the limits (so their TLS wrapper's failure is not miscounted). */
  readonly #refused = new WeakSet<net.Socket>();
  /**
   * The 'close' listener of every admitted socket, one for all (a closure and a `once` wrapper
   * each cost some 300 bytes per idle connection). It reads the peer's address again: the socket
   * keeps the one read in #admit (Node caches it), so the count released is the one admitted.
   */
  readonly #released: (this: net.Socket) => void;

  constructor(options: ResolvedServerOptions, scheduler: Scheduler, host: ListenerHost) {
    this.#options = options;
    this.#scheduler = scheduler;
    this.#host = host;
    this.limits = new ConnectionLimits(options.maxConnections, options.maxConnectionsPerAddress);
    const limits = this.limits;
    this.#released = function released(this: net.Socket): void {
      limits.release(this.remoteAddress ?? '');
    };
    const onSocket = (socket: net.Socket): void => this.#ready(socket);
    const { tls: tlsOptions, requireClientCert, tlsHandshakeTimeoutMs } = options;
    if (tlsOptions === undefined) {
      this.server = net.createServer(onSocket);
    } else {
      const secure = tls.createServer(
        {
          ALPNProtocols: [TETHER_ALPN],
          minVersion: 'TLSv1.2',
          handshakeTimeout: tlsHandshakeTimeoutMs,
          // The certificate is checked in #ready instead of by the TLS layer, which would hang
          // up without a word: there the client is told TLS_FAILED and does not retry.
          requestCert: requireClientCert,
          rejectUnauthorized: false,
          ...tlsOptions,
        },
        onSocket,
      );
      secure.on('tlsClientError', (error, socket) => {
        // Node reports a handshake timeout but leaves the socket open: close it. (Other failures
        // close by themselves, after the alert that tells the client why.)
        if ((error as { code?: string }).code === 'ERR_TLS_HANDSHAKE_TIMEOUT') socket.destroy();
        // A socket #admit refused (destroyed before TLS) is a refusal, not a TLS failure.
        const raw = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent;
        if (raw !== undefined && this.#refused.has(raw)) return;
        this.#host.tlsFailed(error, `${socket.remoteAddress}:${socket.remotePort}`);
      });
      this.server = secure;
    }
    // 'connection' sees every raw TCP connection, before TLS, first.
    this.server.prependListener('connection', (socket: net.Socket) => this.#admit(socket));
  }

  // Raw TCP connections, before any TLS: enforce the connection limits here.
  #admit(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '';
    if (this.#host.closing()) {
      this.#refuse(socket, false);
      return;
    }
    if (!this.limits.admit(address)) {
      this.#refuse(socket, true);
      return;
    }
    socket.on('close', this.#released);
  }

  /** Connections refused at the limits (TCP and WebSocket). */
  get refusals(): number {
    return this.limits.refusals;
  }

  #refuse(socket: net.Socket, full: boolean): void {
    socket.on('error', () => {});
    this.#refused.add(socket);
    // Over TLS there is no way to say why before a handshake we refuse to spend on it.
    if (!full || this.#options.tls !== undefined) {
      socket.destroy();
      return;
    }
    const error = encodeError({
      code: ErrorCode.TOO_MANY_CONNECTIONS,
      message: 'connection limit reached',
      retryAfterMs: REFUSAL_RETRY_AFTER_MS,
    });
    socket.end(Buffer.concat([PREFACE, error]));
    this.#linger(socket);
  }

  // A connection ready for the Tether handshake (after TLS, when TLS is on).
  #ready(socket: net.Socket): void {
    // Refused by #admit (ended or destroyed) before the handshake could start.
    if (socket.destroyed || socket.writableEnded || this.#host.closing()) {
      socket.destroy();
      return;
    }
    if (!(socket instanceof tls.TLSSocket)) {
      this.#host.accept(socket, undefined);
      return;
    }
    const refusal =
      socket.alpnProtocol !== TETHER_ALPN
        ? `ALPN ${socket.alpnProtocol || 'none'} instead of ${TETHER_ALPN}`
        : this.#options.requireClientCert && !socket.authorized
          ? `client certificate refused: ${socket.authorizationError ?? 'none presented'}`
          : undefined;
    if (refusal === undefined) {
      this.#host.accept(socket, tlsIdentityOf(socket));
      return;
    }
    this.#host.tlsFailed(new Error(refusal), `${socket.remoteAddress}:${socket.remotePort}`);
    socket.on('error', () => {});
    socket.end(
      Buffer.concat([PREFACE, encodeError({ code: ErrorCode.TLS_FAILED, message: refusal })]),
    );
    this.#linger(socket);
  }

  #linger(socket: net.Socket): void {
    this.#scheduler.setTimeout(() => socket.destroy(), LINGER_MS, true);
  }
}

function tlsIdentityOf(socket: tls.TLSSocket): TlsIdentity {
  const certificate = socket.getPeerCertificate();
  const present = certificate !== null && Object.keys(certificate).length > 0;
  const cn = present ? certificate.subject?.CN : undefined;
  return {
    authorized: socket.authorized,
    subject: Array.isArray(cn) ? cn[0] : cn,
    fingerprint256: present ? certificate.fingerprint256 : undefined,
    protocol: socket.getProtocol() ?? undefined,
  };
}
