import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, FrameType } from '@tether/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type FileFrame, PARTIAL_DIR, ReceiveDirectory } from '../src/index.js';
import {
  captureLink,
  chunkFrames,
  endFrame,
  engine,
  failedCode,
  listFiles,
  MiB,
  manualTime,
  nthAnswer,
  offerFrame,
  sha256,
  statusOffsets,
  tempDir,
  until,
} from './helpers.js';

function id(n: number): string {
  return n.toString(16).padStart(32, '0');
}

/** Paths of the files this process holds open under `dir` (Linux: /proc/self/fd). */
async function openFilesUnder(dir: string): Promise<string[]> {
  const fds = await fs.readdir('/proc/self/fd');
  const paths = await Promise.all(
    fds.map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return paths.filter((p) => p.startsWith(dir));
}

afterEach(() => {
  vi.useRealTimers();
});

describe('receive limits', () => {
  it('limits - one peer gets at most 8 incoming transfers at once by default; the next offer is TOO_MANY_TRANSFERS (retryable)', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    for (let n = 1; n <= 9; n++) receiver.handle(offerFrame(id(n), `f${n}.bin`, 100));
    for (let n = 1; n <= 8; n++) {
      expect((await nthAnswer(frames, id(n))).type, `offer ${n}`).toBe(FrameType.FILE_ACCEPT);
    }
    const refused = await nthAnswer(frames, id(9));
    expect(failedCode(refused)).toBe(ErrorCode.TOO_MANY_TRANSFERS);
    expect(refused.type === FrameType.FILE_FAILED && refused.body.retryable).toBe(true);
    // A refused offer leaves nothing on disk.
    const partials = await listFiles(nodePath.join(out, PARTIAL_DIR));
    expect(partials.filter((f) => f.includes(id(9)))).toEqual([]);

    // Once one transfer ends, the same offer is accepted.
    receiver.handle({ type: FrameType.FILE_CANCEL, body: { id: id(1), reason: 'done' } });
    await until(() => receiver.activeTransfers === 7, 'the cancelled transfer to go');
    receiver.handle(offerFrame(id(9), 'f9.bin', 100));
    expect((await nthAnswer(frames, id(9), 2)).type).toBe(FrameType.FILE_ACCEPT);
  });

  it('limits - maxTransfers sets the per-engine cap', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const receiver = engine({ owner: 'client', receive: { dir: out, maxTransfers: 2 } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    for (let n = 1; n <= 3; n++) receiver.handle(offerFrame(id(n), `f${n}.bin`, 100));
    expect((await nthAnswer(frames, id(2))).type).toBe(FrameType.FILE_ACCEPT);
    expect(failedCode(await nthAnswer(frames, id(3)))).toBe(ErrorCode.TOO_MANY_TRANSFERS);
  });

  it('limits - the directory caps open incoming transfers across engines; an idle one gives its place back', async () => {
    const time = manualTime();
    const out = nodePath.join(await tempDir(), 'out');
    const directory = new ReceiveDirectory({
      dir: out,
      maxOpenTransfers: 2,
      idleMs: 1000,
      now: time.now,
    });
    const alice = engine({ owner: 'alice', receive: { dir: out, directory } });
    const bob = engine({ owner: 'bob', receive: { dir: out, directory } });
    const a = captureLink();
    const b = captureLink();
    alice.attach(a.link);
    bob.attach(b.link);
    const data = Buffer.alloc(1000, 0x61);
    alice.handle(offerFrame(id(1), 'a1.bin', data.length));
    alice.handle(offerFrame(id(2), 'a2.bin', data.length));
    await nthAnswer(a.frames, id(2));
    expect(directory.openTransfers).toBe(2);
    bob.handle(offerFrame(id(3), 'b.bin', data.length));
    const refused = await nthAnswer(b.frames, id(3));
    expect(failedCode(refused)).toBe(ErrorCode.TOO_MANY_TRANSFERS);
    expect(refused.type === FrameType.FILE_FAILED && refused.body.retryable).toBe(true);

    // Alice's transfers receive nothing: they close their files and give their places back.
    await time.advance(1600);
    await until(() => directory.openTransfers === 0, 'idle transfers to close');
    expect(await openFilesUnder(out)).toEqual([]);
    bob.handle(offerFrame(id(3), 'b.bin', data.length));
    expect((await nthAnswer(b.frames, id(3), 2)).type).toBe(FrameType.FILE_ACCEPT);
    expect(directory.openTransfers).toBe(1);
    // Alice's first transfer resumes: it reopens its file (the second place).
    alice.handle(chunkFrames(id(1), data)[0] as FileFrame);
    await until(() => statusOffsets(a.frames, id(1)).includes(data.length), "alice's bytes");
    expect(directory.openTransfers).toBe(2);
    // Her second cannot: it fails, retryable, and keeps its partial.
    alice.handle(chunkFrames(id(2), data)[0] as FileFrame);
    const second = await nthAnswer(a.frames, id(2), 2);
    expect(failedCode(second)).toBe(ErrorCode.TOO_MANY_TRANSFERS);
    expect(second.type === FrameType.FILE_FAILED && second.body.retryable).toBe(true);
    expect(statusOffsets(a.frames, id(2))).toEqual([]);
    alice.handle(endFrame(id(1), data));
    expect(await nthAnswer(a.frames, id(1), 2)).toEqual({
      type: FrameType.FILE_COMPLETE,
      body: { id: id(1), size: data.length, sha256: sha256(data) },
    });
    await until(() => directory.openTransfers === 1, "alice's finished transfer to close");
  });

  it('limits - an idle transfer holds no file descriptor; its next chunk reopens the partial', async () => {
    const time = manualTime();
    const out = nodePath.join(await tempDir(), 'out');
    const directory = new ReceiveDirectory({ dir: out, idleMs: 1000, now: time.now });
    const receiver = engine({ owner: 'client', receive: { dir: out, directory } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    const data = Buffer.alloc(MiB, 0x5a);
    const chunks = chunkFrames(id(1), data);
    receiver.handle(offerFrame(id(1), 'z.bin', data.length));
    await nthAnswer(frames, id(1));
    receiver.handle(chunks[0] as FileFrame);
    await until(() => statusOffsets(frames, id(1)).includes(256 * 1024), 'the first chunk');
    expect((await openFilesUnder(out)).length).toBe(1);
    expect(directory.openTransfers).toBe(1);

    await time.advance(1600);
    await until(() => directory.openTransfers === 0, 'the idle transfer to close its file');
    expect(await openFilesUnder(out)).toEqual([]);
    // Closed after a checkpoint: the sidecar holds what was written.
    const sidecars = (await listFiles(nodePath.join(out, PARTIAL_DIR))).filter((f) =>
      f.endsWith('.json'),
    );
    const sidecar = JSON.parse(
      await fs.readFile(nodePath.join(out, PARTIAL_DIR, sidecars[0] as string), 'utf8'),
    );
    expect(sidecar.committed).toBe(256 * 1024);

    for (const chunk of chunks.slice(1)) receiver.handle(chunk);
    receiver.handle(endFrame(id(1), data));
    expect(await nthAnswer(frames, id(1), 2)).toEqual({
      type: FrameType.FILE_COMPLETE,
      body: { id: id(1), size: data.length, sha256: sha256(data) },
    });
    expect(sha256(await fs.readFile(nodePath.join(out, 'z.bin')))).toBe(sha256(data));
  });

  it('limits - an offer that never sends a byte stops holding free space after the idle time', async () => {
    const time = manualTime();
    const out = nodePath.join(await tempDir(), 'out');
    let free = 2000;
    const directory = new ReceiveDirectory({
      dir: out,
      idleMs: 1000,
      now: time.now,
      io: { freeBytes: async () => free },
    });
    const holder = engine({ owner: 'holder', receive: { dir: out, directory } });
    const other = engine({ owner: 'other', receive: { dir: out, directory } });
    const h = captureLink();
    const o = captureLink();
    holder.attach(h.link);
    other.attach(o.link);
    holder.handle(offerFrame(id(1), 'big.bin', 1900));
    expect((await nthAnswer(h.frames, id(1))).type).toBe(FrameType.FILE_ACCEPT);
    expect(directory.reservedBytes).toBe(1900);
    other.handle(offerFrame(id(2), 'small.bin', 300));
    expect(failedCode(await nthAnswer(o.frames, id(2)))).toBe(ErrorCode.FILE_NO_SPACE);

    await time.advance(1600);
    await until(() => directory.reservedBytes === 0, 'the idle reservation to expire');
    other.handle(offerFrame(id(2), 'small.bin', 300));
    expect((await nthAnswer(o.frames, id(2), 2)).type).toBe(FrameType.FILE_ACCEPT);
    expect(directory.reservedBytes).toBe(300);

    // The holder's bytes resume: it must reserve again, and 1700 bytes cannot hold its 1900.
    const data = Buffer.alloc(1900, 0x68);
    holder.handle(chunkFrames(id(1), data, 100)[0] as FileFrame);
    const failed = await nthAnswer(h.frames, id(1), 2);
    expect(failedCode(failed)).toBe(ErrorCode.FILE_NO_SPACE);
    expect(failed.type === FrameType.FILE_FAILED && failed.body.retryable).toBe(true);
    expect(directory.reservedBytes).toBe(300);

    // With room again, the same offer resumes and reserves what is left.
    free = 1_000_000;
    holder.handle(offerFrame(id(1), 'big.bin', 1900));
    expect((await nthAnswer(h.frames, id(1), 3)).type).toBe(FrameType.FILE_ACCEPT);
    expect(directory.reservedBytes).toBe(300 + 1900);
  });

  it('limits - an accepted offer dropped before its first byte leaves no partial behind', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    receiver.handle(offerFrame(id(1), 'never.bin', 5000));
    await nthAnswer(frames, id(1));
    expect(await listFiles(nodePath.join(out, PARTIAL_DIR))).toHaveLength(2);
    receiver.detach();
    await until(
      async () => (await listFiles(nodePath.join(out, PARTIAL_DIR))).length === 0,
      'the empty partial to go',
    );
  });

  it('limits - the sweep deletes partials without a durable byte after emptyPartialTtlMs, others after partialTtlMs', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const partials = nodePath.join(out, PARTIAL_DIR);
    const folder = nodePath.join(partials, '00000000000000aa');
    await fs.mkdir(folder, { recursive: true });
    // What a crash leaves: one partial that never got a durable byte, one that did.
    const write = async (n: number, committed: number): Promise<void> => {
      const sidecar = {
        version: 1,
        id: id(n),
        owner: 'x',
        name: 'f',
        size: 10,
        committed,
        updatedAt: 0,
      };
      await fs.writeFile(nodePath.join(folder, `${id(n)}.json`), JSON.stringify(sidecar));
      await fs.writeFile(nodePath.join(folder, `${id(n)}.part`), Buffer.alloc(committed));
    };
    await write(1, 0);
    await write(2, 5);
    const old = new Date(Date.now() - 2 * 60 * 1000);
    for (const file of await listFiles(partials)) {
      await fs.utimes(nodePath.join(partials, file), old, old);
    }
    const sweeper = engine({
      owner: 'client',
      receive: { dir: out, emptyPartialTtlMs: 60_000 },
    });
    expect(await sweeper.sweep()).toBe(1);
    expect(await listFiles(partials)).toEqual([
      `00000000000000aa/${id(2)}.json`,
      `00000000000000aa/${id(2)}.part`,
    ]);
  });
});

describe('receive directory options', () => {
  it('directory - bad options and settings given to the wrong object fail at once', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    for (const options of [
      { dir: '' },
      { dir: out, maxOpenTransfers: 0 },
      { dir: out, maxOpenTransfers: 2.5 },
      { dir: out, idleMs: 0 },
      { dir: out, idleMs: Number.POSITIVE_INFINITY },
      { dir: out, minFreeBytes: -1 },
      { dir: out, emptyPartialTtlMs: -1 },
    ]) {
      expect(() => new ReceiveDirectory(options), JSON.stringify(options)).toThrow(TypeError);
    }
    const directory = new ReceiveDirectory({ dir: out });
    expect(() => engine({ owner: 'x', receive: { directory, idleMs: 10 } })).toThrow(TypeError);
    expect(() => engine({ owner: 'x', receive: { dir: `${out}-other`, directory } })).toThrow(
      TypeError,
    );
    expect(() => engine({ owner: 'x', receive: { dir: out, maxTransfers: 0 } })).toThrow(TypeError);
    // The same folder spelled differently is the same directory.
    expect(() => engine({ owner: 'x', receive: { dir: `${out}/.`, directory } })).not.toThrow();
  });
});
