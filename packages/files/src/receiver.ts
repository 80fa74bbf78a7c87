import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import {
  ChunkVerdict,
  ErrorCode,
  encodeFileAccept,
  encodeFileComplete,
  encodeFileFailed,
  encodeFileStatus,
  type FileChunkFrame,
  type FileOfferBody,
  FileReceiveState,
  TetherError,
} from '@tether/protocol';
import { checkFileName } from './file-name.js';
import { hashFile } from './hash.js';
import { errnoCode, type FileIo } from './io.js';
import { fsyncDir, PartialStore, type Sidecar } from './partial-store.js';
import type { Port } from './port.js';

/** A file stored by the receiver, emitted as `file`. */
export interface ReceivedFile {
  /** Transfer id. */
  id: string;
  /** Name the sender offered. */
  name: string;
  /** Where it was stored (absolute); the name may carry a ` (n)` suffix. */
  path: string;
  size: number;
  /** Verified SHA-256, lowercase hex. */
  sha256: string;
  /** The engine's `owner`: who sent it. */
  owner: string;
}

/**
 * What the `decide` handler sees of an offer. The SHA-256 is not known yet: it comes with
 * FILE_END, and the file is stored only if it matches.
 */
export interface FileOfferInfo {
  name: string;
  size: number;
  owner: string;
}

/** How the engine receives files. */
export interface ReceiveOptions {
  /** Target directory; created if missing. Partials live in its `.tether-partial` folder. */
  dir: string;
  /** Larger offers are refused with FILE_TOO_LARGE. Default Infinity. */
  maxFileSize?: number;
  /** Keep at least this many bytes free after the file; else FILE_NO_SPACE. Default 0. */
  minFreeBytes?: number;
  /** Partials (and completion records) untouched this long are deleted. Default 24 h. */
  partialTtlMs?: number;
  /** Called for each offer that passed the checks; false refuses it (TRANSFER_REFUSED). */
  decide?: (offer: FileOfferInfo) => boolean | Promise<boolean>;
}

/** Settings of the receiving half, resolved by the engine. */
export interface ReceiverOptions {
  owner: string;
  receive: Required<Omit<ReceiveOptions, 'decide'>> & Pick<ReceiveOptions, 'decide'>;
  io: FileIo;
  onFile: (file: ReceivedFile) => void;
  onError: (error: TetherError) => void;
  /** Monotonic clock in ms (the engine's). */
  now: () => number;
}

/** One incoming file on the current connection. */
interface Incoming {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  /** The SHA-256 FILE_END announced; the file is verified against it. */
  expectedSha256: string | undefined;
  readonly generation: number;
  readonly state: FileReceiveState;
  readonly handle: fs.FileHandle;
  /** Running SHA-256 of the bytes written, when the transfer started at 0 on this connection. */
  readonly hash: Hash | undefined;
  /** Writes and the final verification, in order. */
  chain: Promise<void>;
  /** Chunks accepted and not yet handed to a write, in offset order. */
  queued: Buffer[];
  queuedBytes: number;
  /** A write task for `queued` is on the chain. */
  writeScheduled: boolean;
  /** The durable checkpoint in progress, if any (it runs beside the writes). */
  checkpointing: Promise<void> | undefined;
  /** When the last checkpoint started (or the transfer was accepted). */
  checkpointAt: number;
  /** Offset up to which the data is known fsynced (recorded in the sidecar or not). */
  flushed: number;
  /** Failed or cancelled: pending work stops. */
  stopped: boolean;
  handleClosed: boolean;
  reserved: number;
}

// A transfer's FILE_STATUS goes out once it committed this many bytes more than it last reported
// (or at once for a rewind or the end of the file); a smaller advance goes out after
// STATUS_DELAY_MS. 1 MiB is an eighth of the default window: the sender never waits on it.
const STATUS_STEP = 1024 * 1024;
const STATUS_DELAY_MS = 5;

