// The bench's worker compiled to JavaScript (bench/runner/compiled-worker.ts) runs without tsx:
// a server worker forked from the bundle with Node's own flags only starts its system and
// reports its port, and Tether's packages stay imports (resolved to dist/, not bundled).
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { compileWorker } from '../../bench/runner/compiled-worker.js';

const benchDir = join(import.meta.dirname, '..', '..', 'bench');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

it('bench - the compiled worker runs without tsx and leaves packages as imports', async () => {
  mkdirSync(join(benchDir, '.build'), { recursive: true });
  const outdir = mkdtempSync(join(benchDir, '.build', 'test-'));
  cleanups.push(() => rmSync(outdir, { recursive: true, force: true }));
  const entry = compileWorker(benchDir, outdir);
  const code = readdirSync(outdir)
    .map((f) => readFileSync(join(outdir, f), 'utf8'))
    .join('\n');
  expect(code).toMatch(/from "@tether\/server"|import\("@tether\/server"\)/);
  expect(code).not.toMatch(/class TetherServer\b/);

  const child: ChildProcess = fork(
    entry,
    [
      JSON.stringify({
        role: 'server',
        system: 'raw-net',
        scenario: 'throughput',
        quick: true,
        smoke: true,
      }),
    ],
    { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  const ready = await new Promise<{ type: string; port: number }>((resolve, reject) => {
    child.on('message', (m: { type: string; port: number }) => {
      if (m.type === 'ready') resolve(m);
    });
    child.on('exit', (code) => reject(new Error(`worker exited (${code})`)));
  });
  expect(ready.port).toBeGreaterThan(0);
  expect(child.spawnargs.join(' ')).not.toContain('tsx');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.send({ type: 'stop' });
  expect(await exited).toBe(0);
});
