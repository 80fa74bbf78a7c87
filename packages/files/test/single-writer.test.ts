import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { type FileFrame, PARTIAL_DIR, ReceiveDirectory } from '../src/index.js';
import {
  captureLink,
  chunkFrames,
  endFrame,
  engine,
  failedCode,
  listFiles,
  MiB,
  nthAnswer,
  offerFrame,
  sha256,
  statusOffsets,
  tempDir,
  until,
} from './helpers.js';

const ID = '0123456789abcdef0123456789abcdef';

/** A receiving engine for `owner` on its own captured link, sharing `directory`. */
function session(owner: string, out: string, directory: ReceiveDirectory) {
  const e = engine({ owner, receive: { dir: out, directory } });
  const { link, frames } = captureLink();
  e.attach(link);
  return { engine: e, frames };
}

function isFinal(f: FileFrame): boolean {
  return f.type === FrameType.FILE_COMPLETE || f.type === FrameType.FILE_FAILED;
}

/** Stored files (outside the partial folder) with their SHA-256. */
async function stored(out: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const file of await listFiles(out)) {
    if (file.startsWith(PARTIAL_DIR)) continue;
    result.set(file, sha256(await fs.readFile(nodePath.join(out, file))));
  }
  return result;
}

describe('single writer', () => {
  it('single writer - a second session offering the same transfer fences the first: every FILE_COMPLETE matches the stored bytes', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const directory = new ReceiveDirectory({ dir: out });
    // Same identity, two sessions (two engines), one upload directory: what a server does.
    const a = session('client:x', out, directory);
    const b = session('client:x', out, directory);
    const aData = Buffer.alloc(MiB, 0x41);
    const bData = Buffer.alloc(MiB, 0x42);

    a.engine.handle(offerFrame(ID, 'f.bin', MiB));
    expect(await nthAnswer(a.frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    b.engine.handle(offerFrame(ID, 'f.bin', MiB));
    expect(await nthAnswer(b.frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });

    // A writes its megabyte (unless it was fenced out), then B writes its own over it.
    for (const chunk of chunkFrames(ID, aData)) a.engine.handle(chunk);
    await until(
      () => statusOffsets(a.frames, ID).includes(MiB) || a.frames.some(isFinal),
      "A's bytes written or A fenced",
    );
    for (const chunk of chunkFrames(ID, bData)) b.engine.handle(chunk);
    await until(() => statusOffsets(b.frames, ID).includes(MiB), "B's bytes written");
    a.engine.handle(endFrame(ID, aData));
    await until(() => a.frames.some(isFinal), "an answer to A's FILE_END");
    b.engine.handle(endFrame(ID, bData));
    await until(() => b.frames.some(isFinal), "an answer to B's FILE_END");

    // Whatever happened, a FILE_COMPLETE names the SHA-256 of a file that is stored as such.
    const files = await stored(out);
    for (const frame of [...a.frames, ...b.frames]) {
      if (frame.type !== FrameType.FILE_COMPLETE) continue;
      expect([...files.values()]).toContain(frame.body.sha256);
    }
    // And what happened is: B's offer fenced A out; B's file is stored.
    const aFinal = a.frames.find(isFinal);
    expect(failedCode(aFinal)).toBe(ErrorCode.TRANSFER_TAKEN_OVER);
    expect(aFinal?.type === FrameType.FILE_FAILED && aFinal.body.retryable).toBe(false);
    expect(b.frames.find(isFinal)).toEqual({
      type: FrameType.FILE_COMPLETE,
      body: { id: ID, size: MiB, sha256: sha256(bData) },
    });
    expect([...files.values()]).toEqual([sha256(bData)]);
    // A's chunks after the fence were ignored: no status ever reported them.
    expect(statusOffsets(a.frames, ID)).toEqual([]);
  });

  it('single writer - the session taking over resumes from the bytes the fenced one made durable', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const directory = new ReceiveDirectory({ dir: out });
    const data = Buffer.alloc(2 * MiB, 0x43);
    const a = session('client:y', out, directory);
    a.engine.handle(offerFrame(ID, 'g.bin', data.length));
    await nthAnswer(a.frames, ID);
    for (const chunk of chunkFrames(ID, data.subarray(0, MiB))) a.engine.handle(chunk);
    await until(() => statusOffsets(a.frames, ID).includes(MiB), "A's first megabyte");

    const b = session('client:y', out, directory);
    b.engine.handle(offerFrame(ID, 'g.bin', data.length));
    expect(await nthAnswer(b.frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: MiB },
    });
    expect(failedCode(a.frames.find(isFinal))).toBe(ErrorCode.TRANSFER_TAKEN_OVER);
    for (const chunk of chunkFrames(ID, data.subarray(MiB), 256 * 1024, MiB)) {
      b.engine.handle(chunk);
    }
    b.engine.handle(endFrame(ID, data));
    await until(() => b.frames.some(isFinal), "an answer to B's FILE_END");
    expect(b.frames.find(isFinal)?.type).toBe(FrameType.FILE_COMPLETE);
    expect([...(await stored(out)).values()]).toEqual([sha256(data)]);
  });
});
