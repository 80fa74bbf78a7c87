import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import {
  type ControlFrame,
  crc32,
  ErrorCode,
  FrameDecoder,
  FrameType,
  TetherError,
} from '@tether/protocol';
import { onTestFinished, vi } from 'vitest';
import {
  type FileEngine,
  type FileFrame,
  isFileFrame,
  TransferEngine,
  type TransferEngineOptions,
  type TransferLink,
} from '../src/index.js';

export const MiB = 1024 * 1024;

/** A fresh temporary directory, removed when the test finishes. */
export async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'tether-files-'));
  onTestFinished(() => fs.rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

/** Writes `size` random bytes to `path` and returns them. */
export async function randomFile(path: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await fs.mkdir(nodePath.dirname(path), { recursive: true });
  await fs.writeFile(path, data);
  return data;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An engine closed when the test finishes. */
export function engine(options: TransferEngineOptions): TransferEngine {
  const e = new TransferEngine(options);
  onTestFinished(() => e.close(new TetherError(ErrorCode.CLOSED, 'test over')));
  return e;
}

/**
 * A manual clock and fake interval timers (the receiver's idle check and the sender's re-offer
 * check run on one); restore with `vi.useRealTimers()`.
 */
export function manualTime() {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  let now = 0;
  return {
    now: () => now,
    async advance(ms: number): Promise<void> {
      now += ms;
      await vi.advanceTimersByTimeAsync(ms);
    },
  };
}

/** Waits (on the event loop, not a clock) until `check` holds. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A frame seen on the wire, for assertions. */
export interface WireRecord {
  /** 'ab': from the first engine to the second. */
  direction: 'ab' | 'ba';
  type: number;
  id: string;
  offset?: number;
  dataLength?: number;
  body?: ControlFrame['body'];
}

export interface WireOptions {
  /** The frame limit both sides announce. Default 1 MiB. */
  maxFrame?: number;
  /** Bytes queued in one direction before `writable()` turns false. Default 1 MiB. */
  highWater?: number;
  /** Sees each encoded frame; returns the frame to deliver (possibly changed) or null to drop it. */
  tamper?: (frame: Buffer, direction: 'ab' | 'ba') => Buffer | null;
  /** The links' `reofferMs`; default: none given (the engine's default). */
  reofferMs?: number;
  /** Hears the links' `awaiting()` and `progressed()` calls, as `awaiting` / `progressed:<bool>`. */
  liveness?: (call: string, direction: 'ab' | 'ba') => void;
}

/**
 * Two engines joined by an in-memory connection: each frame is encoded by the engine, queued,
 * delivered on a later event-loop turn through a real FrameDecoder, and handed to the other
 * engine. `writable()` is false while a direction holds more than `highWater` bytes; the sender
 * is pumped after each delivery, as a socket drain would.
 */
export class Wire {
  readonly records: WireRecord[];
  readonly a: FileEngine;
  readonly b: FileEngine;
  #dead = false;
  #held = false;
  readonly #options: WireOptions;

  constructor(a: FileEngine, b: FileEngine, options: WireOptions = {}, records: WireRecord[] = []) {
    this.a = a;
    this.b = b;
    this.#options = options;
    this.records = records;
    a.attach(this.#pipe(a, b, 'ab'));
    b.attach(this.#pipe(b, a, 'ba'));
  }

  /** The link drops: both engines detach and every frame in flight is lost. */
  drop(): void {
    this.#dead = true;
    this.a.detach();
    this.b.detach();
  }

  /** While held, `writable()` is false both ways (control frames still pass); release pumps. */
  hold(held: boolean): void {
    this.#held = held;
    if (!held) {
      this.a.pump();
      this.b.pump();
    }
  }

  /** A new connection between the same engines, recording into the same list. */
  reconnect(options: WireOptions = this.#options): Wire {
    return new Wire(this.a, this.b, options, this.records);
  }

  /** Records of one frame type. */
  of(type: number, direction?: 'ab' | 'ba'): WireRecord[] {
    return this.records.filter(
      (r) => r.type === type && (direction ?? r.direction) === r.direction,
    );
  }

  #pipe(from: FileEngine, to: FileEngine, direction: 'ab' | 'ba'): TransferLink {
    const maxFrame = this.#options.maxFrame ?? MiB;
    const highWater = this.#options.highWater ?? MiB;
    const decoder = new FrameDecoder({ expectPreface: false, maxFrame });
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let scheduled = false;
    const deliver = (): void => {
      scheduled = false;
      const batch = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      if (this.#dead) return;
      const error = decoder.push(batch, (frame) => {
        if (this.#dead || !isFileFrame(frame)) return;
        this.records.push(record(frame, direction));
        to.handle(frame);
      });
      if (error !== undefined) throw error;
      from.pump();
    };
    const { reofferMs, liveness } = this.#options;
    return {
      maxFrame,
      ...(reofferMs === undefined ? {} : { reofferMs }),
      ...(liveness === undefined
        ? {}
        : {
            awaiting: () => liveness('awaiting', direction),
            progressed: (still: boolean) => liveness(`progressed:${still}`, direction),
          }),
      writable: () => !this.#held && pendingBytes < highWater,
      write: (frame) => {
        if (this.#dead) return;
        const out = this.#options.tamper ? this.#options.tamper(frame, direction) : frame;
        if (out === null) return;
        pending.push(out);
        pendingBytes += out.length;
        if (!scheduled) {
          scheduled = true;
          setImmediate(deliver);
        }
      },
    };
  }
}

function record(frame: FileFrame, direction: 'ab' | 'ba'): WireRecord {
  if (frame.type === FrameType.FILE_CHUNK) {
    return {
      direction,
      type: frame.type,
      id: frame.id,
      offset: frame.offset,
      dataLength: frame.data.length,
    };
  }
  return { direction, type: frame.type, id: frame.body.id, body: frame.body };
}

/** A link that keeps what the engine writes, decoded, and never delivers it. */
export function captureLink(maxFrame = MiB): { link: TransferLink; frames: FileFrame[] } {
  const frames: FileFrame[] = [];
  const decoder = new FrameDecoder({ expectPreface: false, maxFrame });
  return {
    frames,
    link: {
      maxFrame,
      writable: () => true,
      write: (frame) => {
        const error = decoder.push(frame, (f) => {
          if (isFileFrame(f)) frames.push(f);
        });
        if (error !== undefined) throw error;
      },
    },
  };
}

/** Files under `dir`, recursively, as paths relative to it (sorted). */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => nodePath.relative(dir, nodePath.join(e.parentPath ?? e.path, e.name)))
      .sort();
  } catch {
    return [];
  }
}

/** FILE_OFFER from a peer. */
export function offerFrame(id: string, name: string, size: number): FileFrame {
  return { type: FrameType.FILE_OFFER, body: { id, name, size } };
}

/** FILE_CHUNK frames carrying `data` from `start` (its offset in the file), `chunkSize` each. */
export function chunkFrames(
  id: string,
  data: Buffer,
  chunkSize = 256 * 1024,
  start = 0,
): FileFrame[] {
  const frames: FileFrame[] = [];
  for (let at = 0; at < data.length; at += chunkSize) {
    const piece = data.subarray(at, at + chunkSize);
    frames.push({
      type: FrameType.FILE_CHUNK,
      id,
      offset: start + at,
      crc32: crc32(piece),
      data: piece,
    });
  }
  return frames;
}

/** FILE_END for `data`, the whole file. */
export function endFrame(id: string, data: Buffer): FileFrame {
  return { type: FrameType.FILE_END, body: { id, sha256: sha256(data) } };
}

/** Whether `frame` answers an offer of `id` (FILE_ACCEPT, FILE_FAILED or FILE_COMPLETE). */
export function isAnswer(frame: FileFrame, id: string): boolean {
  return (
    (frame.type === FrameType.FILE_ACCEPT ||
      frame.type === FrameType.FILE_FAILED ||
      frame.type === FrameType.FILE_COMPLETE) &&
    frame.body.id === id
  );
}

/** Waits for the `n`th answer (from 1) to an offer of `id` among `frames`. */
export async function nthAnswer(frames: FileFrame[], id: string, n = 1): Promise<FileFrame> {
  const answers = (): FileFrame[] => frames.filter((f) => isAnswer(f, id));
  await until(() => answers().length >= n, `answer ${n} to the offer of ${id}`);
  return answers()[n - 1] as FileFrame;
}

/** FILE_STATUS offsets sent for `id`, in order. */
export function statusOffsets(frames: FileFrame[], id: string): number[] {
  return frames.flatMap((f) =>
    f.type === FrameType.FILE_STATUS && f.body.id === id ? [f.body.offset] : [],
  );
}

/** The FILE_FAILED code of `frame`, if it is one. */
export function failedCode(frame: FileFrame | undefined): string | undefined {
  return frame?.type === FrameType.FILE_FAILED ? frame.body.code : undefined;
}
