/**
 * File transfers as an operation kind of the workload (FileOps): both directions, through
 * `client.sendFile` and `peer.sendFile`, with the bytes the receiver stored hashed on arrival.
 * Each run gets its own temporary directory (sources, uploads, downloads), always removed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Direction, type History, OpStatus } from './history.js';
import type { ServerSide } from './mirror.js';
import type { ClientDriver, FileOps } from './workload.js';

const PREFIX = 'tth-files-';

/** The directories of one run's file transfers: `tth-files-<pid>-<seed>-XXXXXX` in the temp dir. */
export class FileDirs {
  readonly root: string;
  readonly sources: string;
  readonly uploads: string;
  readonly downloads: string;

  constructor(seed: number) {
    this.root = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid.toString(36)}-${seed}-`));
    this.sources = join(this.root, 'sources');
    this.uploads = join(this.root, 'uploads');
    this.downloads = join(this.root, 'downloads');
    for (const dir of [this.sources, this.uploads, this.downloads]) mkdirSync(dir);
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export class FileTransfers implements FileOps {
  readonly #history: History;
  readonly #dirs: FileDirs;
  readonly #client: ClientDriver;
  readonly #server: ServerSide;

  constructor(history: History, dirs: FileDirs, client: ClientDriver, server: ServerSide) {
    this.#history = history;
    this.#dirs = dirs;
    this.#client = client;
    this.#server = server;
  }

  send(dir: Direction, name: string, content: Buffer): void {
    const path = join(this.#dirs.sources, name);
    writeFileSync(path, content);
    const sha256 = createHash('sha256').update(content).digest('hex');
    if (dir === Direction.C2S) this.#client.sendFile(name, path, content.length, sha256);
    else this.#server.sendFile(name, path, content.length, sha256, this.#client.incarnation);
  }

  unsettled(): string[] {
    const incarnation = this.#client.incarnation;
    const session = this.#client.client.stats().sessionId;
    return this.#history.files
      .filter(
        (op) =>
          op.status === OpStatus.PENDING &&
          (op.dir === Direction.C2S ? op.incarnation === incarnation : op.target === session),
      )
      .map((op) => `${op.dir} file ${op.name}`);
  }
}

/** Removes the file directories of runs whose process is gone (killed by the pool's watchdog). */
export function removeStaleFileDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number.parseInt(name.slice(PREFIX.length).split('-')[0] ?? '', 36);
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
