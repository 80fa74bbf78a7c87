import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Scheduler } from '@tether/core';
import { DataFlag, ErrorCode, type SessionLog, TetherError } from '@tether/protocol';
import { type PendingSend, SendEntry, type SendReceipt } from '../outbox.js';
import { DamageReason } from './damage-reason.js';
import { type JournalEntry, replayJournal, UnknownJournalVersion } from './journal-replay.js';
import { JournalWriter, syncDirectorySync } from './journal-writer.js';
import { JournaledOutbound } from './journaled-outbound.js';
import { RecordArena } from './record-codec.js';
import { type CursorState, SessionCursor } from './session-cursor.js';
import { StoreLock } from './store-lock.js';

export { DamageReason };

/** Payload of the `damage` event: what opening the store cut from a damaged file. */
export interface StoreDamage {
  code: typeof ErrorCode.STORE_DAMAGED;
  /** The file: `journal` (outbound messages) or `session` (session and inbound position). */
  file: 'journal' | 'session';
  reason: DamageReason;
  /** Where the valid prefix of the journal ends (0 for the session file). */
  offset: number;
  /** Bytes cut from the journal (a copy of the damaged file is kept as `journal.damaged`). */
  droppedBytes: number;
  message: string;
}

/** A message sent before a restart, restored from the store and not yet acknowledged. */
export interface RestoredMessage {
  readonly payload: Buffer;
  /** Its seq if it was transmitted before the restart (its id is then `${clientId}:${seq}`), else 0 until it is. */
  readonly seq: number;
  /** Settles as `send()`'s promise would have: the receipt once the server's application has it. */
  readonly receipt: Promise<SendReceipt>;
}

/** Counters of a store, in `stats().store`. */
export interface StoreStats {
  /** Size of the journal file. */
  journalBytes: number;
  /** What a compacted journal would hold (unacknowledged messages and state), about. */
  liveBytes: number;
  /** Writes (each one batch of records). */
  batches: number;
  /** fsync calls. */
  syncs: number;
  compactions: number;
}

/** Settings of a store. */
export interface ClientStoreOptions {
  dir: string;
  /** fsync every batch (true) or never. */
  sync: boolean;
  /** The `clientId` option, if given. */
  clientId: string | undefined;
  scheduler: Scheduler;
  /** Compact a journal from this size on. Default 1 MiB. */
  compactMinBytes?: number;
  /** Wall clock, for TTLs that must survive a restart. Default Date.now. */
  wallNow?: () => number;
}

// After a journal lost data in its middle, seqs continue this far beyond the last one it knew,
// so no message reuses an id the server may have seen on another message.
export const SEQ_JUMP: number = 2 ** 32;
// Request ids are reserved in the journal by blocks, so that a restart never reuses one whose
// response may still come.
const REQUEST_ID_BLOCK = 1024;
const DEFAULT_COMPACT_MIN_BYTES = 1024 * 1024;

/**
 * A client's store on disk: a directory with a lock, an append-only journal of the outbound
 * stream (group commit, compaction), and a session file (session id, resume token, position in
 * the server's stream, rewritten in place before each message reaches the application). It is
 * the session's {@link SessionLog}: the link waits for `commit` before sending DATA whose seqs
 * it recorded and before acknowledging what the application handled.
 */
export class ClientStore implements SessionLog {
  readonly clientId: string;
  readonly outbound: JournaledOutbound;
  /** Messages restored at open, in send order. */
  readonly restored: readonly RestoredMessage[];
  /** Damage found at open. */
  readonly damage: readonly StoreDamage[];
  /** The session restored at open ('' for none) and the server stream's position. */
  readonly session: Readonly<CursorState>;
  /** The first request id that is safe to use. */
  readonly firstRequestId: number;
  readonly #lock: StoreLock;
  readonly #cursor: SessionCursor;
  readonly #writer: JournalWriter;
  #requestIds: number;
  #diverged = false;
  /** Messages of the restored session up to this seq may have reached the application. */
  #redeliverUpTo: number;
  readonly #failed: (error: TetherError) => void;
  #failure: TetherError | undefined;
  #closed: Promise<void> | undefined;

