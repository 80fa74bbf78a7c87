import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT: string = join(here, '..', '..', '..');
const MAIN = join(here, '..', 'src', 'main.ts');

/** A `tether` child process with its output collected. */
export interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (a signal counts as -1). */
  exited: Promise<number>;
  /** Resolves with the first stdout match of `pattern`, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL if still alive after a second. */
  kill(): Promise<void>;
}

const alive = new Set<Cli>();

/** Runs `tsx --conditions=@tether/source packages/cli/src/main.ts ...args` (one node process). */
export function tether(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@tether/source', MAIN, ...args],
    { cwd: ROOT, env: { ...process.env, CI: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    for (const watcher of watchers) watcher();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code) => {
      resolve(code ?? -1);
      for (const watcher of watchers) watcher();
    }),
  );
  const cli: Cli = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(out);
          if (match !== null) {
            done();
            resolve(match);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`exited before ${pattern}: stdout ${out} stderr ${err}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${pattern}: stdout ${out} stderr ${err}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    async kill() {
      alive.delete(cli);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await exited;
      clearTimeout(timer);
    },
  };
  alive.add(cli);
  void exited.then(() => alive.delete(cli));
  return cli;
}

/** Kills every child still running (for afterEach/afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...alive].map((cli) => cli.kill()));
}
