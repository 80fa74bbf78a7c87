/**
 * The server side of a chaos run: a TetherServer that can be restarted on the same port, whose
 * every observable event is reported as a plain, serialisable record. The proxy suite runs it
 * in-process; the netns suite runs it in a child process inside the namespace (ns-server.ts) and
 * ships the same records over stdout. Either way the parent turns them into history (mirror.ts),
 * so both suites are checked by the same code.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Peer, TetherServer } from '@tether/server';
import { now } from './history.js';

/** Server settings of a run. */
export interface ServerSettings {
  host: string;
  /** 0 picks a free port on the first start; restarts reuse the bound one. */
  port: number;
  pingIntervalMs: number;
  evictAfterMs: number;
  sessionTtlMs: number;
  helloTimeoutMs: number;
  /** Clients are told to come back after this long when the server restarts. */
  retryAfterMs: number;
  /** Where uploads are stored (file transfers on when set). */
  uploadDir?: string;
  /**
   * Also serve WebSocket; `port` is then the WebSocket endpoint's (the one restarts keep and
   * clients reach), and TCP listens on any free port.
   */
  webSocket?: boolean;
}

/** What the server side reports; `at` is the reporting process's clock (history.now()). */
export type ServerReport =
  | { ev: 'listening'; port: number }
  | {
      ev: 'conn';
      kind: 'connection' | 'disconnect' | 'evict' | 'expire';
      session: string;
      code?: string;
      resumed?: boolean;
      at: number;
    }
  | { ev: 'delivery'; raw: string; id: string; session: string; at: number }
  | { ev: 'served'; raw: string; session: string; at: number }
  /** A server-to-client send was handed to `peer.send()` for `session`. */
  | { ev: 'queued'; value: number; session: string }
  /** A server-to-client send was not made: no session to send to (just after a restart). */
  | { ev: 'skipped'; value: number }
  | { ev: 'sent'; value: number; id: string; at: number }
  | { ev: 'send-failed'; value: number; code: string | undefined; at: number }
  /** A server-to-client file was handed to `peer.sendFile()` for `session`. */
  | { ev: 'file-queued'; name: string; session: string }
  | { ev: 'file-skipped'; name: string }
  | { ev: 'file-sent'; name: string; at: number }
  | { ev: 'file-failed'; name: string; code: string | undefined; at: number }
  /** The server stored a file from the client: size and SHA-256 of the bytes on disk. */
  | { ev: 'file-received'; name: string; size: number; sha256: string; session: string; at: number }
  | { ev: 'stats'; token: number; stats: QuietStats }
  | { ev: 'done'; token: number }
  | { ev: 'closed'; token: number; handles: Record<string, number> };

/** Server gauges for the final checks. */
export interface QuietStats {
  connections: number;
  sessions: number;
  peers: { id: string; connected: boolean }[];
}

export class ServerHost {
  readonly #settings: ServerSettings;
  readonly #report: (report: ServerReport) => void;
  #server: TetherServer | undefined;
  #port: number;
  /** The session last opened or resumed: where server-to-client sends go. */
  #current: Peer | undefined;

