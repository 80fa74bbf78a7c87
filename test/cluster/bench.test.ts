/**
 * `pnpm bench:cluster` in its smoke form: tether and tether-cluster (Redis, 3 instances, HAProxy)
 * take turns in the throughput cell, with the ratio taken per repetition, and the cluster-resume
 * cell kills instances and finds every client resumed on another, with no session lost.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HAProxy } from '@tether/cluster';
import { afterEach, describe, expect, it } from 'vitest';
import type { Row } from '../../bench/lib/common.js';
import { requireBinaries } from './helpers.js';

const enabled = requireBinaries('redis-server') && HAProxy.available();
const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe.skipIf(!enabled)('bench:cluster', () => {
  it('bench - pnpm bench:cluster (smoke): tether-cluster vs tether per repetition, and clients resumed after kills', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tether-bench-cluster-test-'));
    cleanups.push(() => rm(out, { recursive: true, force: true }));
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=@tether/source',
        'bench/index.ts',
        '--smoke',
        '--systems',
        'tether,tether-cluster',
        '--scenarios',
        'throughput,cluster-resume',
        '--source',
        '--out',
        out,
      ],
      { cwd: root, timeout: 110_000 },
    );
    const result = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as {
      rows: Row[];
      cells: {
        scenario: string;
        ratios: { system: string; against: string; perRepetition: number[] }[];
      }[];
    };
    expect(result.rows.filter((r) => r.note)).toEqual([]);
    expect(result.rows.map((r) => `${r.scenario} ${r.system}`).sort()).toEqual([
      'cluster-resume tether-cluster',
      'throughput tether',
      'throughput tether-cluster',
    ]);
    const throughput = result.cells.find((c) => c.scenario === 'throughput');
    const ratio = throughput?.ratios.find(
      (r) => r.system === 'tether-cluster' && r.against === 'tether',
    );
    expect(ratio?.perRepetition.length).toBe(3);
    const cluster = result.rows.find(
      (r) => r.system === 'tether-cluster' && r.scenario === 'throughput',
    );
    // Redis, HAProxy and the instances count in the cluster's CPU.
    expect(Object.keys(cluster?.cpu?.byProcess ?? {})).toEqual(
      expect.arrayContaining(['client', 'server', 'redis-server', 'haproxy']),
    );
    const resume = result.rows.find((r) => r.scenario === 'cluster-resume')?.extra ?? {};
    expect(resume.kills).toBe(3);
    expect(resume.moved).toBeGreaterThan(0);
    expect(resume.notBack).toBe(0);
    expect(resume.sessionsLost).toBe(0);
    expect(resume.resumeP99Ms).toBeGreaterThan(0);
    expect(stdout).toContain('## cluster-resume');
    expect(stdout).toContain('| 128 B | tether-cluster vs tether |');
  }, 120_000);
});