  private constructor(opened: Opened) {
    this.clientId = opened.clientId;
    this.outbound = opened.outbound;
    this.restored = opened.restored;
    this.damage = opened.damage;
    this.session = opened.session;
    this.#lock = opened.lock;
    this.#cursor = opened.cursor;
    this.#requestIds = opened.requestIds;
    this.#failed = opened.failed;
    this.firstRequestId = opened.requestIds + 1;
    const { delivered, handing } = opened.session;
    this.#redeliverUpTo = handing > delivered ? handing : 0;
    this.#writer = new JournalWriter(
      opened.fd,
      opened.fileBytes,
      opened.cursor,
      {
        path: opened.path,
        dir: opened.dir,
        sync: opened.sync,
        scheduler: opened.scheduler,
        compactMinBytes: opened.compactMinBytes,
      },
      {
        snapshot: (arena) =>
          this.outbound.snapshot(arena, this.clientId, this.#requestIds, this.#diverged),
        liveBytes: () => this.outbound.liveBytes,
        failed: (error) => opened.failed(storeFailed(error)),
      },
    );
    this.outbound.attach(this.#writer);
  }

  /**
   * Opens the store in `options.dir` (creating it), synchronously: takes the lock, replays the
   * journal and the session file to their valid prefix, and writes a fresh journal from that
   * state. `failed` hears of a write that fails later. Throws STORE_LOCKED when another client
   * holds the store, STORE_FAILED when it cannot be read or written, INVALID_OPTION when
   * `clientId` differs from the store's.
   */
  static open(options: ClientStoreOptions, failed: (error: TetherError) => void): ClientStore {
    try {
      fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw storeFailed(error);
    }
    const lock = StoreLock.acquire(join(options.dir, 'lock'));
    try {
      return new ClientStore(openLocked(options, lock, failed));
    } catch (error) {
      lock.release();
      throw error instanceof TetherError ? error : storeFailed(error);
    }
  }

  // SessionLog. Outbound changes are recorded by the journaled outbound as they happen.
  sent(): void {}

  acked(): void {}

  /** Every message up to `seq` was handled: recorded before the ACK that says so. */
  delivered(seq: number): void {
    try {
      this.#cursor.handled(seq);
    } catch (error) {
      // Not recorded: the ACK waiting for the commit must not go.
      this.#failure = storeFailed(error);
      this.#failed(this.#failure);
    }
  }

  commit(): Promise<void> | undefined {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return this.#writer.commit();
  }

  /**
   * Message `seq` of the server's stream is about to reach the application: recorded first, so
   * after a crash it alone may come again. Returns whether it may have reached the application
   * before a restart (it was being handled when the previous process died).
   */
  handing(seq: number): boolean {
    this.#cursor.handing(seq);
    return seq <= this.#redeliverUpTo;
  }

  /** A WELCOME: the session (new or resumed) and its token. */
  adoptSession(sessionId: string, resumeToken: string, resumed: boolean): void {
    if (!resumed) this.#redeliverUpTo = 0;
    this.#cursor.session(sessionId, resumeToken, resumed);
  }

  /** Request id `id` is about to be used: reserves a block of ids in the journal when needed. */
  useRequestId(id: number): void {
    if (id <= this.#requestIds) return;
    this.#requestIds = id + REQUEST_ID_BLOCK;
    this.#writer.arena.requestIds(this.#requestIds);
    this.#writer.touch();
  }

  /**
   * The server has more of our stream than the journal does: records it had made durable were
   * lost. Recorded, so that the next open starts over (new session, new seqs).
   */
  diverged(): void {
    this.#diverged = true;
    this.#writer.arena.diverged();
    this.#writer.touch();
  }

  /** Resolves once everything recorded so far is durable (per the sync policy). */
  journaled(): Promise<void> {
    const commit = this.commit();
    if (commit === undefined) return Promise.resolve();
    return commit.catch((error: unknown) => {
      throw storeFailed(error);
    });
  }

  stats(): StoreStats {
    const { fileBytes, batches, syncs, compactions } = this.#writer.stats;
    return {
      journalBytes: fileBytes,
      liveBytes: this.outbound.liveBytes,
      batches,
      syncs,
      compactions,
    };
  }

  /** Writes what is pending, closes the files and releases the lock. Never rejects. */
  close(): Promise<void> {
    this.#closed ??= this.#writer.close().finally(() => {
      try {
        this.#cursor.close();
      } finally {
        this.#lock.release();
      }
    });
    return this.#closed;
  }
}