// Every DEFAULT_FILE_SYNC_BYTES (4 MiB) written the data is fsynced in the background, so the
// fsync at FILE_END has little left to write; the offset is recorded in the sidecar (a file
// written, fsynced and renamed: a checkpoint a restart resumes from) with that fsync at most this
// often, so a fast transfer records a few a second rather than one per 4 MiB. A link drop or the
// end of the transfer makes everything durable and recorded at once whatever the interval.
const CHECKPOINT_INTERVAL_MS = 250;

// Work in progress per partial file (`<owner folder>/<id>`), across every engine of the process.
const busyPartials = new Map<string, Promise<void>>();

// Bytes promised to accepted transfers, per target directory, across every engine of the
// process: the free-space check of one offer counts what others will still write.
const reservedBytes = new Map<string, number>();

function reserve(dir: string, bytes: number): void {
  reservedBytes.set(dir, (reservedBytes.get(dir) ?? 0) + bytes);
}

function release(dir: string, bytes: number): void {
  const left = (reservedBytes.get(dir) ?? 0) - bytes;
  if (left > 0) reservedBytes.set(dir, left);
  else reservedBytes.delete(dir);
}

/**
 * The receiving half of a transfer engine. Each offer is checked before any byte arrives (name,
 * size, free space, the application's `decide`), then resumed from its partial's durable offset
 * or started at 0. Chunks are checked by the state machine and written in order through a FileHandle;
 * a checkpoint (fsync, sidecar) is taken every few MiB; at FILE_END the file is verified by
 * SHA-256, fsynced, given a free name without overwriting, and the folder fsynced.
 */
export class Receiver {
  readonly #port: Port;
  readonly #options: ReceiverOptions;
  readonly #store: PartialStore;
  readonly #incoming = new Map<string, Incoming>();
  /** Per transfer id: the offer being handled or the transfer being paused; later offers wait. */
  readonly #busy = new Map<string, Promise<void>>();
  readonly #dirty = new Set<Incoming>();
  #flush: NodeJS.Immediate | undefined;
  #statusTimer: NodeJS.Timeout | undefined;

  constructor(port: Port, options: ReceiverOptions) {
    this.#port = port;
    this.#options = options;
    this.#store = new PartialStore(options.receive.dir, options.owner);
  }

  /** Incoming transfers in progress. */
  get count(): number {
    return this.#incoming.size;
  }

  get store(): PartialStore {
    return this.#store;
  }

