/** Where a batch goes: a socket, or anything with the same three methods. */
export interface BatchSink {
  write(chunk: Buffer): unknown;
  cork(): void;
  uncork(): void;
}

/** Frames smaller than this are copied together into one buffer; larger ones go as they are. */
const COALESCE_BELOW = 16 * 1024;
const TARGET_BUFFER = 64 * 1024;

/**
 * Collects encoded frames between flushes so that a burst of sends costs one write (one
 * syscall), not one per frame. The I/O layer schedules a flush when `push` reports the batch
 * was empty, then writes what `take` returns (under `cork` when it is several buffers).
 */
export class OutputBatch {
  #frames: Buffer[] = [];
  #bytes = 0;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds a frame; returns true when the batch was empty (the caller schedules a flush). */
  push(frame: Buffer): boolean {
    this.#frames.push(frame);
    this.#bytes += frame.length;
    return this.#frames.length === 1;
  }

  /** Takes everything queued as few buffers as is cheap: small frames are joined, large kept. */
  take(): Buffer[] {
    const frames = this.#frames;
    this.#frames = [];
    this.#bytes = 0;
    if (frames.length <= 1) return frames;
    const out: Buffer[] = [];
    let run: Buffer[] = [];
    let runBytes = 0;
    const closeRun = (): void => {
      if (run.length === 1) out.push(run[0] as Buffer);
      else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const frame of frames) {
      if (frame.length >= COALESCE_BELOW) {
        closeRun();
        out.push(frame);
        continue;
      }
      run.push(frame);
      runBytes += frame.length;
      if (runBytes >= TARGET_BUFFER) closeRun();
    }
    closeRun();
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
