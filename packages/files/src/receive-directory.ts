import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, TetherError } from '@tether/protocol';
import { type FileIo, nodeIo } from './io.js';
import { PARTIAL_DIR } from './partial-store.js';
import { sweepPartials } from './partial-sweep.js';

/** Options of {@link ReceiveDirectory}. */
export interface ReceiveDirectoryOptions {
  /** Target directory; created if missing. Partials live in its `.tether-partial` folder. */
  dir: string;
  /** Keep at least this many bytes free after every accepted file; else FILE_NO_SPACE. Default 0. */
  minFreeBytes?: number;
  /** Partials (and completion records) untouched this long are deleted. Default 24 h. */
  partialTtlMs?: number;
  /**
   * Partials that hold no durable byte (accepted offers that never sent one, or a crash before
   * the first checkpoint) are deleted after this long instead. Default 5 min.
   */
  emptyPartialTtlMs?: number;
  /**
   * Incoming transfers holding their partial open at once, across every engine receiving here;
   * past it an offer, or an idle transfer's next chunk, is refused with TOO_MANY_TRANSFERS
   * (retryable). Default 256.
   */
  maxOpenTransfers?: number;
  /**
   * A transfer that receives no byte for this long closes its partial (after a checkpoint),
   * gives back its place under `maxOpenTransfers` and its disk reservation; its next chunk takes
   * them again, or fails it with TOO_MANY_TRANSFERS or FILE_NO_SPACE (retryable). Default 5000.
   */
  idleMs?: number;
  /** Monotonic clock in ms, for idle times and sweeps. Default `performance.now()`. */
  now?: () => number;
  /** Replaces `freeBytes`, for tests. */
  io?: Partial<Pick<FileIo, 'freeBytes'>>;
}

