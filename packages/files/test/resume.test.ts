import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, FILE_CHUNK_PREFIX, FrameType, TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { PARTIAL_DIR, type ReceivedFile } from '../src/index.js';
import { engine, listFiles, MiB, randomFile, sha256, tempDir, until, Wire } from './helpers.js';

async function setup() {
  const root = await tempDir();
  const out = nodePath.join(root, 'out');
  const path = nodePath.join(root, 'src', 'data.bin');
  return { root, out, path };
}

describe('resume', () => {
  it('resume - after a link drop mid-transfer the sender resumes from the committed offset', async () => {
    const { out, path } = await setup();
    const size = 20 * MiB;
    const data = await randomFile(path, size);
    const sender = engine({ owner: 'server' });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const wire = new Wire(sender, receiver);
    const transfer = sender.sendFile(path);
    let cut = false;
    transfer.on('progress', (p) => {
      if (!cut && p.bytesCommitted >= 8 * MiB) {
        cut = true;
        wire.drop();
        setImmediate(() => wire.reconnect());
      }
    });

    const result = await transfer.done;

    expect(cut).toBe(true);
    expect((await fs.readFile(nodePath.join(out, 'data.bin'))).equals(data)).toBe(true);
    expect(result.sha256).toBe(sha256(data));
    expect(result.resumedFrom).toBe(0);
    expect(result.bytesSent).toBeLessThan(1.2 * size);
    const accepts = wire
      .of(FrameType.FILE_ACCEPT)
      .map((r) => (r.body as { offset: number }).offset);
    expect(accepts).toHaveLength(2);
    expect(accepts[0]).toBe(0);
    expect(accepts[1]).toBeGreaterThanOrEqual(8 * MiB);
    // The second connection sent only what the receiver had not committed.
    const offers = wire.records.flatMap((r, i) => (r.type === FrameType.FILE_OFFER ? [i] : []));
    expect(offers).toHaveLength(2);
    const after = wire.records.slice(offers[1]).filter((r) => r.type === FrameType.FILE_CHUNK);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((c) => (c.offset ?? 0) >= (accepts[1] ?? 0))).toBe(true);
  });

  it('resume - a new sender process offering the same file resumes instead of starting over', async () => {
    const { out, path } = await setup();
    const size = 16 * MiB;
    const data = await randomFile(path, size);
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const first = engine({ owner: 'server:1' });
    const wire1 = new Wire(first, receiver);
    const t1 = first.sendFile(path);
    t1.on('progress', (p) => {
      if (p.bytesCommitted >= 6 * MiB) {
        wire1.drop();
        void first.close(new TetherError(ErrorCode.CLOSED, 'process exit'));
      }
    });
    await expect(t1.done).rejects.toMatchObject({ code: ErrorCode.CLOSED });

    // The "restarted" sender: a new engine, the same path and peer.
    const second = engine({ owner: 'server:1' });
    new Wire(second, receiver);
    const t2 = second.sendFile(path);
    expect(t2.id).toBe(t1.id);
    const result = await t2.done;

    expect(result.resumedFrom).toBeGreaterThanOrEqual(6 * MiB);
    expect(result.bytesSent).toBe(size - result.resumedFrom);
    expect(result.bytesSent).toBeLessThan(size - 6 * MiB + 1);
    expect((await fs.readFile(nodePath.join(out, 'data.bin'))).equals(data)).toBe(true);
  });

  it('resume - a restarted receiver resumes from the offset its sidecar made durable', async () => {
    const { out, path } = await setup();
    const size = 12 * MiB;
    const data = await randomFile(path, size);
    // A window well below the file keeps FILE_END (and completion) from preceding the drop.
    const sender = engine({ owner: 'server', windowBytes: 2 * MiB });
    const receiver1 = engine({ owner: 'client', receive: { dir: out } });
    const wire1 = new Wire(sender, receiver1);
    const transfer = sender.sendFile(path);
    let dropped = false;
    transfer.on('progress', (p) => {
      if (!dropped && p.bytesCommitted >= 5 * MiB) {
        dropped = true;
        wire1.drop();
      }
    });
    await until(() => dropped, 'the drop');
    await receiver1.close(new TetherError(ErrorCode.CLOSED, 'receiver restart'));

    const receiver2 = engine({ owner: 'client', receive: { dir: out } });
    const wire2 = new Wire(sender, receiver2);
    const result = await transfer.done;
    const accept = wire2.of(FrameType.FILE_ACCEPT)[0]?.body as { offset: number };
    expect(accept.offset).toBeGreaterThanOrEqual(5 * MiB);
    expect(result.bytesSent).toBeLessThan(1.2 * size);
    expect((await fs.readFile(nodePath.join(out, 'data.bin'))).equals(data)).toBe(true);
  });

  it('resume - a corrupted chunk is caught by CRC, re-sent, and the file is still correct', async () => {
    const { out, path } = await setup();
    const size = 3 * MiB;
    const data = await randomFile(path, size);
    const sender = engine({ owner: 'server' });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    let chunks = 0;
    let flipped: number | undefined;
    const wire = new Wire(sender, receiver, {
      tamper: (frame, direction) => {
        if (direction !== 'ab' || frame[4] !== FrameType.FILE_CHUNK) return frame;
        if (++chunks !== 3) return frame;
        const copy = Buffer.from(frame);
        flipped = Number(copy.readBigUInt64BE(22));
        copy[FILE_CHUNK_PREFIX + 100] = (copy[FILE_CHUNK_PREFIX + 100] ?? 0) ^ 0xff;
        return copy;
      },
    });

    const result = await sender.sendFile(path).done;

    expect(flipped).toBe(2 * 256 * 1024);
    expect(result.sha256).toBe(sha256(data));
    expect((await fs.readFile(nodePath.join(out, 'data.bin'))).equals(data)).toBe(true);
    // The receiver asked for a rewind: it reported the chunk's offset twice.
    const statuses = wire
      .of(FrameType.FILE_STATUS)
      .map((r) => (r.body as { offset: number }).offset);
    expect(statuses.filter((o) => o === flipped).length).toBe(2);
    // The chunk at that offset went out twice; bytes after it in flight were re-sent too.
    expect(wire.of(FrameType.FILE_CHUNK).filter((c) => c.offset === flipped)).toHaveLength(2);
    expect(result.bytesSent).toBeGreaterThan(size);
  });

  it('resume - when FILE_COMPLETE is lost the re-offer is answered with FILE_COMPLETE, no second copy', async () => {
    const { out, path } = await setup();
    const data = await randomFile(path, 1 * MiB);
    const sender = engine({ owner: 'server' });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const files: ReceivedFile[] = [];
    receiver.on('file', (f) => files.push(f));
    let wire: Wire | undefined;
    wire = new Wire(sender, receiver, {
      tamper: (frame, direction) => {
        if (direction === 'ba' && frame[4] === FrameType.FILE_COMPLETE && wire !== undefined) {
          const old = wire;
          wire = undefined;
          setImmediate(() => {
            old.drop();
            old.reconnect({});
          });
          return null;
        }
        return frame;
      },
    });

    const result = await sender.sendFile(path).done;

    expect(result.bytesSent).toBe(1 * MiB);
    expect(files).toHaveLength(1);
    expect(await listFiles(out)).toEqual([
      expect.stringMatching(new RegExp(`^\\${PARTIAL_DIR}/[0-9a-f]{16}/[0-9a-f]{32}\\.json$`)),
      'data.bin',
    ]);
    expect((await fs.readFile(nodePath.join(out, 'data.bin'))).equals(data)).toBe(true);
  });

  it('resume - running out of disk fails with FILE_NO_SPACE, keeps the partial, and a later offer resumes', async () => {
    const { out, path } = await setup();
    const size = 10 * MiB;
    const data = await randomFile(path, size);
    let diskFull = true;
    const receiver = engine({
      owner: 'client',
      receive: { dir: out },
      io: {
        async write(handle, chunks, position) {
          const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
          if (diskFull && position + length > 6 * MiB) {
            throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          }
          await handle.writev([...chunks], position);
        },
      },
    });
    const sender = engine({ owner: 'server' });
    new Wire(sender, receiver);

    const first = sender.sendFile(path);
    await expect(first.done).rejects.toMatchObject({ code: ErrorCode.FILE_NO_SPACE });
    const partials = nodePath.join(out, PARTIAL_DIR);
    await until(async () => (await listFiles(partials)).length === 2, 'partial and sidecar');
    const kept = await listFiles(partials);
    expect(kept.map((f) => nodePath.extname(f)).sort()).toEqual(['.json', '.part']);

    diskFull = false;
    const second = sender.sendFile(path);
    const result = await second.done;
    expect(result.resumedFrom).toBeGreaterThan(0);
    expect(result.resumedFrom).toBeLessThanOrEqual(6 * MiB);
    expect(result.bytesSent).toBe(size - result.resumedFrom);
    expect((await fs.readFile(nodePath.join(out, 'data.bin'))).equals(data)).toBe(true);
  });
});
