import {
  ACK_FRAME_SIZE,
  checkDataFlags,
  dataPrefixSize,
  writeAck,
  writeDataPrefix,
} from './encode.js';
import { ErrorCode } from './error-codes.js';
import { ProtocolError } from './errors.js';

/** Where a batch goes: a socket, or anything with the same three methods. */
export interface BatchSink {
  write(chunk: Buffer): unknown;
  cork(): void;
  uncork(): void;
}

/** A DATA frame not yet encoded: the batch writes it straight into the buffer it sends. */
export interface DataItem {
  readonly seq: number;
  readonly payload: Buffer;
  readonly flags: number;
  readonly requestId: number;
}

/** Frames smaller than this are copied together into one buffer; larger ones go as they are. */
const COALESCE_BELOW = 16 * 1024;
const TARGET_BUFFER = 64 * 1024;

// Runs of this size or more are carved from a staging buffer that is written again once the
// sink has handed everything to the operating system (see `settle`); smaller ones come from
// Node's shared 8 KiB Buffer pool. A fresh 64 KiB buffer per run cost more than the copy into
// it: glibc gives freed chunks back to the kernel, so every run's pages faulted in again (at
// 1 KiB messages, 165,000 page faults a second and more system time than user time).
const STAGE_MIN_RUN = 4 * 1024;
const STAGE_BYTES = 256 * 1024;
// Free staging buffers kept for the whole process: memory does not grow with the number of
// connections (a connection holds a stage only between `take` and `settle`).
const STAGES_KEPT = 4;
const freeStages: Buffer[] = [];
const NONE: never[] = [];

// What the batch holds: an encoded frame, a DATA frame not yet encoded, or (a number) an ACK of
// that sequence, written straight into the run it goes out in (one Buffer less per ACK).
type Item = Buffer | DataItem | number;

/**
 * Collects frames between flushes so that a burst of sends costs one write (one syscall), not
 * one per frame. The I/O layer schedules a flush when `push` reports the batch was empty, then
 * writes what `take` returns (under `cork` when it is several buffers), with `lend`'s function as
 * the last write's callback (or calls `settle`).
 *
 * DATA frames are kept as their parts until `take`, which encodes a run of small frames into one
 * buffer of the run's exact size (one copy of each payload, no buffer per frame) and sends a large
 * payload as it is, after its header. The payload is read at `take`, not at `pushData`.
 */
