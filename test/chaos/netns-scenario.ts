/**
 * One seeded netns run: a namespace joined by a veth pair, the server in a child process inside
 * it (ns-server.ts), the client here connecting to the namespace's link-local address. Faults are
 * kernel-level: nft DROP both ways or one way (a true half-open link: TCP itself sees nothing),
 * the link set down and up, tc tbf throttling. The same workload and checker as the proxy suite.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerMirror, ServerSide } from './mirror.js';
import { NETNS_FAULTS, NetnsFaults, NetnsLink, spawnIn } from './netns.js';
import type { ServerCommand } from './ns-server.js';
import { closeWithin, type RunResult, runWorkload, Suite } from './run-result.js';
import { endRun, newClient, serverSettings, setUpRun, workloadEnv } from './run-setup.js';
import type { QuietStats, ServerReport, ServerSettings } from './server-host.js';
import { tsxArgs } from './tsx-args.js';
import { type ClientDriver, describePlan, makePlan } from './workload.js';

const SERVER_PORT = 7070;
const START_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 3000;

/** The server side in the namespace's child process, driven over its stdin/stdout. */
export class RemoteServer implements ServerSide {
  readonly #mirror: ServerMirror;
  readonly #link: NetnsLink;
  readonly #settings: ServerSettings;
  #child: ChildProcessWithoutNullStreams | undefined;
  #exited: Promise<{ code: number | null; signal: string | null }> | undefined;
  #waiters = new Map<number, (report: ServerReport) => void>();
  #token = 0;
  #listening: (() => void) | undefined;
  #stderr = '';
  /** Leaks the child reported, and how it exited. */
  childHandles: Record<string, number> = {};
  childExit: { code: number | null; signal: string | null; timedOut: boolean } | undefined;

  constructor(mirror: ServerMirror, link: NetnsLink, settings: ServerSettings) {
    this.#mirror = mirror;
    this.#link = link;
    this.#settings = settings;
  }

  get port(): number {
    return this.#settings.port;
  }

  get connected(): boolean {
    return this.#mirror.connected;
  }

  get liveSessions(): number {
    return this.#mirror.liveSessions;
  }

  async start(): Promise<void> {
    const script = fileURLToPath(new URL('./ns-server.ts', import.meta.url));
    const child = spawnIn(this.#link, process.execPath, [
      ...tsxArgs(script),
      JSON.stringify(this.#settings),
    ]);
    this.#child = child;
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4000);
    });
    child.stdin.on('error', () => {});
    createInterface({ input: child.stdout }).on('line', (line) => this.#onLine(line));
    const listening = new Promise<void>((resolve, reject) => {
      this.#listening = resolve;
      this.#exited?.then(({ code, signal }) =>
        reject(new Error(`ns-server exited (${code ?? signal}) before listening: ${this.#stderr}`)),
      );
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`ns-server not listening after ${START_TIMEOUT_MS} ms: ${this.#stderr}`),
          ),
        START_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([listening, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async restart(): Promise<void> {
    await this.#call({ op: 'restart', token: ++this.#token });
  }

  send(value: number, payload: string, incarnation: number): void {
    this.#mirror.invoke(value, incarnation, Buffer.byteLength(payload));
    this.#write({ op: 'send', value, payload });
  }

  sendFile(name: string, path: string, size: number, sha256: string, incarnation: number): void {
    this.#mirror.invokeFile(name, size, sha256, incarnation);
    this.#write({ op: 'sendFile', name, path });
  }

  async stats(): Promise<QuietStats & { liveSessions: number }> {
    const report = await this.#call({ op: 'stats', token: ++this.#token });
    if (report.ev !== 'stats') throw new Error(`unexpected ${report.ev}`);
    return {
      ...report.stats,
      liveSessions: (report as { liveSessions?: number }).liveSessions ?? 0,
    };
  }

  /** Closes the server, then ends stdin: the child must exit by itself. */
  async close(): Promise<void> {
    const child = this.#child;
    if (child === undefined || this.childExit !== undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      const report = await this.#call({ op: 'close', token: ++this.#token }).catch(() => undefined);
      if (report?.ev === 'closed') {
        for (const [type, n] of Object.entries(report.handles))
          this.childHandles[`server ${type}`] = n;
      }
    }
    child.stdin.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), EXIT_TIMEOUT_MS);
    });
    const exit = await Promise.race([
      this.#exited as Promise<{ code: number | null; signal: string | null }>,
      timedOut,
    ]);
    clearTimeout(timer);
    if (exit === 'timeout') {
      child.kill('SIGKILL');
      const killed = await (this.#exited as Promise<{
        code: number | null;
        signal: string | null;
      }>);
      this.childExit = { ...killed, timedOut: true };
    } else {
      this.childExit = { ...exit, timedOut: false };
    }
  }

  #write(command: ServerCommand): void {
    this.#child?.stdin.write(`${JSON.stringify(command)}\n`);
  }

  #call(command: ServerCommand & { token: number }): Promise<ServerReport> {
    return new Promise((resolve, reject) => {
      const child = this.#child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`ns-server is not running: ${this.#stderr}`));
        return;
      }
      this.#waiters.set(command.token, resolve);
      this.#exited?.then(() => {
        if (this.#waiters.delete(command.token))
          reject(new Error(`ns-server exited during ${command.op}: ${this.#stderr}`));
      });
      this.#write(command);
    });
  }

  #onLine(line: string): void {
    let report: ServerReport;
    try {
      report = JSON.parse(line) as ServerReport;
    } catch {
      this.#stderr += `\nstdout: ${line}`;
      return;
    }
    this.#mirror.apply(report);
    if (report.ev === 'listening') this.#listening?.();
    if (report.ev === 'stats' || report.ev === 'done' || report.ev === 'closed') {
      // The sessions the events say exist, as of this report (reports arrive in order).
      const extended =
        report.ev === 'stats' ? { ...report, liveSessions: this.#mirror.liveSessions } : report;
      const waiter = this.#waiters.get(report.token);
      this.#waiters.delete(report.token);
      waiter?.(extended);
    }
  }
}

export async function runNetnsScenario(seed: number): Promise<RunResult> {
  const setup = setUpRun(seed, { min: 800, max: 2000 });
  const { history } = setup;
  const plan = makePlan(seed, NETNS_FAULTS, { budgetMs: setup.knobs.budgetMs, files: true });
  let link: NetnsLink | undefined;
  let server: RemoteServer | undefined;
  let client: ClientDriver | undefined;
  let error: unknown;
  try {
    link = await NetnsLink.create();
    server = new RemoteServer(setup.mirror, link, serverSettings(setup, link.nsIp, SERVER_PORT));
    await server.start();
    client = newClient(setup, link.nsIp, SERVER_PORT, `chaos-ns-${seed}`);
    await client.start(true);
    await runWorkload(workloadEnv(setup, client, server, new NetnsFaults(link)), plan);
  } catch (caught) {
    error = caught;
  } finally {
    await closeWithin(history, 'client.close()', async () => client?.close());
    await closeWithin(history, 'server.close() in the namespace', async () => server?.close());
    history.mark('teardown: namespace');
    await link?.remove();
  }
  return endRun(setup, Suite.NETNS, error, describePlan(plan), {
    handles: server?.childHandles ?? {},
    ...(server?.childExit === undefined ? {} : { childExit: server.childExit }),
  });
}
