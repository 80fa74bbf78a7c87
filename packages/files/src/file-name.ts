import * as nodePath from 'node:path';
import { MAX_FILE_NAME_BYTES } from './file-name-check.js';

export { checkFileName, MAX_FILE_NAME_BYTES } from './file-name-check.js';

/**
 * The `n`th candidate for storing `name` without overwriting: `name` itself for 0, then
 * `stem (1).ext`, `stem (2).ext`, ... The stem is shortened (on a character boundary) when the
 * suffix would push the name past 255 bytes.
 */
export function candidateName(name: string, n: number): string {
  if (n === 0) return name;
  const ext = nodePath.extname(name);
  const suffix = ` (${n})${ext}`;
  let stem = name.slice(0, name.length - ext.length);
  const budget = MAX_FILE_NAME_BYTES - Buffer.byteLength(suffix, 'utf8');
  while (Buffer.byteLength(stem, 'utf8') > budget) stem = [...stem].slice(0, -1).join('');
  return `${stem}${suffix}`;
}

/** Whether `child` (absolute) lies directly inside `dir` (absolute). */
export function isDirectChild(dir: string, child: string): boolean {
  return nodePath.dirname(nodePath.resolve(child)) === nodePath.resolve(dir);
}
