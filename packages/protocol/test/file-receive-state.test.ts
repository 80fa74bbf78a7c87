import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChunkVerdict,
  crc32,
  DEFAULT_FILE_SYNC_BYTES,
  FileReceivePhase,
  FileReceiveState,
  FileSendState,
  FileStatusVerdict,
} from '../src/index.js';

function bytes(length: number, fill = 0x61): Buffer {
  return Buffer.alloc(length, fill);
}

/** Offers a correct chunk of `length` bytes at `offset`. */
function good(state: FileReceiveState, offset: number, length = 10): ChunkVerdict {
  const data = bytes(length);
  return state.chunk(offset, data, crc32(data));
}

/** Offers a chunk whose CRC does not match. */
function corrupt(state: FileReceiveState, offset: number, length = 10): ChunkVerdict {
  const data = bytes(length);
  return state.chunk(offset, data, (crc32(data) ^ 1) >>> 0);
}

describe('file-receive-state', () => {
  it('file-receive-state - bad options fail at once', () => {
    expect(() => new FileReceiveState({ size: -1 })).toThrow(TypeError);
    expect(() => new FileReceiveState({ size: 10, committed: 11 })).toThrow(TypeError);
    expect(() => new FileReceiveState({ size: 10, committed: -1 })).toThrow(TypeError);
    expect(() => new FileReceiveState({ size: 10, syncEveryBytes: 0 })).toThrow(TypeError);
    expect(new FileReceiveState({ size: 10 }).syncEveryBytes).toBe(DEFAULT_FILE_SYNC_BYTES);
  });

  it('file-receive-state - in-order chunks are written and the committed offset moves after the write', () => {
    const state = new FileReceiveState({ size: 30 });
    expect(good(state, 0)).toBe(ChunkVerdict.WRITE);
    expect(state.expected).toBe(10);
    expect(state.committed).toBe(0);
    expect(state.pending).toBe(10);
    expect(state.takeStatus()).toEqual([]);
    state.written(10);
    expect(state.committed).toBe(10);
    expect(state.takeStatus()).toEqual([10]);
    expect(state.takeStatus()).toEqual([]);
  });

  it('file-receive-state - statuses are coalesced: several writes, one status', () => {
    const state = new FileReceiveState({ size: 30 });
    good(state, 0);
    good(state, 10);
    good(state, 20);
    state.written(10);
    state.written(10);
    state.written(10);
    expect(state.takeStatus()).toEqual([30]);
  });

  it('file-receive-state - chunks at any other offset are ignored (duplicates, gaps)', () => {
    const state = new FileReceiveState({ size: 50, committed: 20 });
    expect(good(state, 10)).toBe(ChunkVerdict.IGNORE);
    expect(good(state, 30)).toBe(ChunkVerdict.IGNORE);
    expect(good(state, 20)).toBe(ChunkVerdict.WRITE);
    expect(good(state, 20)).toBe(ChunkVerdict.IGNORE);
    expect(state.expected).toBe(30);
    expect(state.takeStatus()).toEqual([]);
  });

  it('file-receive-state - a zero-length chunk is ignored', () => {
    const state = new FileReceiveState({ size: 10 });
    expect(state.chunk(0, Buffer.alloc(0), 0)).toBe(ChunkVerdict.IGNORE);
    expect(state.expected).toBe(0);
  });

  it('file-receive-state - a bad CRC is discarded, the offset does not move, and a rewind is owed', () => {
    const state = new FileReceiveState({ size: 30 });
    expect(corrupt(state, 0)).toBe(ChunkVerdict.DISCARD);
    expect(state.expected).toBe(0);
    // Nothing moved since FILE_ACCEPT(0): the rewind repeats 0.
    expect(state.takeStatus()).toEqual([0]);
    expect(state.takeStatus()).toEqual([]);
  });

  it('file-receive-state - rewind: the owed status first, then the same offset again', () => {
    const state = new FileReceiveState({ size: 50 });
    good(state, 0);
    state.written(10);
    expect(state.takeStatus()).toEqual([10]);
    good(state, 10);
    state.written(10);
    expect(corrupt(state, 20)).toBe(ChunkVerdict.DISCARD);
    // Later chunks the sender sent before it learns of the rewind are ignored.
    expect(good(state, 30)).toBe(ChunkVerdict.IGNORE);
    expect(state.takeStatus()).toEqual([20, 20]);
    expect(good(state, 20)).toBe(ChunkVerdict.WRITE);
  });

  it('file-receive-state - the rewind waits until pending writes finish so it is not read as an advance', () => {
    const state = new FileReceiveState({ size: 50 });
    good(state, 0);
    good(state, 10);
    expect(corrupt(state, 20)).toBe(ChunkVerdict.DISCARD);
    state.written(10);
    // 10 is an advance; the rewind (to 20) is held while 10 bytes are still being written.
    expect(state.takeStatus()).toEqual([10]);
    state.written(10);
    expect(state.takeStatus()).toEqual([20, 20]);
  });

  it('file-receive-state - statusDue: a rewind, the end of the file or a step is due; a smaller advance may wait', () => {
    const state = new FileReceiveState({ size: 50 });
    expect(state.statusDue(20)).toBe(false);
    good(state, 0);
    state.written(10);
    expect(state.statusDue(20)).toBe(false);
    expect(state.statusDue(10)).toBe(true);
    good(state, 10);
    state.written(10);
    expect(state.statusDue(20)).toBe(true);
    expect(state.takeStatus()).toEqual([20]);
    expect(state.statusDue(1)).toBe(false);
    good(state, 20);
    expect(corrupt(state, 30)).toBe(ChunkVerdict.DISCARD);
    // The rewind waits for the pending write; the 10 bytes it adds are below the step.
    expect(state.statusDue(20)).toBe(false);
    state.written(10);
    expect(state.statusDue(20)).toBe(true);
    expect(state.takeStatus()).toEqual([30, 30]);
    good(state, 30);
    good(state, 40);
    state.written(20);
    // The whole file is committed: due whatever the step.
    expect(state.statusDue(1000)).toBe(true);
    expect(state.takeStatus()).toEqual([50]);
    expect(state.statusDue(1)).toBe(false);
  });

  it('file-receive-state - a chunk running past the size is discarded', () => {
    const state = new FileReceiveState({ size: 15 });
    good(state, 0);
    expect(good(state, 10)).toBe(ChunkVerdict.DISCARD);
    expect(state.expected).toBe(10);
    expect(good(state, 10, 5)).toBe(ChunkVerdict.WRITE);
  });

  it('file-receive-state - FILE_END before every byte arrived is ignored', () => {
    const state = new FileReceiveState({ size: 20 });
    good(state, 0);
    state.written(10);
    expect(state.end()).toBe(false);
    expect(state.readyToVerify).toBe(false);
    good(state, 10);
    expect(state.end()).toBe(true);
    // Every byte accepted, one write pending: verification waits for it.
    expect(state.readyToVerify).toBe(false);
    state.written(10);
    expect(state.readyToVerify).toBe(true);
    state.verify();
    expect(state.phase).toBe(FileReceivePhase.VERIFYING);
    expect(good(state, 20)).toBe(ChunkVerdict.IGNORE);
    expect(state.end()).toBe(false);
    expect(state.takeStatus()).toEqual([]);
    state.done();
    expect(state.phase).toBe(FileReceivePhase.DONE);
  });

  it('file-receive-state - a zero-byte file is ready to verify on FILE_END', () => {
    const state = new FileReceiveState({ size: 0 });
    expect(state.readyToVerify).toBe(false);
    expect(state.end()).toBe(true);
    expect(state.readyToVerify).toBe(true);
  });

  it('file-receive-state - a resumed transfer expects its committed offset and reports nothing until it moves', () => {
    const state = new FileReceiveState({ size: 100, committed: 60 });
    expect(state.expected).toBe(60);
    expect(state.synced).toBe(60);
    expect(state.takeStatus()).toEqual([]);
    expect(good(state, 60)).toBe(ChunkVerdict.WRITE);
  });

  it('file-receive-state - a checkpoint is due every syncEveryBytes', () => {
    const state = new FileReceiveState({ size: 100, syncEveryBytes: 25 });
    good(state, 0);
    good(state, 10);
    state.written(10);
    state.written(10);
    expect(state.needsSync).toBe(false);
    good(state, 20);
    state.written(10);
    expect(state.needsSync).toBe(true);
    state.checkpoint(30);
    expect(state.synced).toBe(30);
    expect(state.needsSync).toBe(false);
    // A checkpoint never moves backwards nor past the committed offset.
    state.checkpoint(10);
    state.checkpoint(99);
    expect(state.synced).toBe(30);
  });

  it('file-receive-state - writing more than was accepted is a caller bug', () => {
    const state = new FileReceiveState({ size: 20 });
    good(state, 0);
    expect(() => state.written(11)).toThrow(RangeError);
  });

  it('file-receive-state - a failed transfer ignores everything', () => {
    const state = new FileReceiveState({ size: 20 });
    state.fail();
    expect(state.phase).toBe(FileReceivePhase.FAILED);
    expect(good(state, 0)).toBe(ChunkVerdict.IGNORE);
    expect(state.end()).toBe(false);
  });

  it('file-receive-state - with the send state over a corrupting, in-order channel every byte arrives once', () => {
    // Model: the two state machines joined by in-order channels; some chunks are corrupted.
    // Whatever the corruption pattern and timing, the receiver ends with every byte, in order.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 120 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 64 }),
        (size, chunkSize, windowBytes, corruptions, writeDelays) => {
          const file = Buffer.from(Array.from({ length: size }, (_, i) => i % 251));
          const tx = new FileSendState({ size, chunkSize, windowBytes });
          const rx = new FileReceiveState({ size, syncEveryBytes: 16 });
          const stored = Buffer.alloc(size);
          const toRx: ({ kind: 'chunk'; offset: number; data: Buffer; crc: number } | 'end')[] = [];
          const toTx: number[] = [];
          const writes: { offset: number; data: Buffer }[] = [];
          tx.offer();
          tx.accept(0);
          let ended = false;
          let corruptIndex = 0;
          const corrupted = new Set<number>();
          let delayIndex = 0;
          for (let step = 0; step < 20_000 && !ended; step++) {
            for (let a = tx.poll(); a !== undefined; a = tx.poll()) {
              if (a.kind === 'end') toRx.push('end');
              else {
                const data = file.subarray(a.offset, a.offset + a.length);
                let crc = crc32(data);
                // Each offset is corrupted at most once, so the run always ends.
                if (corruptions[corruptIndex++ % corruptions.length] && !corrupted.has(a.offset)) {
                  corrupted.add(a.offset);
                  crc = (crc ^ 0xff) >>> 0;
                }
                toRx.push({ kind: 'chunk', offset: a.offset, data, crc });
              }
            }
            // The receiver reads a burst, finishes some writes, then sends its statuses.
            while (toRx.length > 0) {
              const frame = toRx.shift();
              if (frame === 'end') rx.end();
              else if (frame !== undefined) {
                if (rx.chunk(frame.offset, frame.data, frame.crc) === ChunkVerdict.WRITE) {
                  writes.push({ offset: frame.offset, data: frame.data });
                }
              }
            }
            // Some writes stay pending across bursts, but at least one finishes.
            const delay = writeDelays[delayIndex++ % writeDelays.length] ?? 0;
            const finish = Math.max(1, writes.length - delay);
            for (let i = 0; i < finish; i++) {
              const w = writes.shift();
              if (w === undefined) break;
              w.data.copy(stored, w.offset);
              rx.written(w.data.length);
            }
            toTx.push(...rx.takeStatus());
            if (rx.readyToVerify) ended = true;
            for (const offset of toTx.splice(0)) {
              expect(tx.status(offset)).not.toBe(FileStatusVerdict.IGNORE);
            }
          }
          expect(ended).toBe(true);
          expect(stored.equals(file)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
