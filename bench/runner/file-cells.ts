// The file cell: one large random file end to end, each repetition sending it once with every
// file system (tether, tether-tls, tether-watched, raw-net, raw-tls) in a rotated order.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SystemName } from '../lib/common.js';
import type { SpanResult } from '../lib/span.js';
import { type SourceFile, sha256File } from '../scenarios/file.js';
import type { Context } from './context.js';
import {
  type CellSpec,
  cpuFigure,
  measurementsOf,
  recordCell,
  rowBase,
  runInterleaved,
} from './interleave.js';
import { loadSnapshot } from './load.js';
import { startPairs, stopPairs } from './system-pair.js';

const FILE_SYSTEMS: readonly SystemName[] = [
  'tether',
  'tether-tls',
  'tether-watched',
  'raw-net',
  'raw-tls',
];

/** Random bytes (1 MiB repeated, each copy marked) so no layer can compress them. */
async function makeSourceFile(dir: string, size: number): Promise<SourceFile> {
  const path = join(dir, 'source.bin');
  const chunk = randomBytes(1024 * 1024);
  writeFileSync(
    path,
    Buffer.concat(
      Array.from({ length: size / chunk.length }, (_, i) => {
        chunk[0] = i & 0xff;
        return Buffer.from(chunk);
      }),
    ),
  );
  return { path, size, sha256: await sha256File(path) };
}

export async function runFileCells(ctx: Context): Promise<void> {
  const { options } = ctx;
  ctx.log('# file');
  const t0 = performance.now();
  const size = options.smoke
    ? 16 * 1024 * 1024
    : options.quick
      ? 32 * 1024 * 1024
      : 256 * 1024 * 1024;
  const file = await makeSourceFile(ctx.work, size);
  const systems = options.systems.filter((s) => FILE_SYSTEMS.includes(s));
  const uploadDirs = new Map(systems.map((s) => [s, mkdtempSync(join(ctx.work, `up-${s}-`))]));
  const pairs = await startPairs(ctx, systems, 'file', (s) => ({
    mode: 'sink',
    uploadDir: uploadDirs.get(s) as string,
  }));
  const spec: CellSpec = {
    scenario: 'file',
    payloadBytes: size,
    metric: 'mbPerSec',
    higherIsBetter: true,
  };
  const runs = new Map<SystemName, number>();
  try {
    const before = await loadSnapshot();
    const reps = await runInterleaved(
      ctx,
      pairs,
      spec,
      { warmups: 1, repetitions: options.smoke ? 1 : 5 },
      async (pair) => {
        const run = runs.get(pair.system) ?? 0;
        runs.set(pair.system, run + 1);
        const { result, cpuUs } = await pair.measure<SpanResult>('send', { run, file }, 300_000);
        const mb = size / 1e6;
        return { value: mb / result.seconds, units: mb, cpuUs };
      },
    );
    const after = await loadSnapshot();
    recordCell(ctx, spec, reps, before, after);
    for (const pair of pairs) {
      const ms = measurementsOf(reps, pair.system);
      if (!ms.length) continue;
      const { median: mbPerSec, ...base } = rowBase(spec, pair.system, ms);
      ctx.rows.push({
        ...base,
        msgsPerSec: null,
        mbPerSec,
        p50Us: null,
        p99Us: null,
        p999Us: null,
        cpu: cpuFigure('MB', ms),
        extra: { verified: true },
      });
    }
  } finally {
    await stopPairs(ctx, pairs);
    for (const dir of uploadDirs.values()) rmSync(dir, { recursive: true, force: true });
    rmSync(file.path, { force: true });
  }
  ctx.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
