import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { crc32, ErrorCode, FrameType, TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { type FileFrame, type FileOfferInfo, PARTIAL_DIR, transferId } from '../src/index.js';
import {
  captureLink,
  engine,
  listFiles,
  MiB,
  randomFile,
  sha256,
  tempDir,
  until,
  Wire,
} from './helpers.js';

const ID = '0123456789abcdef0123456789abcdef';
function offer(name: string, size = 10, id = ID): FileFrame {
  return { type: FrameType.FILE_OFFER, body: { id, name, size } };
}

/** The first answer (FILE_ACCEPT, FILE_FAILED or FILE_COMPLETE) to an offer. */
async function answer(frames: FileFrame[], id = ID): Promise<FileFrame> {
  const isAnswer = (f: FileFrame): boolean =>
    (f.type === FrameType.FILE_ACCEPT ||
      f.type === FrameType.FILE_FAILED ||
      f.type === FrameType.FILE_COMPLETE) &&
    f.body.id === id;
  await until(() => frames.some(isAnswer), 'an answer to the offer');
  return frames.find(isAnswer) as FileFrame;
}

function failedCode(frame: FileFrame): string | undefined {
  return frame.type === FrameType.FILE_FAILED ? frame.body.code : undefined;
}

describe('receive checks', () => {
  it('receive - bad names are refused with FILE_NAME_INVALID and nothing is written outside the folder', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'deep', 'out');
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const names = [
      '/etc/passwd',
      nodePath.join(root, 'abs.txt'),
      '../escape.txt',
      '../../escape.txt',
      'sub/../../x',
      '..\\..\\win.txt',
      'C:\\x.txt',
      'ctl\u0001.txt',
      'new\nline',
      'CON.txt',
      'con',
      'Lpt9.tar.gz',
      'x'.repeat(300),
      '.',
      '..',
      '',
    ];
    for (const [i, name] of names.entries()) {
      const { link, frames } = captureLink();
      receiver.attach(link);
      const id = i.toString(16).padStart(32, '0');
      receiver.handle(offer(name, 10, id));
      const reply = await answer(frames, id);
      expect(failedCode(reply), JSON.stringify(name)).toBe(ErrorCode.FILE_NAME_INVALID);
      expect(reply.type === FrameType.FILE_FAILED && reply.body.retryable).toBe(false);
    }
    // Nothing anywhere under the root but the (empty) partial folder.
    expect(await listFiles(root)).toEqual([]);
  });

  it('receive - the sender refuses a bad name locally with FILE_NAME_INVALID', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.txt');
    await fs.writeFile(path, 'x');
    const sender = engine({ owner: 'server' });
    const transfer = sender.sendFile(path, { name: '../f.txt' });
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_NAME_INVALID });
  });

  it('receive - a file over maxFileSize is refused with FILE_TOO_LARGE before any chunk', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'big.bin');
    await randomFile(path, 5000);
    const sender = engine({ owner: 'server' });
    const receiver = engine({ owner: 'client', receive: { dir: out, maxFileSize: 4999 } });
    const wire = new Wire(sender, receiver);
    await expect(sender.sendFile(path).done).rejects.toMatchObject({
      code: ErrorCode.FILE_TOO_LARGE,
    });
    expect(wire.of(FrameType.FILE_CHUNK)).toHaveLength(0);
    expect(await listFiles(out)).toEqual([]);
  });

  it('receive - not enough free space refuses with FILE_NO_SPACE before any chunk', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const receiver = engine({
      owner: 'client',
      receive: { dir: out, minFreeBytes: 500 },
      io: { freeBytes: async () => 1499 },
    });
    const wire = new Wire(sender, receiver);
    await expect(sender.sendFile(path).done).rejects.toMatchObject({
      code: ErrorCode.FILE_NO_SPACE,
    });
    expect(wire.of(FrameType.FILE_CHUNK)).toHaveLength(0);
  });

  it('receive - the real free-space check passes for a small file', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'f.bin');
    const data = await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    new Wire(sender, receiver);
    await sender.sendFile(path).done;
    expect((await fs.readFile(nodePath.join(out, 'f.bin'))).equals(data)).toBe(true);
  });

  it('receive - without receive options every offer is refused with TRANSFER_REFUSED', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 10);
    const a = engine({ owner: 'server' });
    const b = engine({ owner: 'client' });
    new Wire(a, b);
    await expect(a.sendFile(path).done).rejects.toMatchObject({
      code: ErrorCode.TRANSFER_REFUSED,
    });
  });

  it('receive - the decide handler sees the offer and can refuse it with TRANSFER_REFUSED', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const seen: FileOfferInfo[] = [];
    const receiver = engine({
      owner: 'client-7',
      receive: {
        dir: out,
        decide: async (o) => {
          seen.push(o);
          return o.name.endsWith('.ok');
        },
      },
    });
    const sender = engine({ owner: 'server' });
    new Wire(sender, receiver);
    const good = nodePath.join(root, 'a.ok');
    const bad = nodePath.join(root, 'b.exe');
    const goodData = await randomFile(good, 100);
    await randomFile(bad, 100);
    expect((await sender.sendFile(good).done).sha256).toBe(sha256(goodData));
    await expect(sender.sendFile(bad).done).rejects.toMatchObject({
      code: ErrorCode.TRANSFER_REFUSED,
    });
    expect(seen).toEqual([
      { name: 'a.ok', size: 100, owner: 'client-7' },
      expect.objectContaining({ name: 'b.exe', size: 100 }),
    ]);
  });

  it('receive - cancel from the sender rejects done with FILE_CANCELLED and deletes the partial', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'big.bin');
    await randomFile(path, 8 * MiB);
    const sender = engine({ owner: 'server', windowBytes: 1 * MiB });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const wire = new Wire(sender, receiver);
    const transfer = sender.sendFile(path);
    transfer.on('progress', (p) => {
      if (p.bytesCommitted > 0) transfer.cancel();
    });
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CANCELLED });
    await until(() => wire.of(FrameType.FILE_CANCEL, 'ab').length === 1, 'FILE_CANCEL');
    await until(async () => (await listFiles(out)).length === 0, 'the partial to go');
    expect(receiver.activeTransfers).toBe(0);
    expect(sender.activeTransfers).toBe(0);
  });

  it('receive - a FILE_CANCEL that arrives while the offer is prepared still deletes the partial', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    receiver.handle(offer('f.bin', 100));
    receiver.handle({ type: FrameType.FILE_CANCEL, body: { id: ID, reason: 'changed my mind' } });
    expect((await answer(frames)).type).toBe(FrameType.FILE_ACCEPT);
    await until(async () => (await listFiles(out)).length === 0, 'the partial to go');
    expect(receiver.activeTransfers).toBe(0);
  });

  it('receive - another owner presenting the same transfer id gets a fresh transfer, never the partial', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'secret.bin');
    const data = await randomFile(path, 4 * MiB);
    const alice = engine({ owner: 'alice', receive: { dir: out } });
    // A window well below the file keeps the transfer from finishing before the drop.
    const sender = engine({ owner: 'server', windowBytes: 512 * 1024 });
    const wire = new Wire(sender, alice);
    const transfer = sender.sendFile(path);
    let cut = false;
    transfer.on('progress', (p) => {
      if (!cut && p.bytesCommitted >= 1 * MiB) {
        cut = true;
        wire.drop();
      }
    });
    const partials = nodePath.join(out, PARTIAL_DIR);
    // Closed once at least 1 MiB is committed: the pause makes it durable.
    await until(() => cut, 'the drop');
    await until(async () => (await listFiles(partials)).length === 2, "alice's partial");
    await alice.close(new TetherError(ErrorCode.CLOSED, 'x'));
    const before = await snapshot(partials);
    expect(Object.keys(before)).toHaveLength(2);

    // Mallory replays alice's offer (same id, name and size) from her own connection.
    const mallory = engine({ owner: 'mallory', receive: { dir: out } });
    const { link, frames } = captureLink();
    mallory.attach(link);
    mallory.handle(offer('secret.bin', data.length, transfer.id));
    const reply = await answer(frames, transfer.id);
    expect(reply).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: transfer.id, offset: 0 },
    });
    // She writes at offset 0 and cancels: alice's partial and sidecar are untouched.
    const junk = Buffer.alloc(1000, 0x41);
    mallory.handle({
      type: FrameType.FILE_CHUNK,
      id: transfer.id,
      offset: 0,
      crc32: crc32(junk),
      data: junk,
    });
    mallory.handle({ type: FrameType.FILE_CANCEL, body: { id: transfer.id, reason: 'x' } });
    await until(async () => (await listFiles(partials)).length === 2, "mallory's partial to go");
    expect(await snapshot(partials)).toEqual(before);
    // A status to mallory never carries alice's offset.
    expect(frames.filter((f) => f.type === FrameType.FILE_STATUS)).toEqual([]);
  });

  it('receive - partials untouched past the TTL are swept, recent ones kept', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 4 * MiB);
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const sender = engine({ owner: 'server', windowBytes: 512 * 1024 });
    const wire = new Wire(sender, receiver);
    const transfer = sender.sendFile(path);
    let cut = false;
    transfer.on('progress', (p) => {
      if (!cut && p.bytesCommitted >= 1 * MiB) {
        cut = true;
        wire.drop();
      }
    });
    const partials = nodePath.join(out, PARTIAL_DIR);
    await until(() => cut, 'the drop');
    await until(async () => (await listFiles(partials)).length === 2, 'a partial');
    await receiver.close(new TetherError(ErrorCode.CLOSED, 'x'));
    expect(await listFiles(partials)).toHaveLength(2);
    // Age the partial by two days; add a fresh one of another owner.
    const old = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    for (const file of await listFiles(partials)) {
      await fs.utimes(nodePath.join(partials, file), old, old);
    }
    const freshDir = nodePath.join(partials, 'ffffffffffffffff');
    await fs.mkdir(freshDir, { recursive: true });
    const freshId = transferId({ path: '/x', size: 1, mtimeMs: 1, peer: 'p' });
    await fs.writeFile(nodePath.join(freshDir, `${freshId}.part`), 'x');

    const sweeper = engine({
      owner: 'client',
      receive: { dir: out, partialTtlMs: 24 * 60 * 60 * 1000 },
    });
    await sweeper.sweep();
    expect(await listFiles(partials)).toEqual([`ffffffffffffffff/${freshId}.part`]);
  });
});

/** Every file under `dir` with its contents. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of await listFiles(dir)) {
    out[file] = (await fs.readFile(nodePath.join(dir, file))).toString('base64');
  }
  return out;
}
