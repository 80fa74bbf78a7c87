import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { candidateName, isDirectChild } from './file-name.js';
import { ownerKey } from './fingerprint.js';
import { errnoCode } from './io.js';

/** Hidden folder of the target directory that holds partial files, one sub-folder per owner. */
export const PARTIAL_DIR = '.tether-partial';

/**
 * The sidecar `<id>.json` next to `<id>.part`: what the partial is and how much of it is durable.
 * `committed` bytes of the partial were fsynced before the sidecar was written, so a receiver that
 * restarts resumes from there. Once the file is stored, the sidecar stays (without the partial)
 * as a completion record until the TTL, so a sender that missed FILE_COMPLETE and offers again
 * gets FILE_COMPLETE at once instead of a second copy.
 */
export interface Sidecar {
  version: 1;
  id: string;
  owner: string;
  name: string;
  size: number;
  /** The verified SHA-256: set in a completion record, absent while the file is partial. */
  sha256?: string;
  committed: number;
  /** Wall-clock ms of the last update. */
  updatedAt: number;
  /** Set once the file is stored: its final path. */
  completedPath?: string;
}

const ID = /^[0-9a-f]{32}$/;
let tempCounter = 0;
const HEX64 = /^[0-9a-f]{64}$/;

function isSidecar(value: unknown): value is Sidecar {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const uint = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  return (
    v.version === 1 &&
    typeof v.id === 'string' &&
    ID.test(v.id) &&
    typeof v.owner === 'string' &&
    typeof v.name === 'string' &&
    uint(v.size) &&
    (v.sha256 === undefined || (typeof v.sha256 === 'string' && HEX64.test(v.sha256))) &&
    uint(v.committed) &&
    (v.committed as number) <= (v.size as number) &&
    typeof v.updatedAt === 'number' &&
    (v.completedPath === undefined || typeof v.completedPath === 'string')
  );
}

const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'EBADF']);

/** fsync a directory so a rename or link inside it survives a crash. Best effort off Linux. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Windows cannot open or sync a directory; some file systems refuse it. Nothing to do then.
    if (!DIR_SYNC_UNSUPPORTED.has(errnoCode(error) ?? '')) throw error;
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** The sidecar at `path` if it is one for `id`; undefined when absent or unreadable. */
export async function readSidecar(path: string, id: string): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const value: unknown = JSON.parse(text);
    return isSidecar(value) && value.id === id ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Errors of `fs.link` that mean "this file system has no hard links": fall back to rename. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

/**
 * One owner's partial files under `<dir>/.tether-partial/<ownerKey>/`: paths, sidecars, storing
 * a verified file under a free name, and the TTL sweep. Owners never see each other's folder, so
 * a transfer id presented by another peer can never resume, read or append to these partials.
 */
export class PartialStore {
  /** Target directory (absolute). */
  readonly dir: string;
  /** `<dir>/.tether-partial`. */
  readonly root: string;
  /** This owner's folder name under the root. */
  readonly key: string;
  /** `<root>/<key>`. */
  readonly ownerDir: string;

  constructor(dir: string, owner: string) {
    this.dir = nodePath.resolve(dir);
    this.root = nodePath.join(this.dir, PARTIAL_DIR);
    this.key = ownerKey(owner);
    this.ownerDir = nodePath.join(this.root, this.key);
  }

  partPath(id: string): string {
    return nodePath.join(this.ownerDir, `${checkId(id)}.part`);
  }

  sidecarPath(id: string): string {
    return nodePath.join(this.ownerDir, `${checkId(id)}.json`);
  }

  /** Creates the target directory and this owner's folder. */
  async prepare(): Promise<void> {
    await fs.mkdir(this.ownerDir, { recursive: true });
  }

  /** The sidecar of `id`, or undefined when absent or unreadable (treated as no partial). */
  read(id: string): Promise<Sidecar | undefined> {
    return readSidecar(this.sidecarPath(id), id);
  }

  /**
   * Replaces the sidecar atomically: write a temporary file, fsync it, rename it over the old one.
   * The folder is not fsynced: if a crash loses the rename, the old sidecar remains, with a lower
   * committed offset whose bytes are durable too, so resuming from it is still correct.
   */
  async write(sidecar: Sidecar): Promise<void> {
    const target = this.sidecarPath(sidecar.id);
    // A name of its own, so that two writers never rename each other's temporary file.
    const temp = `${target}.${process.pid}-${++tempCounter}.tmp`;
    try {
      const handle = await fs.open(temp, 'w');
      try {
        await handle.writeFile(JSON.stringify(sidecar), 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, target);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
  }

  /** Deletes the partial and its sidecar (and a temporary sidecar a crash left behind). */
  async remove(id: string): Promise<void> {
    const sidecar = this.sidecarPath(id);
    const temps = (await fs.readdir(this.ownerDir).catch(() => [] as string[]))
      .filter((name) => name.startsWith(`${checkId(id)}.json.`) && name.endsWith('.tmp'))
      .map((name) => nodePath.join(this.ownerDir, name));
    await Promise.all(
      [this.partPath(id), sidecar, ...temps].map((path) => fs.rm(path, { force: true })),
    );
  }

  /**
   * Gives the partial of `id` its final name in the target directory without ever overwriting:
   * `name`, else `stem (1).ext`, ... Each candidate is claimed with `fs.link`, which fails with
   * EEXIST instead of replacing a file; on file systems without hard links, the name is reserved
   * by creating it exclusively ('wx') and the partial renamed over that reservation. Returns the
   * final path; the partial may still exist (as a second link) until `removePart`.
   */
  async claimFinalName(id: string, name: string): Promise<string> {
    const part = this.partPath(id);
    for (let n = 0; n < 10_000; n++) {
      const target = nodePath.join(this.dir, candidateName(name, n));
      if (!isDirectChild(this.dir, target)) throw new Error(`"${name}" leaves the target folder`);
      try {
        await fs.link(part, target);
        return target;
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'EEXIST') continue;
        if (code === undefined || !NO_LINKS.has(code)) throw error;
      }
      try {
        const reserved = await fs.open(target, 'wx');
        await reserved.close();
      } catch (error) {
        if (errnoCode(error) === 'EEXIST') continue;
        throw error;
      }
      await fs.rename(part, target);
      return target;
    }
    throw Object.assign(new Error(`no free name for "${name}"`), { code: 'EEXIST' });
  }

  /** Removes the partial file of `id` (after it was stored under its final name). */
  async removePart(id: string): Promise<void> {
    await fs.rm(this.partPath(id), { force: true });
  }
}

function checkId(id: string): string {
  // The codec already checks ids on the wire; this keeps a bad id from ever becoming a path.
  if (!ID.test(id)) throw new Error(`invalid transfer id "${id}"`);
  return id;
}
