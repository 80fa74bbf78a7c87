// What every step of a benchmark run shares: the options, a scratch folder, the TLS certificate,
// and the rows, cells and notes it collects.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bareRow, type Cell, type Row, type SystemName } from '../lib/common.js';
import type { Options } from './options.js';
import { makeCertificate } from './tls-cert.js';

export interface Context {
  options: Options;
  /** The bench/ folder. */
  benchDir: string;
  /** A scratch folder, removed at exit. */
  work: string;
  tls: { cert: string; key: string } | undefined;
  rows: Row[];
  cells: Cell[];
  notes: string[];
  log(text: string): void;
}

const TLS_SYSTEMS: readonly SystemName[] = ['tether-tls', 'raw-tls'];

export function createContext(options: Options, benchDir: string): Context {
  const work = mkdtempSync(join(tmpdir(), 'tether-bench-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  return {
    options,
    benchDir,
    work,
    tls: options.systems.some((s) => TLS_SYSTEMS.includes(s)) ? makeCertificate(work) : undefined,
    rows: [],
    cells: [],
    notes: options.notes,
    log: (text) => process.stderr.write(`${text}\n`),
  };
}

/** A row for a system that failed in a cell, with the first line of the reason. */
export function failedRow(
  ctx: Context,
  system: string,
  scenario: string,
  payloadBytes: number,
  error: unknown,
): Row {
  const text = String((error as Error)?.message ?? error).split('\n')[0] as string;
  ctx.log(`  ${system}/${scenario} failed: ${text}`);
  return { ...bareRow(system, scenario, payloadBytes), runs: 0, note: `failed: ${text}` };
}
