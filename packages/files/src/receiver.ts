import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';
import {
  ChunkVerdict,
  ErrorCode,
  encodeFileAccept,
  encodeFileComplete,
  encodeFileFailed,
  type FileChunkFrame,
  type FileOfferBody,
  FileReceivePhase,
  TetherError,
} from '@tether/protocol';
import { checkFileName } from './file-name.js';
import { hashFile } from './hash.js';
import { Incoming } from './incoming.js';
import { errnoCode, type FileIo } from './io.js';
import { fsyncDir, PartialStore } from './partial-store.js';
import type { Port } from './port.js';
import type { ReceiveDirectory } from './receive-directory.js';
import { StatusReporter } from './status-reporter.js';

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
  /** The file's bytes, for a download held in memory (the browser build; `path` is then ''). */
  blob?: Blob;
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

/** Settings of the receiving half, resolved by the engine. */
export interface ReceiverOptions {
  owner: string;
  directory: ReceiveDirectory;
  maxFileSize: number;
  maxTransfers: number;
  decide: ((offer: FileOfferInfo) => boolean | Promise<boolean>) | undefined;
  io: FileIo;
  onFile: (file: ReceivedFile) => void;
  onError: (error: TetherError) => void;
  /** Monotonic clock in ms (the engine's). */
  now: () => number;
}

/** Refusals of an offer that offering again cannot fix; the others are retryable. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set([
  ErrorCode.FILE_NAME_INVALID,
  ErrorCode.FILE_TOO_LARGE,
  ErrorCode.TRANSFER_REFUSED,
]);

/** How a stopped transfer lets go of its partial (see `#retire`). */
type LetGo = 'keep' | 'delete' | 'done';

/** What an offer holds while it is being prepared, given back if it is refused. */
interface Held {
  slot: boolean;
  reserved: number;
  handle: FileHandle | undefined;
}

/**
 * The receiving half of a transfer engine. Each offer is checked before any byte arrives (name,
 * size, the per-engine cap, the application's `decide`), takes the partial over from any other
 * connection writing it, resumes from the partial's durable offset or starts at 0, and takes a
 * place and disk space in the directory. Chunks are checked by the state machine and written in
 * order by the transfer's {@link Incoming}; at FILE_END the file is verified by SHA-256, fsynced,
 * given a free name without overwriting, and the folder fsynced.
 */
export class Receiver {
  readonly #port: Port;
  readonly #options: ReceiverOptions;
  readonly #store: PartialStore;
  readonly #incoming = new Map<string, Incoming>();
  /** Per transfer id: this receiver's work queued on the partial; later offers wait. */
  readonly #busy = new Map<string, Promise<void>>();
  /** Per transfer id: the port generation whose offer is being checked and prepared. */
  readonly #offering = new Map<string, number>();
  /** Offers past the per-engine cap check and not yet accepted or refused. */
  #accepting = 0;
  readonly #statuses: StatusReporter;

  constructor(port: Port, options: ReceiverOptions) {
    this.#port = port;
    this.#options = options;
    this.#statuses = new StatusReporter(port);
    this.#store = new PartialStore(options.directory.dir, options.owner);
  }

  /** Incoming transfers in progress. */
  get count(): number {
    return this.#incoming.size;
  }

  /**
   * FILE_OFFER. The sender offers again, on the same connection, while its offer goes unanswered
   * (a lost FILE_OFFER or FILE_ACCEPT), so a repeat costs one small answer at most: while this
   * connection's offer of the id is being decided and prepared, a repeat is ignored (its answer
   * goes out when ready); once it was accepted, until a chunk or FILE_END of it arrives, a repeat
   * gets FILE_ACCEPT again at the committed offset, nothing asked, reset or reopened. Any other
   * offer (a new connection, after a refusal or FILE_COMPLETE, after chunks, another size) is
   * decided afresh.
   */
  onOffer(body: FileOfferBody): void {
    const { id } = body;
    const generation = this.#port.generation;
    if (this.#offering.get(id) === generation) return;
    const incoming = this.#incoming.get(id);
    if (
      incoming !== undefined &&
      incoming.generation === generation &&
      !incoming.received &&
      incoming.size === body.size
    ) {
      this.#port.send(encodeFileAccept({ id, offset: incoming.state.committed }));
      return;
    }
    this.#offering.set(id, generation);
    this.#serial(id, async () => {
      try {
        await this.#offer(body, generation);
      } finally {
        if (this.#offering.get(id) === generation) this.#offering.delete(id);
      }
    });
  }

