import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { freePort, waitForPort } from './free-port.js';
import { which } from './which.js';

/** One backend of the proxy: a server instance and its dashboard (health checks). */
export interface Backend {
  name: string;
  port: number;
  dashboardPort: number;
}

/** Settings of {@link HAProxy}. */
export interface HAProxyOptions {
  /** Where the generated configuration is written. */
  configPath: string;
  backends: Backend[];
  /** Health-check interval. Default 100 ms. */
  checkIntervalMs?: number;
}

/**
 * Debian's HAProxy in TCP mode on 127.0.0.1 and a port picked at start, in front of the server
 * instances. Each instance is checked over HTTP on its dashboard listener: `GET /readyz` is 503
 * from the start of a graceful close, so a draining instance is out of the rotation within one
 * interval, and a killed one (connection refused) too. A connection to an instance that refuses
 * it is redispatched to another (`retries`, `option redispatch`).
 */
export class HAProxy {
  readonly #options: HAProxyOptions;
  #child: ChildProcess | undefined;
  #port = 0;
  #exited: Promise<void> = Promise.resolve();

  constructor(options: HAProxyOptions) {
    this.#options = options;
  }

  /** Whether `haproxy` is installed (`apt-get install haproxy`). */
  static available(): boolean {
    return which('haproxy') !== undefined;
  }

  /** The port clients connect to. */
  get port(): number {
    return this.#port;
  }

  /** The HAProxy process, while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The configuration for `port`. */
  config(port: number): string {
    const inter = this.#options.checkIntervalMs ?? 100;
    return [
      'global',
      '  maxconn 4000',
      '',
      'defaults',
      '  mode tcp',
      '  timeout connect 1s',
      // Tether's own heartbeat keeps connections busy; these only close dead ones.
      '  timeout client 60s',
      '  timeout server 60s',
      '  timeout check 1s',
      '  retries 3',
      '  option redispatch',
      '',
      'frontend tether',
      `  bind 127.0.0.1:${port}`,
      '  default_backend instances',
      '',
      'backend instances',
      '  balance roundrobin',
      '  option httpchk',
      // The dashboard refuses a Host that is not loopback (DNS rebinding): name it.
      '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1',
      '  http-check expect status 200',
      `  default-server inter ${inter}ms fall 1 rise 1`,
      ...this.#options.backends.map(
        (b) => `  server ${b.name} 127.0.0.1:${b.port} check port ${b.dashboardPort}`,
      ),
      '',
    ].join('\n');
  }

  /** Starts HAProxy on a free port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const binary = which('haproxy');
    if (binary === undefined) throw new Error('haproxy is not installed');
    for (let attempt = 0; ; attempt++) {
      this.#port = await freePort();
      writeFileSync(this.#options.configPath, this.config(this.#port));
      const child = spawn(binary, ['-db', '-f', this.#options.configPath], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
      });
      this.#child = child;
      let exited = false;
      this.#exited = new Promise((resolve) =>
        child.once('exit', () => {
          exited = true;
          resolve();
        }),
      );
      try {
        await Promise.race([
          waitForPort(this.#port, 5000),
          this.#exited.then(() => {
            throw new Error(`haproxy exited: ${stderr}`);
          }),
        ]);
        return;
      } catch (error) {
        if (!exited) child.kill('SIGKILL');
        await this.#exited;
        if (attempt >= 4) throw error;
      }
    }
  }

  /** Stops HAProxy. */
  async stop(): Promise<void> {
    this.#child?.kill('SIGKILL');
    await this.#exited;
    this.#child = undefined;
  }
}
