import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { ownerKey } from '../src/fingerprint.js';
import { PARTIAL_DIR, ReceiveDirectory, type TransferEngine } from '../src/index.js';
import {
  captureLink,
  chunkFrames,
  endFrame,
  engine,
  nthAnswer,
  offerFrame,
  sha256,
  tempDir,
} from './helpers.js';

const ID = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

/**
 * Runs a full sweep at the worst moment for a new owner's first offer: its owner folder exists
 * and is still empty (the receiver asks for free space after creating the folder and reading the
 * sidecar, before opening the partial). The hook checks that moment is the one it thinks.
 */
function sweepDuringOffer(out: string, owner: string, sweeper: () => TransferEngine) {
  const folder = nodePath.join(out, PARTIAL_DIR, ownerKey(owner));
  const seen: string[][] = [];
  return {
    seen,
    freeBytes: async (): Promise<number> => {
      seen.push(await fs.readdir(folder));
      // Twice: the first may be a sweep that was already running; the second starts now.
      await sweeper().sweep();
      await sweeper().sweep();
      return Number.MAX_SAFE_INTEGER;
    },
  };
}

describe('sweep', () => {
  it("sweep - a sweep during a new owner's first offer does not remove the folder the offer is filling", async () => {
    const out = nodePath.join(await tempDir(), 'out');
    let receiver: TransferEngine | undefined;
    const hook = sweepDuringOffer(out, 'new-client', () => receiver as TransferEngine);
    receiver = engine({
      owner: 'new-client',
      receive: { dir: out },
      io: { freeBytes: hook.freeBytes },
    });
    const { link, frames } = captureLink();
    receiver.attach(link);
    const data = Buffer.alloc(1000, 0x77);
    receiver.handle(offerFrame(ID, 'first.bin', data.length));
    expect(await nthAnswer(frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    expect(hook.seen).toEqual([[]]);
    for (const chunk of chunkFrames(ID, data)) receiver.handle(chunk);
    receiver.handle(endFrame(ID, data));
    expect((await nthAnswer(frames, ID, 2)).type).toBe(FrameType.FILE_COMPLETE);
    expect(sha256(await fs.readFile(nodePath.join(out, 'first.bin')))).toBe(sha256(data));
  });

  it("sweep - another session's sweep (same directory) does not race a new owner's first offer", async () => {
    const out = nodePath.join(await tempDir(), 'out');
    let other: TransferEngine | undefined;
    const hook = sweepDuringOffer(out, 'client:new', () => other as TransferEngine);
    const directory = new ReceiveDirectory({ dir: out, io: { freeBytes: hook.freeBytes } });
    other = engine({ owner: 'client:old', receive: { dir: out, directory } });
    const receiver = engine({
      owner: 'client:new',
      receive: { dir: out, directory },
      io: { freeBytes: hook.freeBytes },
    });
    const { link, frames } = captureLink();
    receiver.attach(link);
    receiver.handle(offerFrame(ID, 'first.bin', 10));
    expect(await nthAnswer(frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    expect(hook.seen).toEqual([[]]);
  });
});