/** A transfer accepted into the directory: the only one that writes its partial. */
export interface Tenant {
  /** Monotonic ms of the last byte it accepted. */
  readonly lastProgress: number;
  /** Whether it holds its file open or bytes reserved: what idling gives back. */
  readonly holding: boolean;
  /** No byte for `idleMs`: close the file, give back the place and the reservation. */
  idle(): void;
  /** Another connection takes the partial over: stop writing it, for good. */
  fence(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
// The sweep runs at the shorter TTL, within these bounds, and on an engine's attach when the last
// sweep is this old.
const MIN_SWEEP_INTERVAL_MS = 1000;
const ATTACH_SWEEP_INTERVAL_MS = 60_000;

function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new TypeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}

function positive(name: string, value: number): number {
  if (!(value > 0 && Number.isFinite(value))) {
    throw new TypeError(`${name} must be a positive finite number, got ${value}`);
  }
  return value;
}

function positiveInteger(name: string, value: number): number {
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new TypeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * What the engines that receive into one directory share: a server makes one and gives it to
 * every session's engine; an engine given only `dir` makes its own. It holds the one-writer-per-
 * partial rule (a new offer of a transfer fences the connection that was writing it), the work
 * queue of each partial, the disk reservations of accepted transfers, the count of open
 * partials, the idle check, and the sweep of old partials, so that two engines never race each
 * other on the same files. Engines receiving into the same directory must share one.
 */
export class ReceiveDirectory {
  /** Target directory (absolute). */
  readonly dir: string;
  /** `<dir>/.tether-partial`. */
  readonly root: string;
  /** @internal */
  readonly minFreeBytes: number;
  /** @internal */
  readonly idleMs: number;
  /** @internal */
  readonly now: () => number;
  readonly #maxOpen: number;
  readonly #ttlMs: number;
  readonly #emptyTtlMs: number;
  readonly #freeBytes: (dir: string) => Promise<number>;
  /** Work on each partial (`<ownerKey>/<id>`), in order, across engines. */
  readonly #queues = new Map<string, Promise<void>>();
  readonly #tenants = new Map<string, Tenant>();
  /** Owner folders being removed by the sweep: offers for that owner wait. */
  readonly #removing = new Map<string, Promise<void>>();
  /** Error reporters of the engines using the directory (background sweeps report there). */
  readonly #engines = new Set<(error: TetherError) => void>();
  #reserved = 0;
  #open = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<number> | undefined;
  #lastSweep = Number.NEGATIVE_INFINITY;

  constructor(options: ReceiveDirectoryOptions) {
    if (typeof options.dir !== 'string' || options.dir.length === 0) {
      throw new TypeError('dir must be a non-empty string');
    }
    this.dir = nodePath.resolve(options.dir);
    this.root = nodePath.join(this.dir, PARTIAL_DIR);
    this.minFreeBytes = nonNegative('minFreeBytes', options.minFreeBytes ?? 0);
    this.#ttlMs = nonNegative('partialTtlMs', options.partialTtlMs ?? DAY_MS);
    this.#emptyTtlMs = Math.min(
      nonNegative('emptyPartialTtlMs', options.emptyPartialTtlMs ?? 5 * 60_000),
      this.#ttlMs,
    );
    this.#maxOpen = positiveInteger('maxOpenTransfers', options.maxOpenTransfers ?? 256);
    this.idleMs = positive('idleMs', options.idleMs ?? 5000);
    this.now = options.now ?? (() => performance.now());
    this.#freeBytes = options.io?.freeBytes ?? nodeIo.freeBytes;
  }

  /** Incoming transfers holding their partial open. */
  get openTransfers(): number {
    return this.#open;
  }

  /** Bytes accepted transfers may still write (counted against free space for new offers). */
  get reservedBytes(): number {
    return this.#reserved;
  }

  /**
   * Deletes partials and completion records of every owner untouched for `partialTtlMs` (those
   * without a durable byte after `emptyPartialTtlMs`), except transfers in progress, and empty
   * owner folders. Engines run it when they start and on attach (at most once a minute), and a
   * timer runs it while any engine uses the directory. Returns how many transfers it deleted.
   */
  sweep(): Promise<number> {
    if (this.#sweeping !== undefined) return this.#sweeping;
    this.#lastSweep = this.now();
    const sweeping = sweepPartials(this.root, {
      ttlMs: this.#ttlMs,
      emptyTtlMs: this.#emptyTtlMs,
      isActive: (owner, id) =>
        this.#queues.has(`${owner}/${id}`) || this.#tenants.has(`${owner}/${id}`),
      removeFolder: (owner, folder) => this.#removeFolder(owner, folder),
      now: Date.now(),
    });
    this.#sweeping = sweeping;
    const clear = (): void => {
      if (this.#sweeping === sweeping) this.#sweeping = undefined;
    };
    sweeping.then(clear, clear);
    return sweeping;
  }

  /** @internal An engine starts using the directory; `onError` hears of background failures. */
  join(onError: (error: TetherError) => void): void {
    this.#engines.add(onError);
    if (this.#engines.size === 1 && Number.isFinite(this.#emptyTtlMs)) {
      const interval = Math.min(Math.max(this.#emptyTtlMs, MIN_SWEEP_INTERVAL_MS), HOUR_MS);
      this.#sweepTimer = setInterval(() => this.#sweepInBackground(undefined), interval);
      this.#sweepTimer.unref();
    }
    // A server sees an engine per session: sweep on one only if the last sweep is a while ago.
    this.attached(onError);
  }

  /** @internal An engine started or attached a connection: sweep if the last is a while ago. */
  attached(onError: (error: TetherError) => void): void {
    if (this.now() - this.#lastSweep >= ATTACH_SWEEP_INTERVAL_MS) this.#sweepInBackground(onError);
  }

  /** @internal An engine closed; the timers stop with the last one. Waits for a sweep running. */
  async leave(onError: (error: TetherError) => void): Promise<void> {
    this.#engines.delete(onError);
    if (this.#engines.size === 0) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = undefined;
    }
    await this.#sweeping?.catch(() => {});
  }

  /**
   * @internal Runs `task` after every earlier task on the partial `key` (`<ownerKey>/<id>`), from
   * any engine; the returned promise settles with the task. A partial is busy (kept by the sweep,
   * its owner folder too) while tasks are queued.
   */
  queue(key: string, task: () => Promise<void>): Promise<void> {
    const next = (this.#queues.get(key) ?? Promise.resolve()).then(async () => {
      // The sweep may be removing this owner's (empty) folder: let it finish first.
      await this.#removing.get(key.slice(0, key.indexOf('/')));
      await task();
    });
    const settled = next.catch(() => {});
    this.#queues.set(key, settled);
    void settled.then(() => {
      if (this.#queues.get(key) === settled) this.#queues.delete(key);
    });
    return next;
  }

  /** @internal The transfer writing the partial `key`, if any. */
  tenant(key: string): Tenant | undefined {
    return this.#tenants.get(key);
  }

  /** @internal `tenant` is now the only writer of `key`. */
  admit(key: string, tenant: Tenant): void {
    this.#tenants.set(key, tenant);
    if (this.#idleTimer === undefined) {
      this.#idleTimer = setInterval(() => this.#checkIdle(), Math.max(this.idleMs / 2, 1));
      this.#idleTimer.unref();
    }
  }

  /** @internal `tenant` stopped writing `key`. */
  evict(key: string, tenant: Tenant): void {
    if (this.#tenants.get(key) === tenant) this.#tenants.delete(key);
    if (this.#tenants.size === 0) {
      clearInterval(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  /** @internal Takes a place under `maxOpenTransfers`; false when none is left. */
  takeOpenSlot(): boolean {
    if (this.#open >= this.#maxOpen) return false;
    this.#open++;
    return true;
  }

  /** @internal Gives back a place taken by `takeOpenSlot`. */
  releaseOpenSlot(): void {
    this.#open--;
  }

  /**
   * @internal Reserves `bytes` of free space, counting `minFreeBytes` and every other
   * reservation. Resolves to undefined when reserved, else to the free bytes seen.
   */
  async reserve(bytes: number): Promise<number | undefined> {
    if (bytes === 0) return undefined;
    const free = await this.#freeBytes(this.dir);
    // Read after the await, so two offers checked at once both count each other.
    if (free < bytes + this.minFreeBytes + this.#reserved) return free;
    this.#reserved += bytes;
    return undefined;
  }

  /** @internal Gives back reserved bytes (written, or no longer promised). */
  release(bytes: number): void {
    this.#reserved = Math.max(0, this.#reserved - bytes);
  }

  #checkIdle(): void {
    const now = this.now();
    for (const tenant of this.#tenants.values()) {
      if (tenant.holding && now - tenant.lastProgress >= this.idleMs) tenant.idle();
    }
  }

  async #removeFolder(owner: string, folder: string): Promise<void> {
    // An offer for this owner is queued or a transfer writes here: the folder is in use.
    for (const key of [...this.#queues.keys(), ...this.#tenants.keys()]) {
      if (key.startsWith(`${owner}/`)) return;
    }
    const removal = fs.rmdir(folder).catch(() => {});
    this.#removing.set(owner, removal);
    try {
      await removal;
    } finally {
      this.#removing.delete(owner);
    }
  }

  #sweepInBackground(onError: ((error: TetherError) => void) | undefined): void {
    if (!Number.isFinite(this.#emptyTtlMs)) return;
    this.sweep().catch((error: unknown) => {
      const report = onError ?? this.#engines.values().next().value;
      report?.(
        new TetherError(ErrorCode.FILE_WRITE_FAILED, `sweeping partial files failed: ${error}`, {
          cause: error,
        }),
      );
    });
  }
}
