// `pnpm bench --smoke` runs end to end (server and client in separate processes) and writes
// well-formed results. The benchmark itself is not part of `pnpm test`; this only checks its shape.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const nullableNumber = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));

it('pnpm bench --smoke writes latest.json and latest.md in the --out directory', async () => {
  const out = await mkdtemp(join(tmpdir(), 'tether-bench-test-'));
  cleanups.push(() => rm(out, { recursive: true, force: true }));
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tether/source',
      'bench/index.ts',
      '--smoke',
      '--source',
      '--out',
      out,
    ],
    { cwd: root, timeout: 90_000 },
  );
  expect(stdout).toContain('| system |');
  const md = await readFile(join(out, 'latest.md'), 'utf8');
  expect(md).toBe(stdout);
  const result = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8'));
  expect(result.schema).toBe('tether-bench/1');
  expect(result.mode).toBe('smoke');
  expect(result.tetherFrom).toBe('source');
  expect(typeof result.machine.cpu).toBe('string');
  expect(result.machine.cores).toBeGreaterThan(0);
  expect(typeof result.machine.node).toBe('string');
  expect(typeof result.machine.versions).toBe('object');
  expect(result.rows.length).toBeGreaterThanOrEqual(2);
  for (const row of result.rows) {
    expect(typeof row.system).toBe('string');
    expect(typeof row.scenario).toBe('string');
    expect(Number.isInteger(row.payloadBytes)).toBe(true);
    for (const key of ['msgsPerSec', 'mbPerSec', 'p50Us', 'p99Us', 'p999Us']) {
      expect(nullableNumber(row[key]), key).toBe(true);
    }
    expect(Number.isInteger(row.runs)).toBe(true);
    expect(row.note, `${row.system} failed`).toBeUndefined();
    expect(row.msgsPerSec).toBeGreaterThan(0);
  }
  expect(result.rows.map((r: { system: string }) => r.system).sort()).toEqual([
    'raw-net',
    'tether',
  ]);
}, 120_000);
