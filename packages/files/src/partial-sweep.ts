import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { errnoCode } from './io.js';
import { readSidecar } from './partial-store.js';

/** What the sweep of a partial folder keeps and removes. */
export interface SweepPolicy {
  /** Partials (and completion records) untouched this long are deleted. */
  ttlMs: number;
  /** Partials without a durable byte (no sidecar, or `committed` 0) go after this long. */
  emptyTtlMs: number;
  /** Whether `<owner>/<id>` is a transfer in progress (kept whatever its age). */
  isActive(owner: string, id: string): boolean;
  /** Removes an owner folder found empty, unless an offer is using it meanwhile. */
  removeFolder(owner: string, folder: string): Promise<void>;
  /** Wall-clock ms, compared with file modification times. */
  now: number;
}

/**
 * Deletes, in every owner folder under `root` (`<dir>/.tether-partial`), the transfers nobody
 * touched for the TTL (the newest modification time of their files is older), and the empty
 * owner folders. Returns how many transfers it deleted.
 */
export async function sweepPartials(root: string, policy: SweepPolicy): Promise<number> {
  let owners: string[];
  try {
    owners = await fs.readdir(root);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
  let swept = 0;
  for (const owner of owners) {
    const folder = nodePath.join(root, owner);
    let files: string[];
    try {
      files = await fs.readdir(folder);
    } catch {
      continue;
    }
    const byId = new Map<string, string[]>();
    for (const file of files) {
      const id = file.split('.')[0] ?? '';
      byId.set(id, [...(byId.get(id) ?? []), file]);
    }
    let left = files.length;
    for (const [id, group] of byId) {
      if (policy.isActive(owner, id) || !(await expired(folder, id, group, policy))) continue;
      await Promise.all(group.map((file) => fs.rm(nodePath.join(folder, file), { force: true })));
      left -= group.length;
      swept++;
    }
    if (left === 0) await policy.removeFolder(owner, folder);
  }
  return swept;
}

async function expired(
  folder: string,
  id: string,
  group: string[],
  policy: SweepPolicy,
): Promise<boolean> {
  let newest = Number.NEGATIVE_INFINITY;
  for (const file of group) {
    try {
      newest = Math.max(newest, (await fs.stat(nodePath.join(folder, file))).mtimeMs);
    } catch {
      // Deleted meanwhile.
    }
  }
  const age = policy.now - newest;
  if (age > policy.ttlMs) return true;
  if (age <= policy.emptyTtlMs) return false;
  // Between the two TTLs: only a partial that holds nothing to resume from goes.
  const sidecar = await readSidecar(nodePath.join(folder, `${id}.json`), id);
  return sidecar === undefined || (sidecar.committed === 0 && sidecar.completedPath === undefined);
}
