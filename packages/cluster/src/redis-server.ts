import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as net from 'node:net';
import { freePort } from './free-port.js';
import { which } from './which.js';

/** Settings of a {@link RedisServer}. */
export interface RedisServerOptions {
  /** Folder for the AOF (created if missing). */
  dir: string;
  /**
   * `always` (default): every write is fsynced before Redis answers it, so a crash of Redis
   * itself loses nothing a client was told; `everysec` may lose the last second.
   */
  appendfsync?: 'always' | 'everysec';
}

/**
 * Debian's `redis-server` on 127.0.0.1 and a port picked at start, with AOF persistence (no RDB
 * snapshots) and `noeviction`: the store of a Tether cluster. `restart()` keeps the port and
 * the data directory, so sessions survive it.
 */
export class RedisServer {
  readonly #options: RedisServerOptions;
  #child: ChildProcess | undefined;
  #port = 0;
  #exited: Promise<void> = Promise.resolve();

  constructor(options: RedisServerOptions) {
    this.#options = options;
  }

  /** Whether `redis-server` is installed (`apt-get install redis-server`). */
  static available(): boolean {
    return which('redis-server') !== undefined;
  }

  get port(): number {
    return this.#port;
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts Redis on a free port and resolves once it answers PING. */
  async start(): Promise<void> {
    mkdirSync(this.#options.dir, { recursive: true });
    for (let attempt = 0; ; attempt++) {
      this.#port = this.#port === 0 || attempt > 0 ? await freePort() : this.#port;
      try {
        await this.#spawn();
        return;
      } catch (error) {
        if (attempt >= 4) throw error;
      }
    }
  }

  /** Stops Redis: SIGTERM (it writes out the AOF) or, with `kill`, SIGKILL (a crash). */
  async stop(kill = false): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill(kill ? 'SIGKILL' : 'SIGTERM');
    await this.#exited;
    this.#child = undefined;
  }

  /** Stops Redis (crashes it with `kill`) and starts it again on the same port and data. */
  async restart(kill = false): Promise<void> {
    await this.stop(kill);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#spawn();
        return;
      } catch (error) {
        // The port may linger a moment after a kill.
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async #spawn(): Promise<void> {
    const binary = which('redis-server');
    if (binary === undefined) throw new Error('redis-server is not installed');
    const child = spawn(
      binary,
      [
        '--port',
        String(this.#port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.#options.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        this.#options.appendfsync ?? 'always',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        '--daemonize',
        'no',
        '--logfile',
        '',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    let exited = false;
    void this.#exited.then(() => {
      exited = true;
    });
    for (;;) {
      if (exited) throw new Error(`redis-server exited at start: ${stderr}`);
      if (await ping(this.#port)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer PING within 10 s: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

// One PING over RESP: true on +PONG (not while Redis still loads its AOF).
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}
