import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';

/** The path of `command` on PATH (or the sbin folders Debian installs daemons in), if any. */
export function which(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
