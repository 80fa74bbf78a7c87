// The results of a run: the machine it ran on, the versions of everything measured, and the two
// files (latest.json, latest.md) in the --out folder. Schema: bench/README.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { CellLoad } from '../lib/common.js';
import { type Result, renderMarkdown } from '../lib/report.js';
import { NATS_SERVER } from '../systems/nats.js';
import type { Context } from './context.js';

export const SCHEMA = 'tether-bench/3';

function machine(benchDir: string): Result['machine'] {
  const version = (pkg: string): string => {
    try {
      const json = readFileSync(join(benchDir, 'node_modules', pkg, 'package.json'), 'utf8');
      return (JSON.parse(json) as { version: string }).version;
    } catch {
      return 'n/a';
    }
  };
  let natsServer = 'not installed';
  try {
    natsServer = execFileSync(NATS_SERVER, ['--version']).toString().trim();
  } catch {}
  const tether = JSON.parse(
    readFileSync(join(benchDir, '..', 'packages', 'client', 'package.json'), 'utf8'),
  ) as { version: string };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    versions: {
      tether: tether.version,
      ws: version('ws'),
      'socket.io': version('socket.io'),
      'socket.io-client': version('socket.io-client'),
      mqtt: version('mqtt'),
      aedes: version('aedes'),
      nats: version('nats'),
      'nats-server': natsServer,
      'hdr-histogram-js': version('hdr-histogram-js'),
    },
  };
}

/** Writes latest.json and latest.md into the --out folder and returns the markdown. */
export function writeResults(ctx: Context, durationSeconds: number, load: CellLoad): string {
  const { options } = ctx;
  const result: Result = {
    schema: SCHEMA,
    date: new Date().toISOString(),
    mode: options.smoke ? 'smoke' : options.quick ? 'quick' : 'full',
    tetherFrom: options.fromSource ? 'source' : 'dist',
    durationSeconds,
    machine: machine(ctx.benchDir),
    load,
    notes: ctx.notes,
    cells: ctx.cells,
    rows: ctx.rows,
  };
  const markdown = renderMarkdown(result);
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'latest.md'), markdown);
  return markdown;
}
