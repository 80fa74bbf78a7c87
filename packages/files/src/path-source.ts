import { statSync } from 'node:fs';
import { ErrorCode, TetherError } from '@tether/protocol';
import { transferId } from './fingerprint.js';
import { codeOf } from './sender.js';
import type { PreparedSource } from './source.js';
import { SourceFile } from './source-file.js';

/**
 * A file on disk, ready to send: stat'ed at once (synchronously, so the transfer has its id and
 * size at once; one stat is cheap), its id from its fingerprint (absolute path, size, mtime,
 * peer). Returns FILE_NOT_FOUND or FILE_READ_FAILED when it cannot be stat'ed.
 */
export function pathSource(absolute: string, owner: string): PreparedSource | TetherError {
  let stats: { size: number; mtimeMs: number; isFile(): boolean };
  try {
    stats = statSync(absolute);
  } catch (error) {
    return new TetherError(codeOf(error), `cannot stat ${absolute}`, { cause: error });
  }
  if (!stats.isFile())
    return new TetherError(ErrorCode.FILE_NOT_FOUND, `${absolute} is not a file`);
  const id = transferId({ path: absolute, size: stats.size, mtimeMs: stats.mtimeMs, peer: owner });
  return { id, size: stats.size, source: new SourceFile(absolute, stats.size, stats.mtimeMs) };
}