interface Opened {
  clientId: string;
  outbound: JournaledOutbound;
  restored: RestoredMessage[];
  damage: StoreDamage[];
  session: CursorState;
  requestIds: number;
  lock: StoreLock;
  cursor: SessionCursor;
  fd: number;
  fileBytes: number;
  path: string;
  dir: string;
  sync: boolean;
  scheduler: Scheduler;
  compactMinBytes: number;
  failed: (error: TetherError) => void;
}

function openLocked(
  options: ClientStoreOptions,
  lock: StoreLock,
  failed: (error: TetherError) => void,
): Opened {
  const { dir, scheduler } = options;
  const wallNow = options.wallNow ?? Date.now;
  const path = join(dir, 'journal');
  const damage: StoreDamage[] = [];
  const bytes = readIfExists(path);
  let replayed: ReturnType<typeof replayJournal> | undefined;
  try {
    replayed = bytes === undefined ? undefined : replayJournal(bytes);
  } catch (error) {
    if (error instanceof UnknownJournalVersion) {
      throw new TetherError(ErrorCode.STORE_FAILED, `${path}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const state = replayed?.state;
  const fault = replayed?.fault;
  if (fault !== undefined && bytes !== undefined) {
    damage.push({
      code: ErrorCode.STORE_DAMAGED,
      file: 'journal',
      reason: fault.inMiddle ? DamageReason.CORRUPT : DamageReason.TORN_TAIL,
      offset: fault.offset,
      droppedBytes: bytes.length - fault.offset,
      message: `${path}: ${fault.detail} at offset ${fault.offset}; the ${bytes.length - fault.offset} bytes from there on were cut`,
    });
  }
  if (state?.diverged) {
    damage.push({
      code: ErrorCode.STORE_DAMAGED,
      file: 'journal',
      reason: DamageReason.DIVERGED,
      offset: replayed?.validBytes ?? 0,
      droppedBytes: 0,
      message: `${path}: the server was found ahead of this journal; starting a new session`,
    });
  }
  const storedId = state?.clientId;
  if (storedId !== undefined && options.clientId !== undefined && storedId !== options.clientId) {
    throw new TetherError(
      ErrorCode.INVALID_OPTION,
      `clientId ${JSON.stringify(options.clientId)} differs from the store's ${JSON.stringify(storedId)}`,
    );
  }
  const clientId = storedId ?? options.clientId ?? randomUUID();
  // Lost data in the middle, or a server found ahead: start over (new session, new seqs).
  const startOver = fault?.inMiddle === true || state?.diverged === true;

  const {
    cursor,
    state: cursorState,
    damage: cursorDamage,
  } = SessionCursor.open(join(dir, 'session'));
  try {
    if (cursorDamage !== undefined) {
      damage.push({
        code: ErrorCode.STORE_DAMAGED,
        file: 'session',
        reason: DamageReason.CORRUPT,
        offset: 0,
        droppedBytes: 0,
        message: `${join(dir, 'session')}: ${cursorDamage}`,
      });
    }
    // The session belongs to the journal's stream: without that stream (a new or headless
    // journal), or when starting over, it cannot be resumed.
    let session = cursorState;
    if (startOver || storedId === undefined) {
      cursor.session('', '', false);
      session = { sessionId: '', resumeToken: '', delivered: 0, handing: 0 };
    }

    const acked = state === undefined ? 0 : startOver ? state.sent + SEQ_JUMP : state.acked;
    const offset = scheduler.now() - wallNow();
    const outbound = new JournaledOutbound(acked, state?.nextId ?? 1, (expiresAt) =>
      expiresAt === Number.POSITIVE_INFINITY ? 0 : Math.max(1, Math.round(expiresAt - offset)),
    );
    const restored: RestoredMessage[] = [];
    const restore = (entry: JournalEntry, into: PendingSend[]): void => {
      // A TTL bounds the wait before the first transmission: one transmitted has none left.
      const expiresAt =
        entry.expiresAt === 0 || entry.seq > 0
          ? Number.POSITIVE_INFINITY
          : entry.expiresAt + offset;
      const pending = new SendEntry(
        entry.payload,
        entry.flags,
        entry.requestId,
        expiresAt,
        ignore,
        ignore,
        entry.id,
      );
      // Plain messages are the application's to wait on; requests and responses are not.
      if (entry.flags === 0) restored.push(restoredMessage(pending));
      into.push(pending);
    };
    const inFlight: PendingSend[] = [];
    const queued: PendingSend[] = [];
    if (state !== undefined) {
      // A request whose process died has nobody waiting for its response: one never sent is
      // dropped; one sent keeps its seq (the stream has no gaps) and its response is ignored.
      for (const entry of state.inFlight) {
        if (!startOver) restore(entry, inFlight);
        else if (!(entry.flags & DataFlag.REQUEST)) restore(entry, queued);
      }
      for (const entry of state.queued.values()) {
        if (!(entry.flags & DataFlag.REQUEST)) restore(entry, queued);
      }
    }
    outbound.restore(inFlight, queued);
    const requestIds = state?.requestIds ?? 0;

    // A fresh journal of this state, written and synced before anything else happens.
    const sync = options.sync;
    const arena = new RecordArena();
    outbound.snapshot(arena, clientId, requestIds, false);
    const temp = `${path}.tmp`;
    const fd = fs.openSync(temp, 'w', 0o600);
    let fileBytes: number;
    try {
      fileBytes = fs.writevSync(fd, arena.take());
      if (sync) {
        fs.fdatasyncSync(fd);
        if (cursor.dirty) fs.fdatasyncSync(cursor.fd);
        cursor.dirty = false;
      }
      // The damaged journal is kept for a look, in place of the previous one.
      if (damage.some((d) => d.file === 'journal')) fs.renameSync(path, `${path}.damaged`);
      fs.renameSync(temp, path);
      if (sync) syncDirectorySync(dir);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    return {
      clientId,
      outbound,
      restored,
      damage,
      session,
      requestIds,
      lock,
      cursor,
      fd,
      fileBytes,
      path,
      dir,
      sync,
      scheduler,
      compactMinBytes: options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES,
      failed,
    };
  } catch (error) {
    cursor.close();
    throw error;
  }
}

// A restored message's view for the application: its promise, and its seq as it changes.
function restoredMessage(entry: PendingSend): RestoredMessage {
  const { promise, resolve, reject } = withResolvers<SendReceipt>();
  // The application may never look at it: a rejection (at close) must not go unhandled.
  promise.catch(ignore);
  entry.resolve = resolve;
  entry.reject = reject;
  return {
    payload: entry.payload,
    get seq() {
      return entry.seq;
    },
    receipt: promise,
  };
}

function withResolvers<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function ignore(): void {}

function readIfExists(path: string): Buffer | undefined {
  try {
    return fs.readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function storeFailed(error: unknown): TetherError {
  if (error instanceof TetherError) return error;
  return new TetherError(
    ErrorCode.STORE_FAILED,
    `the client's store failed: ${(error as Error).message}`,
    { cause: error },
  );
}
