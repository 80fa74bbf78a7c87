import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { InstanceSettings } from './instance-main.js';
import { tsxArgs } from './tsx-args.js';

const MAIN = fileURLToPath(new URL('./instance-main.ts', import.meta.url));

/**
 * A server instance process seen from the runner: started, killed with SIGKILL (a crash),
 * closed gracefully (GOAWAY, drain, sessions handed back to Redis), started again on the same
 * ports and journal.
 */
export class Instance {
  readonly settings: InstanceSettings;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);

  constructor(settings: InstanceSettings) {
    this.settings = settings;
  }

  get name(): string {
    return this.settings.name;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process; resolves once its server listens (rejects if it exits first). */
  async start(): Promise<void> {
    const [execArg0, execArg1, script] = tsxArgs(MAIN);
    const child = fork(script as string, [JSON.stringify(this.settings)], {
      execArgv: [execArg0 as string, execArg1 as string],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { type?: string }): void => {
        if (message.type !== 'listening') return;
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      void this.#exited.then((code) =>
        reject(new Error(`instance ${this.name} exited with ${code} before listening`)),
      );
    });
  }

  /** SIGKILL: the process dies at once, mid-whatever. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await this.#exited;
    this.#child = undefined;
  }

  /** Stops the application's own sends (the run is ending); resolves once it has. */
  async quiet(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    await new Promise<void>((resolve) => {
      const onMessage = (message: { type?: string }): void => {
        if (message.type !== 'quiet') return;
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      void this.#exited.then(() => resolve());
      child.send({ type: 'quiet' });
    });
  }

  /** A graceful close (GOAWAY, drain); resolves when the process exited. */
  async close(retryAfterMs: number, drainTimeoutMs: number): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.send({ type: 'close', retryAfterMs, drainTimeoutMs });
    const code = await this.#exited;
    this.#child = undefined;
    if (code !== 0) throw new Error(`instance ${this.name} closed with exit code ${code}`);
  }
}