export class OutputBatch {
  // Empty, it shares NONE (never written) instead of an array of its own: an idle connection's
  // batch is empty between its PONGs.
  #items: Item[] = NONE;
  /** Items before this index were taken (a partial `take`); dropped from `#items` now and then. */
  #head = 0;
  #bytes = 0;
  /** The staging buffer runs of the current `take` are carved from, and how much is carved. */
  #stage: Buffer | undefined;
  #stageUsed = 0;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds an encoded frame; returns true when the batch was empty (the caller schedules a flush). */
  push(frame: Buffer): boolean {
    if (this.#items === NONE) this.#items = [frame];
    else this.#items.push(frame);
    this.#bytes += frame.length;
    return this.#items.length - this.#head === 1;
  }

  /**
   * Adds an ACK of `seq` (throws INTEGER_OUT_OF_RANGE unless it is a safe non-negative integer,
   * as `encodeAck`); returns as {@link push} does.
   */
  pushAck(seq: number): boolean {
    if (!(seq >= 0 && seq <= Number.MAX_SAFE_INTEGER && Number.isInteger(seq))) {
      throw new ProtocolError(ErrorCode.INTEGER_OUT_OF_RANGE, `u64 field out of range: ${seq}`);
    }
    if (this.#items === NONE) this.#items = [seq];
    else this.#items.push(seq);
    this.#bytes += ACK_FRAME_SIZE;
    return this.#items.length - this.#head === 1;
  }

  /** Adds a DATA frame (throws BAD_FLAGS for invalid flags); returns as {@link push} does. */
  pushData(item: DataItem): boolean {
    checkDataFlags(item.flags);
    if (this.#items === NONE) this.#items = [item];
    else this.#items.push(item);
    this.#bytes += frameLength(item);
    return this.#items.length - this.#head === 1;
  }

  /**
   * Takes what is queued as few buffers as is cheap: small frames are joined, large kept. With
   * `maxBytes`, stops once about that much is taken (whole frames; at least one); the rest stays
   * queued, in order. Call {@link settle} once the buffers are written.
   */
  take(maxBytes: number = Number.POSITIVE_INFINITY): Buffer[] {
    const items = this.#items;
    const total = this.#bytes;
    if (total > 0 && total < COALESCE_BELOW && maxBytes > 0) {
      // Everything waiting is one run of small frames (the usual case: a message and an ACK):
      // the loop below would make the same single buffer.
      const head = this.#head;
      let run = items[head] as Item;
      if (items.length - head !== 1 || !Buffer.isBuffer(run)) {
        run = this.#alloc(total);
        let offset = 0;
        for (let i = head; i < items.length; i++) offset = writeItem(run, offset, items[i] as Item);
      }
      this.#items = NONE;
      this.#head = 0;
      this.#bytes = 0;
      return [run];
    }
    const out: Buffer[] = [];
    let start = this.#head;
    let taken = 0;
    // The last run in `out` when it was carved from the staging buffer.
    let carved: Buffer | undefined;
    while (start < items.length && taken < maxBytes) {
      // A run: consecutive small frames up to about TARGET_BUFFER bytes.
      let end = start;
      let runBytes = 0;
      while (end < items.length && runBytes < TARGET_BUFFER) {
        const length = frameLength(items[end] as Item);
        if (length >= COALESCE_BELOW) break;
        runBytes += length;
        end++;
      }
      // A large DATA frame after the run: its prefix joins the run, its payload goes as is.
      const large = end < items.length && runBytes < TARGET_BUFFER ? items[end] : undefined;
      // (An ACK is never large: only an encoded frame or a DATA item can be.)
      const largeData =
        large !== undefined && typeof large !== 'number' && !Buffer.isBuffer(large)
          ? large
          : undefined;
      const prefixBytes = largeData === undefined ? 0 : dataPrefixSize(largeData.flags);
      if (end - start === 1 && prefixBytes === 0 && Buffer.isBuffer(items[start])) {
        // A lone encoded frame needs no copy.
        out.push(items[start] as Buffer);
      } else if (runBytes + prefixBytes > 0) {
        let run = this.#alloc(runBytes + prefixBytes);
        let offset = 0;
        for (let i = start; i < end; i++) offset = writeItem(run, offset, items[i] as Item);
        if (largeData !== undefined) {
          writeDataPrefix(
            run,
            offset,
            largeData.seq,
            largeData.payload.length,
            largeData.flags,
            largeData.requestId,
          );
        }
        // Carved right after the run before it: one buffer, so the sink gets one write instead
        // of a writev (a TLS socket copies a writev's buffers into one before encrypting).
        const last = out.length - 1;
        const previous = out[last];
        if (
          previous !== undefined &&
          previous === carved &&
          previous.buffer === run.buffer &&
          previous.byteOffset + previous.length === run.byteOffset
        ) {
          run = Buffer.from(run.buffer, previous.byteOffset, previous.length + run.length);
          out[last] = run;
        } else {
          out.push(run);
        }
        carved = run.buffer === this.#stage?.buffer ? run : undefined;
      }
      taken += runBytes;
      if (large !== undefined) {
        out.push(largeData === undefined ? (large as Buffer) : largeData.payload);
        taken += frameLength(large);
        end++;
      }
      start = end;
    }
    this.#bytes -= taken;
    if (start >= items.length) {
      this.#items = NONE;
      this.#head = 0;
    } else if (start > 1024 && start * 2 > items.length) {
      // Drop what was taken once it is most of the array (each item moves O(1) times).
      this.#items = items.slice(start);
      this.#head = 0;
    } else {
      this.#head = start;
    }
    return out;
  }

  /**
   * Call after {@link take}, before writing what it returned: the next take starts a new staging
   * buffer, and the one this take's runs were carved from is lent to the sink. Returns the
   * function that gives it back (undefined when the take carved none): call it once the sink
   * holds none of those buffers any more, as the write callback of the last of them or at once
   * when a socket's `writableLength` is 0 after the writes. A TLS socket encrypts (copies) what
   * it is given but reports it written only on a later turn, so only the callback sees it let
   * go. Calls after the first do nothing; a stage never given back is left to the sink.
   */
  lend(): (() => void) | undefined {
    const stage = this.#stage;
    if (stage === undefined) return undefined;
    this.#stage = undefined;
    this.#stageUsed = 0;
    let lent = true;
    return () => {
      if (!lent) return;
      lent = false;
      if (freeStages.length < STAGES_KEPT) freeStages.push(stage);
    };
  }

  /**
   * {@link lend} for a sink whose state is known after the writes: `released` (the sink holds
   * none of the buffers, as a socket whose `writableLength` is 0) gives the stage back at once;
   * otherwise it is left to the sink.
   */
  settle(released: boolean): void {
    const giveBack = this.lend();
    if (released) giveBack?.();
  }

  /** Writes everything queued to `sink` (corked when it is several buffers); returns the bytes. */
  drainTo(sink: BatchSink): number {
    const buffers = this.take();
    let bytes = 0;
    if (buffers.length > 1) sink.cork();
    for (const buffer of buffers) {
      bytes += buffer.length;
      sink.write(buffer);
    }
    if (buffers.length > 1) sink.uncork();
    this.settle(false);
    return bytes;
  }

  // A buffer for a run of `size` bytes: from the staging buffer when the run is large.
  #alloc(size: number): Buffer {
    if (size < STAGE_MIN_RUN || size > STAGE_BYTES) return Buffer.allocUnsafe(size);
    let stage = this.#stage;
    if (stage === undefined || this.#stageUsed + size > stage.length) {
      // A full stage stays with the sink, which holds runs carved from it.
      stage = freeStages.pop() ?? Buffer.allocUnsafeSlow(STAGE_BYTES);
      this.#stage = stage;
      this.#stageUsed = 0;
    }
    const at = this.#stageUsed;
    this.#stageUsed = at + size;
    return stage.subarray(at, at + size);
  }
}

function frameLength(item: Item): number {
  if (typeof item === 'number') return ACK_FRAME_SIZE;
  return Buffer.isBuffer(item) ? item.length : dataPrefixSize(item.flags) + item.payload.length;
}

// Writes one small frame at `offset`; returns the offset after it.
function writeItem(run: Buffer, offset: number, item: Item): number {
  if (typeof item === 'number') return writeAck(run, offset, item);
  if (Buffer.isBuffer(item)) {
    run.set(item, offset);
    return offset + item.length;
  }
  const at = writeDataPrefix(
    run,
    offset,
    item.seq,
    item.payload.length,
    item.flags,
    item.requestId,
  );
  run.set(item.payload, at);
  return at + item.payload.length;
}
