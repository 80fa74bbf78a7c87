/**
 * The parent's view of the server side: it turns ServerHost reports (in-process or from the
 * netns child) into history entries, and keeps the few live facts the workload needs (which
 * sessions are connected now, how many sessions the server's own events say exist).
 */
import {
  complete,
  Direction,
  decodeValue,
  type FileOp,
  type History,
  now,
  OpStatus,
  type SendOp,
} from './history.js';
import type { QuietStats, ServerHost, ServerReport } from './server-host.js';

/** What the workload needs from the server side, wherever it runs. */
export interface ServerSide {
  readonly port: number;
  /** Some session has a live connection now (as far as the reports have arrived). */
  readonly connected: boolean;
  /** Sessions opened minus sessions expired, by the server's own events. */
  readonly liveSessions: number;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** A server-to-client send of `value` to the current session. */
  send(value: number, payload: string, incarnation: number): void;
  /** A server-to-client file transfer of the file at `path`, offered as `name`. */
  sendFile(name: string, path: string, size: number, sha256: string, incarnation: number): void;
  /** Gauges, with the sessions the server's events say exist at the same instant. */
  stats(): Promise<QuietStats & { liveSessions: number }>;
  /** Closes the server; a child process also reports what it still holds. */
  close(): Promise<void>;
}

export class ServerMirror {
  readonly #history: History;
  readonly #pending = new Map<number, SendOp>();
  readonly #files = new Map<string, FileOp>();
  readonly #connected = new Set<string>();
  #opened = 0;
  #expired = 0;

  constructor(history: History) {
    this.#history = history;
  }

  get connected(): boolean {
    return this.#connected.size > 0;
  }

  get liveSessions(): number {
    return this.#opened - this.#expired;
  }

  /** Records the invocation of a server-to-client send (before it is handed to the server). */
  invoke(value: number, incarnation: number, bytes: number): void {
    this.#pending.set(value, this.#history.invokeSend(Direction.S2C, value, incarnation, bytes));
  }

  /** Records the invocation of a server-to-client file transfer. */
  invokeFile(name: string, size: number, sha256: string, incarnation: number): void {
    const op: FileOp = {
      dir: Direction.S2C,
      name,
      size,
      sha256,
      incarnation,
      invokedAt: now(),
      status: OpStatus.PENDING,
    };
    this.#history.files.push(op);
    this.#files.set(name, op);
  }

  apply(report: ServerReport): void {
    const history = this.#history;
    switch (report.ev) {
      case 'conn': {
        const event: (typeof history.serverEvents)[number] = {
          at: report.at,
          session: report.session,
          kind: report.kind,
        };
        if (report.code !== undefined) event.code = report.code;
        if (report.resumed !== undefined) event.resumed = report.resumed;
        history.serverEvents.push(event);
        if (report.kind === 'connection') {
          this.#connected.add(report.session);
          if (!report.resumed) this.#opened++;
        } else if (report.kind === 'disconnect') {
          this.#connected.delete(report.session);
        } else if (report.kind === 'expire') {
          this.#connected.delete(report.session);
          this.#expired++;
        }
        break;
      }
      case 'delivery':
        history.deliveries.push({
          dir: Direction.C2S,
          value: decodeValue('v', report.raw),
          raw: report.raw,
          id: report.id,
          session: report.session,
          at: report.at,
        });
        break;
      case 'served':
        history.served.push({
          value: decodeValue('q', report.raw),
          raw: report.raw,
          session: report.session,
          at: report.at,
        });
        break;
      case 'queued': {
        const op = this.#pending.get(report.value);
        if (op !== undefined) op.target = report.session;
        break;
      }
      case 'skipped': {
        // Never handed to Tether: not an operation at all.
        const op = this.#pending.get(report.value);
        this.#pending.delete(report.value);
        const index = op === undefined ? -1 : history.sends.indexOf(op);
        if (index >= 0) history.sends.splice(index, 1);
        break;
      }
      case 'sent': {
        const op = this.#pending.get(report.value);
        this.#pending.delete(report.value);
        if (op !== undefined) {
          complete(op, report.id);
          op.completedAt = report.at;
        }
        break;
      }
      case 'send-failed': {
        const op = this.#pending.get(report.value);
        this.#pending.delete(report.value);
        if (op !== undefined) {
          op.status = OpStatus.FAIL;
          op.code = report.code;
          op.completedAt = report.at;
        }
        break;
      }
      case 'file-queued': {
        const op = this.#files.get(report.name);
        if (op !== undefined) op.target = report.session;
        break;
      }
      case 'file-skipped': {
        const op = this.#files.get(report.name);
        this.#files.delete(report.name);
        const index = op === undefined ? -1 : history.files.indexOf(op);
        if (index >= 0) history.files.splice(index, 1);
        break;
      }
      case 'file-sent':
      case 'file-failed': {
        const op = this.#files.get(report.name);
        this.#files.delete(report.name);
        if (op === undefined) break;
        op.status = report.ev === 'file-sent' ? OpStatus.OK : OpStatus.FAIL;
        if (report.ev === 'file-failed') op.code = report.code;
        op.completedAt = report.at;
        break;
      }
      case 'file-received':
        history.fileDeliveries.push({
          dir: Direction.C2S,
          name: report.name,
          size: report.size,
          sha256: report.sha256,
          session: report.session,
          at: report.at,
        });
        break;
      default:
        break;
    }
  }
}

/** The server in this process (proxy suite). */
export class LocalServer implements ServerSide {
  readonly #mirror: ServerMirror;
  readonly #host: ServerHost;

  constructor(mirror: ServerMirror, host: ServerHost) {
    this.#mirror = mirror;
    this.#host = host;
  }

  get port(): number {
    return this.#host.port;
  }

  get connected(): boolean {
    return this.#mirror.connected;
  }

  get liveSessions(): number {
    return this.#mirror.liveSessions;
  }

  start(): Promise<void> {
    return this.#host.start();
  }

  restart(): Promise<void> {
    return this.#host.restart();
  }

  send(value: number, payload: string, incarnation: number): void {
    this.#mirror.invoke(value, incarnation, Buffer.byteLength(payload));
    this.#host.send(value, payload);
  }

  sendFile(name: string, path: string, size: number, sha256: string, incarnation: number): void {
    this.#mirror.invokeFile(name, size, sha256, incarnation);
    this.#host.sendFile(name, path);
  }

  async stats(): Promise<QuietStats & { liveSessions: number }> {
    return { ...this.#host.stats(), liveSessions: this.#mirror.liveSessions };
  }

  close(): Promise<void> {
    return this.#host.close();
  }
}