  onChunk(frame: FileChunkFrame): void {
    const incoming = this.#incoming.get(frame.id);
    if (incoming === undefined) return;
    incoming.received = true;
    const { state } = incoming;
    const verdict = state.chunk(frame.offset, frame.data, frame.crc32);
    if (verdict === ChunkVerdict.WRITE) {
      incoming.take(frame.data);
    } else if (verdict === ChunkVerdict.DISCARD) {
      // The state machine owes the rewind; chunks behind this one must not ask again.
      incoming.rewoundAt = state.expected;
      incoming.gapRewind = false;
      this.#statuses.mark(incoming);
    } else if (
      state.phase === FileReceivePhase.RECEIVING &&
      frame.offset > state.expected &&
      incoming.rewoundAt !== state.expected
    ) {
      // A chunk above the committed offset: the ones before it were lost. Ask for a rewind
      // once for this offset, not for every chunk still in flight behind the lost one.
      incoming.rewoundAt = state.expected;
      incoming.gapRewind = true;
      this.#statuses.mark(incoming);
    }
  }

  onEnd(id: string, sha256: string): void {
    const incoming = this.#incoming.get(id);
    if (incoming === undefined) return;
    incoming.received = true;
    if (!incoming.state.end()) return;
    incoming.expectedSha256 = sha256;
    // Runs after every write accepted so far.
    incoming.enqueue(() => this.#finish(incoming));
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
    this.#serial(id, () => this.#retire(incoming, 'delete'));
    return true;
  }

  /** The connection dropped: checkpoint every transfer and close its file; the sender re-offers. */
  detach(): void {
    for (const incoming of [...this.#incoming.values()]) {
      this.#incoming.delete(incoming.id);
      this.#serial(incoming.id, () => this.#pause(incoming));
    }
  }

  /** Pauses everything and waits for pending work (partials stay on disk). */
  async close(): Promise<void> {
    this.detach();
    while (this.#busy.size > 0) await Promise.all(this.#busy.values());
    this.#statuses.close();
  }

  /**
   * Runs `task` after earlier work on the same partial, from this engine or any other sharing the
   * directory (a client that reconnects as a new session gets a new engine for the same
   * partials, and its offer must wait for the old engine's pause). Errors are reported.
   */
  #serial(id: string, task: () => Promise<void>): void {
    const next = this.#options.directory
      .queue(`${this.#store.key}/${id}`, task)
      .catch((error: unknown) => {
        this.#options.onError(
          new TetherError(ErrorCode.FILE_WRITE_FAILED, `file transfer ${id}: ${String(error)}`, {
            cause: error,
          }),
        );
      });
    this.#busy.set(id, next);
    void next.then(() => {
      if (this.#busy.get(id) === next) this.#busy.delete(id);
    });
  }

  /**
   * An offer, in steps: check it; take the partial over; resume it or start it; hold a place and
   * disk space; open it; accept. A step that refuses throws a TetherError whose code goes back
   * in FILE_FAILED; whatever the offer held by then is given back.
   */
  async #offer(offer: FileOfferBody, generation: number): Promise<void> {
    const existing = this.#incoming.get(offer.id);
    if (existing !== undefined) {
      // Offered again on the same connection after chunks of it came (our sender never does):
      // start over from the durable state.
      this.#incoming.delete(offer.id);
      await this.#pause(existing);
    }
    const live = (): boolean => this.#port.generation === generation;
    const held: Held = { slot: false, reserved: 0, handle: undefined };
    this.#accepting++;
    try {
      await this.#check(offer);
      if (!live()) return;
      await this.#takeOver(offer.id);
      const committed = await this.#resume(offer, live);
      if (committed === undefined) return;
      await this.#hold(offer.size - committed, held);
      const opened = await this.#open(offer, committed);
      held.handle = opened.handle;
      if (!live()) return;
      this.#accept(offer, opened.committed, held, generation);
    } catch (error) {
      this.#refuse(offer.id, generation, error);
    } finally {
      this.#accepting--;
      await this.#giveBack(held);
    }
  }

  /** Name, size, the per-engine cap and the application's decision, before any file is touched. */
  async #check(offer: FileOfferBody): Promise<void> {
    const { name, size } = offer;
    const { owner, maxFileSize, maxTransfers, decide } = this.#options;
    const problem = checkFileName(name);
    if (problem !== undefined) throw new TetherError(ErrorCode.FILE_NAME_INVALID, problem);
    if (size > maxFileSize) {
      throw new TetherError(
        ErrorCode.FILE_TOO_LARGE,
        `${size} bytes is over the limit of ${maxFileSize}`,
      );
    }
    // This offer is counted in #accepting.
    if (this.#incoming.size + this.#accepting > maxTransfers) {
      throw new TetherError(
        ErrorCode.TOO_MANY_TRANSFERS,
        `${maxTransfers} transfers from this peer are in progress; offer it again later`,
      );
    }
    if (decide === undefined) return;
    let accepted: boolean;
    try {
      accepted = await decide({ name, size, owner });
    } catch (error) {
      throw new TetherError(ErrorCode.TRANSFER_REFUSED, `the handler failed: ${String(error)}`);
    }
    if (!accepted)
      throw new TetherError(ErrorCode.TRANSFER_REFUSED, 'the receiver refused the file');
  }

