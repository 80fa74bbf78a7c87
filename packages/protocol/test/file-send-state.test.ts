import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FILE_CHUNK,
  DEFAULT_FILE_WINDOW,
  ErrorCode,
  type FileSendAction,
  FileSendPhase,
  FileSendState,
  FileStatusVerdict,
} from '../src/index.js';

const SHA = 'a'.repeat(64);

function sender(size: number, chunkSize = 10, windowBytes = 30): FileSendState {
  return new FileSendState({ size, chunkSize, windowBytes });
}

/** Polls until `poll` returns undefined; returns the actions. */
function drain(state: FileSendState): FileSendAction[] {
  const out: FileSendAction[] = [];
  for (let a = state.poll(); a !== undefined; a = state.poll()) out.push(a);
  return out;
}

const offsets = (actions: FileSendAction[]): (number | 'end')[] =>
  actions.map((a) => (a.kind === 'chunk' ? a.offset : 'end'));

describe('file-send-state', () => {
  it('file-send-state - defaults are 256 KiB chunks and an 8 MiB window', () => {
    const state = new FileSendState({ size: 1 });
    expect(state.chunkSize).toBe(DEFAULT_FILE_CHUNK);
    expect(state.windowBytes).toBe(DEFAULT_FILE_WINDOW);
    expect(DEFAULT_FILE_CHUNK).toBe(256 * 1024);
    expect(DEFAULT_FILE_WINDOW).toBe(8 * 1024 * 1024);
  });

  it('file-send-state - bad options fail at once', () => {
    expect(() => new FileSendState({ size: -1 })).toThrow(TypeError);
    expect(() => new FileSendState({ size: 1.5 })).toThrow(TypeError);
    expect(() => new FileSendState({ size: 1, chunkSize: 0 })).toThrow(TypeError);
    expect(() => new FileSendState({ size: 1, windowBytes: 0 })).toThrow(TypeError);
  });

  it('file-send-state - a window smaller than a chunk is raised to one chunk', () => {
    const state = sender(100, 10, 4);
    expect(state.windowBytes).toBe(10);
    state.offer();
    state.accept(0);
    expect(offsets(drain(state))).toEqual([0]);
  });

  it('file-send-state - nothing is sent before FILE_ACCEPT', () => {
    const state = sender(100);
    expect(state.phase).toBe(FileSendPhase.OFFERING);
    expect(state.poll()).toBeUndefined();
    expect(state.status(10)).toBe(FileStatusVerdict.IGNORE);
  });

  it('file-send-state - sends consecutive chunks from the accepted offset up to the window', () => {
    const state = sender(100);
    state.offer();
    expect(state.accept(20)).toBeUndefined();
    expect(state.phase).toBe(FileSendPhase.SENDING);
    const actions = drain(state);
    expect(actions).toEqual([
      { kind: 'chunk', offset: 20, length: 10, epoch: state.epoch },
      { kind: 'chunk', offset: 30, length: 10, epoch: state.epoch },
      { kind: 'chunk', offset: 40, length: 10, epoch: state.epoch },
    ]);
    expect(state.inFlight).toBe(30);
    expect(state.committed).toBe(20);
  });

  it('file-send-state - FILE_STATUS advances the window by what it commits', () => {
    const state = sender(100);
    state.offer();
    state.accept(0);
    drain(state);
    expect(state.status(10)).toBe(FileStatusVerdict.ADVANCE);
    expect(offsets(drain(state))).toEqual([30]);
    expect(state.status(40)).toBe(FileStatusVerdict.ADVANCE);
    expect(offsets(drain(state))).toEqual([40, 50, 60]);
    expect(state.inFlight).toBe(30);
  });

  it('file-send-state - the last chunk is short and FILE_END follows it once', () => {
    const state = sender(25);
    state.offer();
    state.accept(0);
    const actions = drain(state);
    expect(actions).toEqual([
      { kind: 'chunk', offset: 0, length: 10, epoch: state.epoch },
      { kind: 'chunk', offset: 10, length: 10, epoch: state.epoch },
      { kind: 'chunk', offset: 20, length: 5, epoch: state.epoch },
      { kind: 'end' },
    ]);
    expect(state.phase).toBe(FileSendPhase.ENDED);
    expect(state.poll()).toBeUndefined();
  });

  it('file-send-state - FILE_END waits for the window only through the chunks before it', () => {
    const state = sender(40);
    state.offer();
    state.accept(0);
    expect(offsets(drain(state))).toEqual([0, 10, 20]);
    state.status(30);
    expect(offsets(drain(state))).toEqual([30, 'end']);
  });

  it('file-send-state - a status not above the previous rewinds to it and bumps the epoch', () => {
    const state = sender(100);
    state.offer();
    state.accept(0);
    drain(state);
    state.status(10);
    drain(state);
    const epoch = state.epoch;
    expect(state.status(10)).toBe(FileStatusVerdict.REWIND);
    expect(state.epoch).toBe(epoch + 1);
    expect(state.next).toBe(10);
    expect(offsets(drain(state))).toEqual([10, 20, 30]);
  });

  it('file-send-state - the first status equal to the accept offset is a rewind', () => {
    const state = sender(100);
    state.offer();
    state.accept(50);
    drain(state);
    expect(state.status(50)).toBe(FileStatusVerdict.REWIND);
    expect(offsets(drain(state))).toEqual([50, 60, 70]);
  });

  it('file-send-state - a rewind after FILE_END re-sends the tail and FILE_END again', () => {
    const state = sender(20);
    state.offer();
    state.accept(0);
    expect(offsets(drain(state))).toEqual([0, 10, 'end']);
    state.status(10);
    expect(state.status(10)).toBe(FileStatusVerdict.REWIND);
    expect(state.phase).toBe(FileSendPhase.SENDING);
    expect(offsets(drain(state))).toEqual([10, 'end']);
  });

  it('file-send-state - a status beyond what was sent is ignored', () => {
    const state = sender(100);
    state.offer();
    state.accept(0);
    drain(state);
    expect(state.status(31)).toBe(FileStatusVerdict.IGNORE);
    expect(state.committed).toBe(0);
    expect(state.next).toBe(30);
  });

  it('file-send-state - a status below the committed offset rewinds to it (the receiver is authoritative)', () => {
    const state = sender(100);
    state.offer();
    state.accept(0);
    drain(state);
    state.status(30);
    expect(state.status(10)).toBe(FileStatusVerdict.REWIND);
    expect(state.committed).toBe(10);
    expect(state.next).toBe(10);
  });

  it('file-send-state - FILE_ACCEPT past the end or without an offer is refused', () => {
    const state = sender(100);
    state.offer();
    expect(state.accept(101)?.code).toBe(ErrorCode.UNEXPECTED_FRAME);
    expect(state.phase).toBe(FileSendPhase.OFFERING);
    expect(state.accept(100)).toBeUndefined();
    expect(state.accept(0)?.code).toBe(ErrorCode.UNEXPECTED_FRAME);
  });

  it('file-send-state - accepted at the end sends FILE_END at once', () => {
    const state = sender(100);
    state.offer();
    state.accept(100);
    expect(drain(state)).toEqual([{ kind: 'end' }]);
  });

  it('file-send-state - a zero-byte file is accepted at 0 and ended with no chunk', () => {
    const state = sender(0);
    state.offer();
    expect(state.accept(0)).toBeUndefined();
    expect(drain(state)).toEqual([{ kind: 'end' }]);
    expect(state.complete(0, SHA, SHA)).toBeUndefined();
    expect(state.phase).toBe(FileSendPhase.DONE);
  });

  it('file-send-state - a re-offer after a reconnect resumes where the new FILE_ACCEPT says', () => {
    const state = sender(100);
    state.offer();
    state.accept(0);
    drain(state);
    state.status(20);
    const before = state.epoch;
    state.offer();
    expect(state.phase).toBe(FileSendPhase.OFFERING);
    expect(state.epoch).toBeGreaterThan(before);
    expect(state.poll()).toBeUndefined();
    state.accept(10);
    expect(offsets(drain(state))).toEqual([10, 20, 30]);
  });

  it('file-send-state - FILE_COMPLETE must match the offered size and the SHA-256 sent', () => {
    const ok = sender(20);
    ok.offer();
    ok.accept(0);
    drain(ok);
    expect(ok.complete(20, SHA, SHA)).toBeUndefined();
    expect(ok.finished).toBe(true);
    expect(ok.poll()).toBeUndefined();

    const badSize = sender(20);
    badSize.offer();
    expect(badSize.complete(21, SHA, SHA)?.code).toBe(ErrorCode.FILE_CHECKSUM_MISMATCH);
    expect(badSize.phase).toBe(FileSendPhase.FAILED);

    const badHash = sender(20);
    badHash.offer();
    expect(badHash.complete(20, 'b'.repeat(64), SHA)?.code).toBe(ErrorCode.FILE_CHECKSUM_MISMATCH);
  });

  it('file-send-state - a failed transfer sends nothing more and ignores every frame', () => {
    const state = sender(100);
    state.offer();
    state.accept(0);
    state.fail();
    expect(state.phase).toBe(FileSendPhase.FAILED);
    expect(state.poll()).toBeUndefined();
    expect(state.status(0)).toBe(FileStatusVerdict.IGNORE);
    state.offer();
    expect(state.phase).toBe(FileSendPhase.FAILED);
  });

  it('file-send-state - in flight never exceeds the window over a random run of statuses', () => {
    // Deterministic pseudo-random walk: the receiver commits some of what was sent.
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const state = sender(10_000, 7, 50);
    state.offer();
    state.accept(0);
    let ended = false;
    for (let step = 0; step < 10_000 && !ended; step++) {
      for (const action of drain(state)) {
        if (action.kind === 'end') ended = true;
        expect(state.inFlight).toBeLessThanOrEqual(50);
      }
      const target = state.committed + rand(state.inFlight + 1);
      if (target > state.committed) expect(state.status(target)).toBe(FileStatusVerdict.ADVANCE);
    }
    expect(ended).toBe(true);
    expect(state.next).toBe(10_000);
  });
});