  /** `<ownerKey>/<id>` of every transfer in progress, kept by the sweep whatever its age. */
  activeKeys(): Set<string> {
    const keys = new Set<string>();
    for (const id of [...this.#incoming.keys(), ...this.#busy.keys()]) {
      keys.add(`${this.#store.key}/${id}`);
    }
    return keys;
  }

  onOffer(body: FileOfferBody): void {
    const generation = this.#port.generation;
    this.#serial(body.id, () => this.#offer(body, generation));
  }

  onChunk(frame: FileChunkFrame): void {
    const incoming = this.#incoming.get(frame.id);
    if (incoming === undefined) return;
    const verdict = incoming.state.chunk(frame.offset, frame.data, frame.crc32);
    if (verdict === ChunkVerdict.WRITE) {
      // Chunks are accepted in offset order, so the running hash can take them now.
      incoming.hash?.update(frame.data);
      incoming.queued.push(frame.data);
      incoming.queuedBytes += frame.data.length;
      if (!incoming.writeScheduled) {
        incoming.writeScheduled = true;
        this.#enqueue(incoming, () => this.#writeQueued(incoming));
      }
    } else if (verdict === ChunkVerdict.DISCARD) {
      this.#markDirty(incoming);
    }
  }

  onEnd(id: string, sha256: string): void {
    const incoming = this.#incoming.get(id);
    if (incoming === undefined || !incoming.state.end()) return;
    incoming.expectedSha256 = sha256;
    // Runs after every write accepted so far.
    this.#enqueue(incoming, () => this.#finish(incoming));
  }

  /** FILE_CANCEL from the sender: delete the partial. Returns whether it named a transfer here. */
  onCancel(id: string): boolean {
    const incoming = this.#incoming.get(id);
    if (incoming === undefined) {
      if (!this.#busy.has(id)) return false;
      // Cancelled while its offer is still being prepared: cancel once it is accepted.
      const generation = this.#port.generation;
      this.#serial(id, async () => {
        const late = this.#incoming.get(id);
        if (late?.generation === generation) this.onCancel(id);
      });
      return true;
    }
    this.#stop(incoming);
    this.#serial(id, async () => {
      await this.#settled(incoming);
      await this.#closeHandle(incoming);
      await this.#store.remove(id);
    });
    return true;
  }

  /** The connection dropped: checkpoint every transfer and close its file; the sender re-offers. */
  detach(): void {
    for (const incoming of [...this.#incoming.values()]) this.#pause(incoming);
  }

  /** Pauses everything and waits for pending work (partials stay on disk). */
  async close(): Promise<void> {
    this.detach();
    while (this.#busy.size > 0) await Promise.all(this.#busy.values());
    if (this.#flush !== undefined) clearImmediate(this.#flush);
    this.#flush = undefined;
    clearTimeout(this.#statusTimer);
    this.#statusTimer = undefined;
    this.#dirty.clear();
  }

  /** Runs `task` after earlier work on the same transfer id; errors are reported, not thrown. */
  #serial(id: string, task: () => Promise<void>): void {
    // Keyed across engines too: a client that reconnects as a new session gets a new engine
    // for the same partials, and its offer must wait for the old engine's pause.
    const key = `${this.#store.ownerDir}/${id}`;
    const previous = busyPartials.get(key) ?? this.#busy.get(id) ?? Promise.resolve();
    const next = previous.then(task).catch((error: unknown) => {
      this.#options.onError(
        new TetherError(ErrorCode.FILE_WRITE_FAILED, `file transfer ${id}: ${String(error)}`, {
          cause: error,
        }),
      );
    });
    this.#busy.set(id, next);
    busyPartials.set(key, next);
    void next.then(() => {
      if (this.#busy.get(id) === next) this.#busy.delete(id);
      if (busyPartials.get(key) === next) busyPartials.delete(key);
    });
  }

  async #offer(offer: FileOfferBody, generation: number): Promise<void> {
    const { id, name, size } = offer;
    const { owner, receive } = this.#options;
    const refuse = (code: ErrorCode, message: string, retryable: boolean): void => {
      if (this.#port.generation !== generation) return;
      this.#port.send(encodeFileFailed({ id, code, message, retryable }));
    };
    const existing = this.#incoming.get(id);
    if (existing !== undefined) {
      // The sender offered again on the same connection: start over from the durable state.
      this.#incoming.delete(id);
      await this.#pauseNow(existing);
    }
    const problem = checkFileName(name);
    if (problem !== undefined) return refuse(ErrorCode.FILE_NAME_INVALID, problem, false);
    if (size > receive.maxFileSize) {
      return refuse(
        ErrorCode.FILE_TOO_LARGE,
        `${size} bytes is over the limit of ${receive.maxFileSize}`,
        false,
      );
    }
    if (receive.decide !== undefined) {
      let accepted: boolean;
      try {
        accepted = await receive.decide({ name, size, owner });
      } catch (error) {
        return refuse(ErrorCode.TRANSFER_REFUSED, `the handler failed: ${String(error)}`, false);
      }
      if (!accepted)
        return refuse(ErrorCode.TRANSFER_REFUSED, 'the receiver refused the file', false);
    }
    if (this.#port.generation !== generation) return;

    const store = this.#store;
    let handle: fs.FileHandle | undefined;
    let committed = 0;
    let reserved = 0;
    try {
      await store.prepare();
      const sidecar = await store.read(id);
      if (sidecar?.completedPath !== undefined) {
        const sha256 = sidecar.sha256;
        if (
          sidecar.size === size &&
          sha256 !== undefined &&
          (await fileSize(sidecar.completedPath)) === size
        ) {
          // Stored before; the sender missed FILE_COMPLETE (and checks the SHA-256 against its file).
          if (this.#port.generation === generation) {
            this.#port.send(encodeFileComplete({ id, size, sha256 }));
          }
          return;
        }
        await store.remove(id);
      } else if (sidecar !== undefined) {
        // Same id: same path, size and mtime on the sender. Were the bytes different all the same,
        // the SHA-256 at FILE_END would not match and the partial would be deleted.
        if (sidecar.owner === owner && sidecar.size === size) {
          committed = sidecar.committed;
        } else {
          await store.remove(id);
        }
      }

      const free = await this.#options.io.freeBytes(store.dir);
      const need = size - committed + receive.minFreeBytes + (reservedBytes.get(store.dir) ?? 0);
      if (free < need) {
        return refuse(
          ErrorCode.FILE_NO_SPACE,
          `${size - committed} bytes to store, ${free} free (keeping ${receive.minFreeBytes})`,
          true,
        );
      }

      const part = store.partPath(id);
      if (committed > 0) {
        try {
          handle = await fs.open(part, 'r+');
          if ((await handle.stat()).size < committed) committed = 0;
          // Bytes past the durable offset may be torn: drop them.
          await handle.truncate(committed);
        } catch (error) {
          if (errnoCode(error) !== 'ENOENT') throw error;
          committed = 0;
        }
      }
      const created = handle === undefined;
      handle ??= await fs.open(part, 'w');
      await store.write(this.#sidecar(offer, committed));
      if (created) await fsyncDir(store.ownerDir);
      if (this.#port.generation !== generation) {
        await handle.close();
        return;
      }
      reserved = size - committed;
      reserve(store.dir, reserved);
    } catch (error) {
      await handle?.close().catch(() => {});
      const code =
        errnoCode(error) === 'ENOSPC' ? ErrorCode.FILE_NO_SPACE : ErrorCode.FILE_WRITE_FAILED;
      return refuse(code, `cannot prepare the file: ${String(error)}`, true);
    }

    const incoming: Incoming = {
      id,
      name,
      size,
      expectedSha256: undefined,
      generation,
      state: new FileReceiveState({ size, committed }),
      handle,
      hash: committed === 0 ? createHash('sha256') : undefined,
      chain: Promise.resolve(),
      queued: [],
      queuedBytes: 0,
      writeScheduled: false,
      checkpointing: undefined,
      checkpointAt: this.#options.now(),
      flushed: committed,
      stopped: false,
      handleClosed: false,
      reserved,
    };
    this.#incoming.set(id, incoming);
    this.#port.send(encodeFileAccept({ id, offset: committed }));
  }

  /**
   * Writes every chunk queued since the last write with one call (a burst of chunks costs one
   * system call), at the committed offset. A checkpoint due after it starts beside the next writes.
   */
  async #writeQueued(incoming: Incoming): Promise<void> {
    const chunks = incoming.queued;
    const bytes = incoming.queuedBytes;
    incoming.queued = [];
    incoming.queuedBytes = 0;
    incoming.writeScheduled = false;
    if (incoming.stopped || bytes === 0) return;
    try {
      await this.#options.io.write(incoming.handle, chunks, incoming.state.committed);
      incoming.state.written(bytes);
      const released = Math.min(incoming.reserved, bytes);
      incoming.reserved -= released;
      release(this.#store.dir, released);
    } catch (error) {
      this.#failWrite(incoming, error);
      return;
    }
    this.#startCheckpoint(incoming);
    this.#markDirty(incoming);
  }

  /**
   * Every 4 MiB written, fsyncs the data in the background, and records a checkpoint with it when
   * the last one is CHECKPOINT_INTERVAL_MS old: writes go on meanwhile (fdatasync covers what was
   * written before it started, which is all it records). One at a time.
   */
  #startCheckpoint(incoming: Incoming): void {
    const { state } = incoming;
    if (incoming.stopped || incoming.checkpointing !== undefined) return;
    if (state.committed - incoming.flushed < state.syncEveryBytes) return;
    const now = this.#options.now();
    const record = state.needsSync && now - incoming.checkpointAt >= CHECKPOINT_INTERVAL_MS;
    if (record) incoming.checkpointAt = now;
    const work = record ? this.#checkpoint(incoming) : this.#flushData(incoming);
    incoming.checkpointing = work.then(
      () => {
        incoming.checkpointing = undefined;
        this.#startCheckpoint(incoming);
      },
      (error: unknown) => {
        incoming.checkpointing = undefined;
        this.#failWrite(incoming, error);
      },
    );
  }

  /** Waits for the writes and the checkpoint in progress (none starts once `stopped` is set). */
  async #settled(incoming: Incoming): Promise<void> {
    await incoming.chain;
    while (incoming.checkpointing !== undefined) await incoming.checkpointing;
  }

  /** Makes the committed bytes durable: fsync the data, then record the offset in the sidecar. */
  async #checkpoint(incoming: Incoming): Promise<void> {
    const committed = await this.#flushData(incoming);
    await this.#store.write(this.#sidecar(incoming, committed));
    incoming.state.checkpoint(committed);
  }

  /** fsyncs the data written so far; returns the offset that is now durable. */
  async #flushData(incoming: Incoming): Promise<number> {
    const committed = incoming.state.committed;
    await incoming.handle.datasync();
    incoming.flushed = Math.max(incoming.flushed, committed);
    return committed;
  }

  /** Verifies the SHA-256, stores the file under a free name, answers FILE_COMPLETE. */
  async #finish(incoming: Incoming): Promise<void> {
    const { state, id, size } = incoming;
    if (incoming.stopped || !state.readyToVerify) return;
    state.verify();
    const store = this.#store;
    let finalPath: string;
    let sha256: string;
    try {
      // A checkpoint still running would write its sidecar over the completion record.
      while (incoming.checkpointing !== undefined) await incoming.checkpointing;
      if (incoming.stopped) return;
      sha256 =
        incoming.hash !== undefined
          ? incoming.hash.digest('hex')
          : await hashFile(incoming.handle, size);
      if (sha256 !== incoming.expectedSha256) {
        this.#stop(incoming);
        await this.#closeHandle(incoming);
        await store.remove(id);
        this.#sendFailed(incoming, ErrorCode.FILE_CHECKSUM_MISMATCH, 'SHA-256 mismatch', true);
        return;
      }
      await incoming.handle.sync();
      await this.#closeHandle(incoming);
      finalPath = await store.claimFinalName(id, incoming.name);
      // The completion record goes first: a crash now leaves a record, not a second upload.
      await store.write({ ...this.#sidecar(incoming, size), sha256, completedPath: finalPath });
      await store.removePart(id);
      await fsyncDir(store.dir);
    } catch (error) {
      this.#failWrite(incoming, error);
      return;
    }
    state.done();
    this.#stop(incoming);
    if (this.#port.generation === incoming.generation) {
      this.#port.send(encodeFileComplete({ id, size, sha256 }));
    }
    this.#options.onFile({
      id,
      name: incoming.name,
      path: finalPath,
      size,
      sha256,
      owner: this.#options.owner,
    });
  }

  /** A write failed: FILE_FAILED (retryable), the partial kept at its last durable offset. */
  #failWrite(incoming: Incoming, error: unknown): void {
    if (incoming.stopped) return;
    this.#stop(incoming);
    const noSpace = errnoCode(error) === 'ENOSPC';
    // Best effort: record what was written before the failure (on a full disk this may fail
    // too; the previous checkpoint then stays), close the file, and only then tell the sender,
    // so an offer that follows at once finds the partial durable.
    this.#serial(incoming.id, async () => {
      try {
        await this.#settled(incoming);
        if (incoming.state.committed > incoming.state.synced) await this.#checkpoint(incoming);
      } catch {
        // Keep the previous checkpoint.
      } finally {
        await this.#closeHandle(incoming);
        this.#sendFailed(
          incoming,
          noSpace ? ErrorCode.FILE_NO_SPACE : ErrorCode.FILE_WRITE_FAILED,
          noSpace
            ? 'the receiver ran out of disk space'
            : `cannot write the file: ${String(error)}`,
          true,
        );
      }
    });
  }

  #sendFailed(incoming: Incoming, code: ErrorCode, message: string, retryable: boolean): void {
    if (this.#port.generation !== incoming.generation) return;
    this.#port.send(encodeFileFailed({ id: incoming.id, code, message, retryable }));
  }

  /** Forgets a transfer on this connection: later frames for it are ignored. */
  #stop(incoming: Incoming): void {
    if (incoming.stopped) return;
    incoming.stopped = true;
    incoming.state.fail();
    this.#dirty.delete(incoming);
    if (this.#incoming.get(incoming.id) === incoming) this.#incoming.delete(incoming.id);
    release(this.#store.dir, incoming.reserved);
    incoming.reserved = 0;
  }

  /** Detach: finish the writes already accepted, checkpoint, close; the sidecar keeps the offset. */
  #pause(incoming: Incoming): void {
    if (incoming.stopped) return;
    this.#incoming.delete(incoming.id);
    this.#serial(incoming.id, () => this.#pauseNow(incoming));
  }

  async #pauseNow(incoming: Incoming): Promise<void> {
    // Writes already accepted still land (stopped is set after them), so the checkpoint holds them.
    await this.#settled(incoming);
    if (incoming.stopped) return;
    this.#stop(incoming);
    try {
      if (incoming.state.committed > incoming.state.synced) await this.#checkpoint(incoming);
    } finally {
      await this.#closeHandle(incoming);
    }
  }

  /** Appends work to the transfer's chain; a failure is reported and does not block what follows. */
  #enqueue(incoming: Incoming, task: () => Promise<void>): void {
    incoming.chain = incoming.chain.then(task).catch((error: unknown) => {
      this.#failWrite(incoming, error);
    });
  }

  async #closeHandle(incoming: Incoming): Promise<void> {
    if (incoming.handleClosed) return;
    incoming.handleClosed = true;
    await incoming.handle.close().catch(() => {});
  }

  #markDirty(incoming: Incoming): void {
    if (incoming.stopped) return;
    this.#dirty.add(incoming);
    // At most one FILE_STATUS per transfer per event-loop turn, however many chunks it wrote.
    this.#flush ??= setImmediate(this.#sendStatuses);
  }

  /**
   * Sends the statuses that are due (see `FileReceiveState.statusDue`); smaller advances wait for
   * the next step or STATUS_DELAY_MS, whichever comes first, so a fast transfer costs a status
   * per STATUS_STEP bytes rather than one per write, and a sender whose window is smaller than a
   * step still hears of every advance within a few milliseconds.
   */
  #sendStatuses = (all = false): void => {
    this.#flush = undefined;
    for (const dirty of this.#dirty) {
      if (dirty.stopped || this.#port.generation !== dirty.generation) {
        this.#dirty.delete(dirty);
        continue;
      }
      if (!all && !dirty.state.statusDue(STATUS_STEP)) continue;
      this.#dirty.delete(dirty);
      for (const offset of dirty.state.takeStatus()) {
        this.#port.send(encodeFileStatus({ id: dirty.id, offset }));
      }
    }
    if (this.#dirty.size > 0) {
      this.#statusTimer ??= setTimeout(() => {
        this.#statusTimer = undefined;
        this.#sendStatuses(true);
      }, STATUS_DELAY_MS);
    } else if (this.#statusTimer !== undefined) {
      clearTimeout(this.#statusTimer);
      this.#statusTimer = undefined;
    }
  };

  #sidecar(file: { id: string; name: string; size: number }, committed: number): Sidecar {
    return {
      version: 1,
      id: file.id,
      owner: this.#options.owner,
      name: file.name,
      size: file.size,
      committed,
      updatedAt: Date.now(),
    };
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await fs.stat(path)).size;
  } catch {
    return undefined;
  }
}