  /** One writer per partial: the connection writing it so far (another session) is fenced out. */
  async #takeOver(id: string): Promise<void> {
    await this.#options.directory.tenant(`${this.#store.key}/${id}`)?.fence();
  }

  /**
   * The offset to resume from: the partial's durable offset when its sidecar is this owner's
   * and size, else 0 (the partial is deleted). Undefined when the file was stored before: the
   * sender missed FILE_COMPLETE, which goes out again (it checks the SHA-256 against its file).
   */
  async #resume(offer: FileOfferBody, live: () => boolean): Promise<number | undefined> {
    const { id, size } = offer;
    const store = this.#store;
    await store.prepare();
    const sidecar = await store.read(id);
    if (sidecar === undefined) return 0;
    if (sidecar.completedPath !== undefined) {
      const sha256 = sidecar.sha256;
      if (sidecar.size === size && sha256 !== undefined) {
        if ((await fileSize(sidecar.completedPath)) === size) {
          if (live()) this.#port.send(encodeFileComplete({ id, size, sha256 }));
          return undefined;
        }
      }
    } else if (sidecar.owner === this.#options.owner && sidecar.size === size) {
      // Same id: same path, size and mtime on the sender. Were the bytes different all the same,
      // the SHA-256 at FILE_END would not match and the partial would be deleted.
      return sidecar.committed;
    }
    await store.remove(id);
    return 0;
  }

  /** A place under the directory's `maxOpenTransfers`, and `bytes` of free space. */
  async #hold(bytes: number, held: Held): Promise<void> {
    const directory = this.#options.directory;
    if (!directory.takeOpenSlot()) {
      throw new TetherError(
        ErrorCode.TOO_MANY_TRANSFERS,
        'the receiver has too many transfers open; offer the file again later',
      );
    }
    held.slot = true;
    const free = await directory.reserve(bytes);
    if (free !== undefined) {
      throw new TetherError(
        ErrorCode.FILE_NO_SPACE,
        `${bytes} bytes to store, ${free} free (keeping ${directory.minFreeBytes})`,
      );
    }
    held.reserved = bytes;
  }

  /**
   * Opens the partial: a resumed one is truncated to its durable offset (bytes past it may be
   * torn; a partial shorter than its sidecar says starts over), a new one is created and its
   * sidecar written.
   */
  async #open(
    offer: FileOfferBody,
    committed: number,
  ): Promise<{ handle: FileHandle; committed: number }> {
    const store = this.#store;
    const part = store.partPath(offer.id);
    let handle: FileHandle | undefined;
    if (committed > 0) {
      try {
        handle = await fs.open(part, 'r+');
        if ((await handle.stat()).size < committed) committed = 0;
        await handle.truncate(committed);
      } catch (error) {
        await handle?.close().catch(() => {});
        if (errnoCode(error) !== 'ENOENT') throw error;
        handle = undefined;
        committed = 0;
      }
    }
    const created = handle === undefined;
    handle ??= await fs.open(part, 'w');
    try {
      await store.write({
        version: 1,
        id: offer.id,
        owner: this.#options.owner,
        name: offer.name,
        size: offer.size,
        committed,
        updatedAt: Date.now(),
      });
      if (created) await fsyncDir(store.ownerDir);
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    return { handle, committed };
  }

  /** The offer is accepted: its Incoming takes what it held and becomes the partial's writer. */
  #accept(offer: FileOfferBody, committed: number, held: Held, generation: number): void {
    const { directory, io, owner, now } = this.#options;
    const incoming = new Incoming(
      {
        id: offer.id,
        name: offer.name,
        size: offer.size,
        generation,
        committed,
        handle: held.handle as FileHandle,
        reserved: held.reserved,
      },
      { store: this.#store, directory, io, owner, now },
      {
        failed: (failed, error) => this.#failWrite(failed, error),
        written: (written) => this.#statuses.mark(written),
        fence: (fenced) => this.#fence(fenced),
      },
    );
    held.slot = false;
    held.reserved = 0;
    held.handle = undefined;
    this.#incoming.set(offer.id, incoming);
    directory.admit(incoming.key, incoming);
    this.#port.send(encodeFileAccept({ id: offer.id, offset: committed }));
  }

  #refuse(id: string, generation: number, error: unknown): void {
    if (this.#port.generation !== generation) return;
    let code: ErrorCode;
    let message: string;
    if (error instanceof TetherError) {
      code = error.code;
      message = error.message;
    } else {
      code = errnoCode(error) === 'ENOSPC' ? ErrorCode.FILE_NO_SPACE : ErrorCode.FILE_WRITE_FAILED;
      message = `cannot prepare the file: ${String(error)}`;
    }
    this.#port.send(encodeFileFailed({ id, code, message, retryable: !FINAL_REFUSALS.has(code) }));
  }

  async #giveBack(held: Held): Promise<void> {
    const directory = this.#options.directory;
    if (held.slot) directory.releaseOpenSlot();
    directory.release(held.reserved);
    await held.handle?.close().catch(() => {});
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
      await incoming.checkpointDone();
      if (incoming.stopped) return;
      if (!incoming.open) await incoming.reopen();
      sha256 =
        incoming.hash !== undefined
          ? incoming.hash.digest('hex')
          : await hashFile(incoming.handle(), size);
      if (sha256 !== incoming.expectedSha256) {
        this.#stop(incoming);
        incoming.retiring ??= this.#letGo(incoming, 'delete', false);
        await incoming.retiring;
        this.#sendFailed(incoming, ErrorCode.FILE_CHECKSUM_MISMATCH, 'SHA-256 mismatch', true);
        return;
      }
      await incoming.handle().sync();
      await incoming.close();
      finalPath = await store.claimFinalName(id, incoming.name);
      // The completion record goes first: a crash now leaves a record, not a second upload.
      await store.write({ ...incoming.sidecar(size), sha256, completedPath: finalPath });
      await store.removePart(id);
      await fsyncDir(store.dir);
    } catch (error) {
      this.#failWrite(incoming, error);
      return;
    }
    state.done();
    this.#stop(incoming);
    // In the chain already: let go without waiting for it.
    incoming.retiring ??= this.#letGo(incoming, 'done', false);
    await incoming.retiring;
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

  /**
   * A write failed: FILE_FAILED (retryable), the partial kept at its last durable offset. A
   * TetherError keeps its code (TOO_MANY_TRANSFERS, FILE_NO_SPACE when an idle transfer could
   * not take its place or disk space back).
   */
  #failWrite(incoming: Incoming, error: unknown): void {
    if (incoming.stopped) return;
    this.#stop(incoming);
    let code: ErrorCode = ErrorCode.FILE_WRITE_FAILED;
    let message = `cannot write the file: ${String(error)}`;
    if (error instanceof TetherError) {
      code = error.code;
      message = error.message;
    } else if (errnoCode(error) === 'ENOSPC') {
      code = ErrorCode.FILE_NO_SPACE;
      message = 'the receiver ran out of disk space';
    }
    // Record what was written before the failure (best effort), close the file, and only then
    // tell the sender, so an offer that follows at once finds the partial durable.
    this.#serial(incoming.id, async () => {
      await this.#retire(incoming, 'keep', false);
      this.#sendFailed(incoming, code, message, true);
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
    this.#statuses.forget(incoming);
    if (this.#incoming.get(incoming.id) === incoming) this.#incoming.delete(incoming.id);
  }

  /** Detach or a re-offer: finish the writes already accepted, checkpoint, close. */
  async #pause(incoming: Incoming): Promise<void> {
    // Writes already accepted still land (stopped is set after them), so the checkpoint holds them.
    await incoming.settled();
    this.#stop(incoming);
    await this.#retire(incoming, 'keep', true);
  }

  /** Another connection of this peer offered the transfer: it takes the partial over. */
  async #fence(incoming: Incoming): Promise<void> {
    if (this.#incoming.get(incoming.id) === incoming) this.#incoming.delete(incoming.id);
    await this.#pause(incoming);
    if (incoming.state.phase === FileReceivePhase.DONE) return;
    this.#sendFailed(
      incoming,
      ErrorCode.TRANSFER_TAKEN_OVER,
      'another connection of this peer offered the same transfer and took it over',
      false,
    );
  }

  /**
   * Lets go of a stopped transfer's partial, once: after its writes, a checkpoint ('keep', where
   * a partial without a durable byte is deleted: nothing to resume from), or deleting it
   * ('delete'), or nothing more ('done': stored); then the file is closed and the partial has no
   * writer. Until then another offer of it waits (see `#takeOver`).
   */
  #retire(incoming: Incoming, how: LetGo, report = false): Promise<void> {
    incoming.retiring ??= incoming.settled().then(() => this.#letGo(incoming, how, report));
    return incoming.retiring;
  }

  async #letGo(incoming: Incoming, how: LetGo, report: boolean): Promise<void> {
    try {
      if (how === 'keep') await incoming.checkpointIfNeeded();
    } catch (error) {
      // Keep the previous checkpoint.
      if (report) {
        this.#options.onError(
          new TetherError(
            ErrorCode.FILE_WRITE_FAILED,
            `file transfer ${incoming.id}: checkpoint failed: ${String(error)}`,
            { cause: error },
          ),
        );
      }
    }
    await incoming.close();
    const directory = this.#options.directory;
    const ours = directory.tenant(incoming.key) === incoming;
    const empty = how === 'keep' && incoming.state.synced === 0;
    try {
      if (ours && (how === 'delete' || empty)) await this.#store.remove(incoming.id);
    } finally {
      directory.evict(incoming.key, incoming);
    }
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await fs.stat(path)).size;
  } catch {
    return undefined;
  }
}
