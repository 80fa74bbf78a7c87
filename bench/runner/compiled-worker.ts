// The worker (bench/worker.ts) compiled to JavaScript once per run, so that the bench processes
// run plain JavaScript as an application that installs Tether does, without tsx in them.
// tsx in a process is not free: its loader, its esbuild service and what they keep alive add
// about 2 MB to the old generation, and V8 counts the backing stores of Buffers allocated since
// the last mark-compact against the old generation's limit, which it sets from the live heap.
// In one process sending 300 messages of 1 MiB to itself, `--import tsx` turned 0 mark-compacts
// into 9 – 17 (see bench/README.md, 1 MiB): a cost of the harness, not of the system measured.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';

/**
 * Bundles bench/worker.ts and the bench modules it loads into `outdir` (emptied first; it must be
 * inside bench/ so that packages, left as imports, resolve from bench/node_modules: Tether from
 * its `dist/`); returns the entry's path. Scenario and system modules stay separate chunks,
 * loaded on demand as before. No `keepNames`: tsx's closures with names are slower
 * (bench/README.md).
 */
export function compileWorker(
  benchDir: string,
  outdir: string = join(benchDir, '.build', 'worker'),
): string {
  rmSync(outdir, { recursive: true, force: true });
  esbuild.buildSync({
    entryPoints: [join(benchDir, 'worker.ts')],
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  return join(outdir, 'worker.mjs');
}
