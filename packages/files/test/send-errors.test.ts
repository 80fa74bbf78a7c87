import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, FrameType, TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { TransferEngine } from '../src/index.js';
import {
  captureLink,
  engine,
  listFiles,
  MiB,
  randomFile,
  tempDir,
  until,
  Wire,
} from './helpers.js';

describe('send errors', () => {
  it('send - a missing file rejects with FILE_NOT_FOUND', async () => {
    const root = await tempDir();
    const sender = engine({ owner: 'server' });
    const transfer = sender.sendFile(nodePath.join(root, 'nope.bin'));
    expect(transfer.id).toBe('');
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_NOT_FOUND });
    await expect(sender.sendFile(root).done).rejects.toMatchObject({
      code: ErrorCode.FILE_NOT_FOUND,
    });
  });

  it('send - a file modified after sendFile fails with FILE_CHANGED', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const transfer = sender.sendFile(path);
    await fs.appendFile(path, 'more');
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CHANGED });
  });

  it('send - a file modified before FILE_ACCEPT fails with FILE_CHANGED and cancels the offer', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const { link, frames } = captureLink();
    sender.attach(link);
    const transfer = sender.sendFile(path);
    await until(() => frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    const later = new Date(Date.now() + 5000);
    await fs.utimes(path, later, later);
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: transfer.id, offset: 0 } });
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CHANGED });
    expect(frames.filter((f) => f.type === FrameType.FILE_CANCEL)).toHaveLength(1);
  });

  it('send - a file modified while its chunks flow fails with FILE_CHANGED, and nothing is stored', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    const out = nodePath.join(root, 'out');
    await randomFile(path, 8 * MiB);
    const sender = engine({ owner: 'server', windowBytes: 512 * 1024 });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const wire = new Wire(sender, receiver);
    const transfer = sender.sendFile(path);
    let modified = false;
    transfer.on('progress', (p) => {
      if (p.bytesCommitted > 0 && !modified) {
        modified = true;
        // Same size: only the content (and so the mtime) changes, past what was sent.
        void fs.writeFile(path, Buffer.alloc(16, 1), { flag: 'r+' }).catch(() => {});
      }
    });
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CHANGED });
    expect(wire.of(FrameType.FILE_END)).toHaveLength(0);
    await until(() => wire.of(FrameType.FILE_CANCEL, 'ab').length === 1, 'FILE_CANCEL');
    await until(async () => (await listFiles(out)).length === 0, 'the partial to go');
  });

  it('send - the abort signal rejects with ABORTED', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const controller = new AbortController();
    const transfer = sender.sendFile(path, { signal: controller.signal });
    controller.abort(new Error('user gave up'));
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    const aborted = sender.sendFile(path, { signal: AbortSignal.abort() });
    await expect(aborted.done).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    expect(sender.activeTransfers).toBe(0);
  });

  it('send - the same file twice at once is refused with INVALID_OPTION', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const first = sender.sendFile(path);
    const second = sender.sendFile(path);
    expect(second.id).toBe(first.id);
    await expect(second.done).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTION });
    first.cancel();
    await expect(first.done).rejects.toMatchObject({ code: ErrorCode.FILE_CANCELLED });
  });

  it('send - the receiver failing the transfer rejects with its code', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const { link, frames } = captureLink();
    sender.attach(link);
    const known = sender.sendFile(path);
    await until(() => frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    sender.handle({
      type: FrameType.FILE_FAILED,
      body: { id: known.id, code: 'FILE_WRITE_FAILED', message: 'EIO', retryable: true },
    });
    await expect(known.done).rejects.toMatchObject({ code: ErrorCode.FILE_WRITE_FAILED });
    const other = nodePath.join(root, 'g.bin');
    await randomFile(other, 10);
    const unknown = sender.sendFile(other);
    await until(
      () => frames.filter((f) => f.type === FrameType.FILE_OFFER).length === 2,
      'offer 2',
    );
    sender.handle({
      type: FrameType.FILE_FAILED,
      body: { id: unknown.id, code: 'SOMETHING_NEW', message: '?', retryable: false },
    });
    await expect(unknown.done).rejects.toMatchObject({ code: ErrorCode.REMOTE_ERROR });
  });

  it('send - a FILE_COMPLETE that does not match the offer fails with FILE_CHECKSUM_MISMATCH', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const { link, frames } = captureLink();
    sender.attach(link);
    const transfer = sender.sendFile(path);
    await until(() => frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    sender.handle({
      type: FrameType.FILE_COMPLETE,
      body: { id: transfer.id, size: 1000, sha256: '0'.repeat(64) },
    });
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CHECKSUM_MISMATCH });
  });

  it('send - close rejects pending transfers with its error and refuses new ones with CLOSED', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 2 * MiB);
    const sender = new TransferEngine({ owner: 'server' });
    const receiver = engine({ owner: 'client', receive: { dir: nodePath.join(root, 'out') } });
    new Wire(sender, receiver, { highWater: 64 * 1024 });
    const transfer = sender.sendFile(path);
    await sender.close(new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'bye'));
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.SERVER_SHUTTING_DOWN });
    await expect(sender.sendFile(path).done).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(sender.activeTransfers).toBe(0);
  });

  it('send - bad options fail at once', () => {
    expect(() => new TransferEngine({ owner: '' })).toThrow(TypeError);
    expect(() => new TransferEngine({ owner: 'x', chunkSize: 0 })).toThrow(TypeError);
    expect(() => new TransferEngine({ owner: 'x', windowBytes: 1.5 })).toThrow(TypeError);
    expect(() => new TransferEngine({ owner: 'x', concurrency: 0 })).toThrow(TypeError);
    expect(() => new TransferEngine({ owner: 'x', receive: { dir: '' } })).toThrow(TypeError);
    expect(
      () => new TransferEngine({ owner: 'x', receive: { dir: '/tmp/x', maxFileSize: -1 } }),
    ).toThrow(TypeError);
  });
});

describe('send reconnects', () => {
  it('send - a FILE_ACCEPT on a new connection is not lost while the previous one is checked', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 1000);
    const sender = engine({ owner: 'server' });
    const first = captureLink();
    sender.attach(first.link);
    const transfer = sender.sendFile(path);
    await until(() => first.frames.some((f) => f.type === FrameType.FILE_OFFER), 'offer 1');
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: transfer.id, offset: 0 } });
    // The link drops and comes back before the first accept's file check finishes.
    sender.detach();
    const second = captureLink();
    sender.attach(second.link);
    expect(second.frames.map((f) => f.type)).toEqual([FrameType.FILE_OFFER]);
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: transfer.id, offset: 0 } });
    await until(() => second.frames.some((f) => f.type === FrameType.FILE_END), 'FILE_END');
    expect(first.frames.filter((f) => f.type === FrameType.FILE_CHUNK)).toHaveLength(0);
    expect(second.frames.filter((f) => f.type === FrameType.FILE_CHUNK)).toHaveLength(1);
  });
});
