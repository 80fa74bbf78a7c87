import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { ErrorCode, TetherError } from '@tether/protocol';

/** Who holds a store: written as JSON in its lock file. */
export interface LockOwner {
  pid: number;
  host: string;
  /** Linux boot id: a lock from before a reboot is stale whatever its pid. */
  boot: string | undefined;
  /** Start time of the owning process (Linux, clock ticks after boot): tells a reused pid apart. */
  start: string | undefined;
  /** Unique per lock taken: tells this process's own locks from those of a process before it. */
  token: string;
  /** Wall-clock ms when it was taken. */
  since: number;
}

// Locks this process holds, by token: a lock file with our pid and a token not in here was left
// by an earlier process that had the same pid (a container restarted: pid 1 again).
const held = new Set<string>();

// A lock file that cannot be parsed is being written right now (by an owner between its open
// and its write) unless it is older than this: then its owner died in between.
const UNREADABLE_STALE_MS = 10_000;

/** The lock on one store directory; `release` it when done. */
export class StoreLock {
  readonly path: string;
  readonly owner: LockOwner;
  #released = false;

  private constructor(path: string, owner: LockOwner) {
    this.path = path;
    this.owner = owner;
  }

  /**
   * Takes the lock file at `path` (created exclusively), breaking a stale one: its owner is dead,
   * or the machine rebooted since. Throws STORE_LOCKED when a live owner (another process, or
   * another client of this process) holds it.
   */
  static acquire(path: string): StoreLock {
    const owner: LockOwner = {
      pid: process.pid,
      host: hostname(),
      boot: bootId(),
      start: processStart(process.pid),
      token: randomUUID(),
      since: Date.now(),
    };
    const text = JSON.stringify(owner);
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        fs.writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
        held.add(owner.token);
        return new StoreLock(path, owner);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = readLock(path);
      if (found === undefined) continue; // released meanwhile: try again
      const holder = liveHolder(found);
      if (holder !== undefined) {
        throw new TetherError(ErrorCode.STORE_LOCKED, `the store ${path} is in use by ${holder}`);
      }
      breakStale(path, found.text);
    }
    throw new TetherError(ErrorCode.STORE_LOCKED, `the store ${path} is contended: gave up`);
  }

  /** Removes the lock file (if it is still ours). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(this.owner.token);
    const found = readLock(this.path);
    if (found?.owner?.token === this.owner.token) fs.rmSync(this.path, { force: true });
  }
}

interface FoundLock {
  text: string;
  owner: LockOwner | undefined;
  ageMs: number;
}

function readLock(path: string): FoundLock | undefined {
  try {
    const text = fs.readFileSync(path, 'utf8');
    const ageMs = Date.now() - fs.statSync(path).mtimeMs;
    return { text, owner: parseOwner(text), ageMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return undefined;
    if (typeof value.token !== 'string') return undefined;
    return value as LockOwner;
  } catch {
    return undefined;
  }
}

// Describes the live holder of `found`, or undefined when the lock is stale.
function liveHolder(found: FoundLock): string | undefined {
  const owner = found.owner;
  if (owner === undefined) {
    return found.ageMs < UNREADABLE_STALE_MS ? 'an owner still writing its lock' : undefined;
  }
  const name = `process ${owner.pid} on ${owner.host}`;
  // Another machine (a shared disk): its processes cannot be checked from here.
  if (owner.host !== hostname()) return name;
  const boot = bootId();
  if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return undefined;
  if (owner.pid === process.pid) {
    return held.has(owner.token) ? `another client of this process (${owner.pid})` : undefined;
  }
  if (!alive(owner.pid)) return undefined;
  const start = processStart(owner.pid);
  if (owner.start !== undefined && start !== undefined && owner.start !== start) return undefined;
  return name;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Breaks a stale lock without ever removing a fresh one: moves it aside, then checks that what
// was moved is the stale lock read before. If another process broke it and took the lock in
// between, that fresh lock is put back (a hard link fails if yet another took it since).
function breakStale(path: string, staleText: string): void {
  const aside = `${path}.stale-${randomUUID()}`;
  try {
    fs.renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    if (fs.readFileSync(aside, 'utf8') !== staleText) {
      try {
        fs.linkSync(aside, path);
      } catch {
        // Someone holds the lock again: theirs stands.
      }
    }
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

// Field 22 of /proc/<pid>/stat (start time); the fields are counted after the command name,
// which may itself hold spaces and parentheses.
function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
