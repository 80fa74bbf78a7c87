import { checkDataFlags, dataPrefixSize, writeDataPrefix } from './encode.js';

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

/**
 * Collects frames between flushes so that a burst of sends costs one write (one syscall), not
 * one per frame. The I/O layer schedules a flush when `push` reports the batch was empty, then
 * writes what `take` returns (under `cork` when it is several buffers).
 *
 * DATA frames are kept as their parts until `take`, which encodes a run of small frames into one
 * buffer of the run's exact size (one copy of each payload, no buffer per frame) and sends a large
 * payload as it is, after its header. The payload is read at `take`, not at `pushData`.
 */
export class OutputBatch {
  #items: (Buffer | DataItem)[] = [];
  #bytes = 0;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds an encoded frame; returns true when the batch was empty (the caller schedules a flush). */
  push(frame: Buffer): boolean {
    this.#items.push(frame);
    this.#bytes += frame.length;
    return this.#items.length === 1;
  }

  /** Adds a DATA frame (throws BAD_FLAGS for invalid flags); returns as {@link push} does. */
  pushData(item: DataItem): boolean {
    checkDataFlags(item.flags);
    this.#items.push(item);
    this.#bytes += frameLength(item);
    return this.#items.length === 1;
  }

  /** Takes everything queued as few buffers as is cheap: small frames are joined, large kept. */
  take(): Buffer[] {
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    const out: Buffer[] = [];
    let start = 0;
    while (start < items.length) {
      // A run: consecutive small frames up to about TARGET_BUFFER bytes.
      let end = start;
      let runBytes = 0;
      while (end < items.length && runBytes < TARGET_BUFFER) {
        const length = frameLength(items[end] as Buffer | DataItem);
        if (length >= COALESCE_BELOW) break;
        runBytes += length;
        end++;
      }
      // A large DATA frame after the run: its prefix joins the run, its payload goes as is.
      const large = end < items.length && runBytes < TARGET_BUFFER ? items[end] : undefined;
      const largeData = large !== undefined && !Buffer.isBuffer(large) ? large : undefined;
      const prefixBytes = largeData === undefined ? 0 : dataPrefixSize(largeData.flags);
      if (end - start === 1 && prefixBytes === 0 && Buffer.isBuffer(items[start])) {
        // A lone encoded frame needs no copy.
        out.push(items[start] as Buffer);
      } else if (runBytes + prefixBytes > 0) {
        const run = Buffer.allocUnsafe(runBytes + prefixBytes);
        let offset = 0;
        for (let i = start; i < end; i++)
          offset = writeItem(run, offset, items[i] as Buffer | DataItem);
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
        out.push(run);
      }
      if (large !== undefined) {
        out.push(largeData === undefined ? (large as Buffer) : largeData.payload);
        end++;
      }
      start = end;
    }
    return out;
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
    return bytes;
  }
}

function frameLength(item: Buffer | DataItem): number {
  return Buffer.isBuffer(item) ? item.length : dataPrefixSize(item.flags) + item.payload.length;
}

// Writes one small frame at `offset`; returns the offset after it.
function writeItem(run: Buffer, offset: number, item: Buffer | DataItem): number {
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