  constructor(settings: ServerSettings, report: (report: ServerReport) => void) {
    this.#settings = settings;
    this.#report = report;
    this.#port = settings.port;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    const s = this.#settings;
    const server = new TetherServer({
      host: s.host,
      port: s.webSocket ? 0 : this.#port,
      ...(s.webSocket ? { webSocket: { port: this.#port } } : {}),
      pingIntervalMs: s.pingIntervalMs,
      evictAfterMs: s.evictAfterMs,
      sessionTtlMs: s.sessionTtlMs,
      helloTimeoutMs: s.helloTimeoutMs,
      authFailureDelayMs: 0,
      ...(s.uploadDir === undefined ? {} : { uploadDir: s.uploadDir }),
      onRequest: (payload, peer) => {
        const raw = payload.toString('utf8');
        this.#report({ ev: 'served', raw, session: peer.id, at: now() });
        return replyTo(raw);
      },
    });
    server.on('connection', (peer, info) => {
      this.#current = peer;
      this.#conn('connection', peer, undefined, info.resumed);
    });
    server.on('disconnect', (peer, info) => this.#conn('disconnect', peer, info.code));
    server.on('evict', (peer, info) => this.#conn('evict', peer, info.code));
    server.on('expire', (peer) => this.#conn('expire', peer));
    server.on('message', (message, peer) =>
      this.#report({
        ev: 'delivery',
        raw: message.text(),
        id: message.id,
        session: peer.id,
        at: now(),
      }),
    );
    server.on('file', (file, peer) => {
      const at = now();
      const session = peer.id;
      void digestFile(file.path).then(({ size, sha256 }) =>
        this.#report({ ev: 'file-received', name: file.name, size, sha256, session, at }),
      );
    });
    // Handshake failures (a black hole can cut a HELLO in half) are the server's business.
    server.on('error', () => {});
    this.#server = server;
    const address = await server.listen();
    this.#port = (s.webSocket ? server.webSocketAddress : address)?.port ?? 0;
    this.#report({ ev: 'listening', port: this.#port });
  }

  /** A crash-like restart: close without draining, then a new server on the same port. */
  async restart(): Promise<void> {
    await this.#close();
    this.#current = undefined;
    await this.start();
  }

  /** Sends `payload` (carrying `value`) to the current session, reporting what happened. */
  send(value: number, payload: string): void {
    const peer = this.#current;
    if (peer === undefined || peer.closed) {
      this.#report({ ev: 'skipped', value });
      return;
    }
    this.#report({ ev: 'queued', value, session: peer.id });
    peer.send(payload).then(
      (receipt) => this.#report({ ev: 'sent', value, id: receipt.id, at: now() }),
      (error: unknown) =>
        this.#report({
          ev: 'send-failed',
          value,
          code: (error as { code?: string }).code,
          at: now(),
        }),
    );
  }

  /** Sends the file at `path` as `name` to the current session, reporting what happened. */
  sendFile(name: string, path: string): void {
    const peer = this.#current;
    if (peer === undefined || peer.closed) {
      this.#report({ ev: 'file-skipped', name });
      return;
    }
    this.#report({ ev: 'file-queued', name, session: peer.id });
    peer.sendFile(path, { name }).done.then(
      () => this.#report({ ev: 'file-sent', name, at: now() }),
      (error: unknown) =>
        this.#report({
          ev: 'file-failed',
          name,
          code: (error as { code?: string }).code,
          at: now(),
        }),
    );
  }

  stats(): QuietStats {
    const server = this.#server;
    if (server === undefined) return { connections: 0, sessions: 0, peers: [] };
    const { connections, sessions } = server.stats();
    return {
      connections,
      sessions,
      peers: server.peers.map((p) => ({ id: p.id, connected: p.connected })),
    };
  }

  async close(): Promise<void> {
    await this.#close();
    this.#current = undefined;
  }

  async #close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.close({ drainTimeoutMs: 0, retryAfterMs: this.#settings.retryAfterMs });
  }

  #conn(
    kind: 'connection' | 'disconnect' | 'evict' | 'expire',
    peer: Peer,
    code?: string,
    resumed?: boolean,
  ): void {
    const report: ServerReport = { ev: 'conn', kind, session: peer.id, at: now() };
    if (code !== undefined) report.code = code;
    if (resumed !== undefined) report.resumed = resumed;
    this.#report(report);
  }
}

/** Size and SHA-256 of the bytes a receiver stored (not what it claims: what is on disk). */
export async function digestFile(path: string): Promise<{ size: number; sha256: string }> {
  const bytes = await readFile(path);
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The request handler's reply: `{"q":7}` is answered `{"r":7}`. */
export function replyTo(raw: string): string {
  try {
    const value = (JSON.parse(raw) as { q?: unknown }).q;
    return JSON.stringify({ r: value });
  } catch {
    return JSON.stringify({ r: null });
  }
}

/** TCP sockets, listeners, timers and child processes alive now, by type. */
export function liveHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED_HANDLES.has(type)) counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

export const WATCHED_HANDLES: ReadonlySet<string> = new Set([
  'TCPSocketWrap',
  'TCPServerWrap',
  'TCPWRAP',
  'Timeout',
  'ProcessWrap',
]);

/** Handles in `after` beyond `baseline`, by type (only positive differences). */
export function handlesBeyond(
  baseline: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const leaked: Record<string, number> = {};
  for (const [type, n] of Object.entries(after)) {
    const extra = n - (baseline[type] ?? 0);
    if (extra > 0) leaked[type] = extra;
  }
  return leaked;
}
