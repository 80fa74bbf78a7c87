import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, type TetherError } from '../src/index.js';
import { type LockOwner, StoreLock } from '../src/store/store-lock.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function lockPath(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tether-lock-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'lock');
}

function acquire(path: string): StoreLock {
  const lock = StoreLock.acquire(path);
  cleanups.push(() => lock.release());
  return lock;
}

function refusal(path: string): TetherError | undefined {
  try {
    acquire(path);
  } catch (error) {
    return error as TetherError;
  }
  return undefined;
}

function writeOwner(path: string, owner: Partial<LockOwner>): void {
  const base: LockOwner = {
    pid: process.pid,
    host: hostname(),
    boot: undefined,
    start: undefined,
    token: 'someone-else',
    since: Date.now(),
  };
  fs.writeFileSync(path, JSON.stringify({ ...base, ...owner }));
}

/** A process that is alive until killed, and its pid. */
async function liveProcess(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  await new Promise((resolve) => child.once('spawn', resolve));
  return child.pid as number;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('store lock', () => {
  it('store lock - a second lock in this process is refused with STORE_LOCKED until the first is released', () => {
    const path = lockPath();
    const first = acquire(path);
    expect(refusal(path)?.code).toBe(ErrorCode.STORE_LOCKED);
    first.release();
    expect(fs.existsSync(path)).toBe(false);
    expect(refusal(path)).toBeUndefined();
  });

  it('store lock - the lock file names its owner', () => {
    const path = lockPath();
    const lock = acquire(path);
    const owner = JSON.parse(fs.readFileSync(path, 'utf8')) as LockOwner;
    expect(owner).toMatchObject({ pid: process.pid, host: hostname(), token: lock.owner.token });
  });

  it('store lock - a lock held by another live process is refused', async () => {
    const path = lockPath();
    writeOwner(path, { pid: await liveProcess() });
    expect(refusal(path)?.code).toBe(ErrorCode.STORE_LOCKED);
  });

  it('store lock - a stale lock of a dead process is broken and taken', async () => {
    const path = lockPath();
    writeOwner(path, { pid: await deadPid() });
    const lock = acquire(path);
    expect(JSON.parse(fs.readFileSync(path, 'utf8')).token).toBe(lock.owner.token);
    // Nothing left aside.
    expect(fs.readdirSync(join(path, '..'))).toEqual(['lock']);
  });

  it('store lock - a lock with this pid but a token this process never took is stale (a restarted container)', () => {
    const path = lockPath();
    writeOwner(path, { pid: process.pid, token: 'from-the-process-before' });
    expect(refusal(path)).toBeUndefined();
  });

  it('store lock - a lock from before a reboot is stale, even if its pid lives', async () => {
    const path = lockPath();
    const boot = fs.existsSync('/proc/sys/kernel/random/boot_id');
    writeOwner(path, { pid: await liveProcess(), boot: 'another-boot' });
    expect(refusal(path)?.code).toBe(boot ? undefined : ErrorCode.STORE_LOCKED);
  });

  it('store lock - a live pid that started at another time is a reused pid: stale', async () => {
    const path = lockPath();
    const proc = fs.existsSync('/proc/self/stat');
    writeOwner(path, { pid: await liveProcess(), start: '1' });
    expect(refusal(path)?.code).toBe(proc ? undefined : ErrorCode.STORE_LOCKED);
  });

  it('store lock - a lock of another host is never broken', async () => {
    const path = lockPath();
    writeOwner(path, { pid: await deadPid(), host: `not-${hostname()}` });
    expect(refusal(path)?.code).toBe(ErrorCode.STORE_LOCKED);
  });

  it('store lock - an unreadable lock is respected while young (its owner is writing it) and broken when old', () => {
    const path = lockPath();
    fs.writeFileSync(path, '');
    expect(refusal(path)?.code).toBe(ErrorCode.STORE_LOCKED);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(path, old, old);
    expect(refusal(path)).toBeUndefined();
  });

  it('store lock - release leaves a lock taken over by someone else alone', () => {
    const path = lockPath();
    const lock = StoreLock.acquire(path);
    writeOwner(path, { token: 'new-owner' });
    lock.release();
    expect(JSON.parse(fs.readFileSync(path, 'utf8')).token).toBe('new-owner');
  });
});
