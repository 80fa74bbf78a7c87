import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { PARTIAL_DIR, type ReceivedFile, type TransferProgress } from '../src/index.js';
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

/** A sender (to the server) and a receiver (of the client), storing into `<root>/out`. */
async function setup(receive: { maxFileSize?: number } = {}) {
  const root = await tempDir();
  const out = nodePath.join(root, 'out');
  const sender = engine({ owner: 'server:7000' });
  const receiver = engine({ owner: 'client-a', receive: { dir: out, ...receive } });
  const files: ReceivedFile[] = [];
  receiver.on('file', (f) => files.push(f));
  return { root, out, sender, receiver, files };
}

describe('transfer', () => {
  it('transfer - a 20 MiB file arrives byte-identical with the right SHA-256', async () => {
    const { root, out, sender, receiver, files } = await setup();
    const path = nodePath.join(root, 'src', 'big.bin');
    const data = await randomFile(path, 20 * MiB);
    const wire = new Wire(sender, receiver);
    const transfer = sender.sendFile(path);
    expect(transfer.id).toMatch(/^[0-9a-f]{32}$/);
    expect(transfer.size).toBe(20 * MiB);
    expect(transfer.name).toBe('big.bin');
    expect(transfer.path).toBe(path);
    const progress: TransferProgress[] = [];
    transfer.on('progress', (p) => progress.push(p));
    expect(sender.activeTransfers).toBe(1);

    const result = await transfer.done;

    expect(result).toMatchObject({
      id: transfer.id,
      name: 'big.bin',
      size: 20 * MiB,
      sha256: sha256(data),
      resumedFrom: 0,
      bytesSent: 20 * MiB,
    });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(files).toEqual([
      {
        id: transfer.id,
        name: 'big.bin',
        path: nodePath.join(out, 'big.bin'),
        size: 20 * MiB,
        sha256: sha256(data),
        owner: 'client-a',
      },
    ]);
    expect((await fs.readFile(nodePath.join(out, 'big.bin'))).equals(data)).toBe(true);
    // Progress: committed bytes only grow, and the last report is the whole file.
    const committed = progress.map((p) => p.bytesCommitted);
    expect(committed).toEqual([...committed].sort((x, y) => x - y));
    expect(progress.at(-1)).toMatchObject({ bytesCommitted: 20 * MiB, total: 20 * MiB });
    expect(progress.some((p) => p.rateBytesPerSec > 0 && p.etaMs !== undefined)).toBe(true);
    // Flow control held: never more than the window in flight beyond the reported offset.
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(1);
    expect(wire.of(FrameType.FILE_CHUNK).every((c) => (c.dataLength ?? 0) <= 256 * 1024)).toBe(
      true,
    );
    // Statuses are coalesced: far fewer than one per chunk would be needed at most.
    expect(wire.of(FrameType.FILE_STATUS).length).toBeLessThanOrEqual(
      wire.of(FrameType.FILE_CHUNK).length,
    );
    // Only the completion record is left in the partial folder.
    expect(
      (await listFiles(nodePath.join(out, PARTIAL_DIR))).every((f) => f.endsWith('.json')),
    ).toBe(true);
    expect(sender.activeTransfers).toBe(0);
    expect(receiver.activeTransfers).toBe(0);
  });

  it('transfer - a zero-byte file is offered, accepted at 0, ended without a chunk and verified', async () => {
    const { root, out, sender, receiver, files } = await setup();
    const path = nodePath.join(root, 'empty.txt');
    await fs.writeFile(path, '');
    const wire = new Wire(sender, receiver);
    const result = await sender.sendFile(path).done;
    expect(result).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)), bytesSent: 0 });
    expect(wire.of(FrameType.FILE_CHUNK)).toHaveLength(0);
    expect(await fs.readFile(nodePath.join(out, 'empty.txt'))).toHaveLength(0);
    expect(files).toHaveLength(1);
  });

  it('transfer - two transfers at once both complete, their chunks interleaved', async () => {
    const { root, out, sender, receiver } = await setup();
    const a = await randomFile(nodePath.join(root, 'a.bin'), 6 * MiB);
    const b = await randomFile(nodePath.join(root, 'b.bin'), 6 * MiB);
    const wire = new Wire(sender, receiver);
    // Hold chunks until both are accepted, so hashing times do not decide who starts first.
    wire.hold(true);
    const ta = sender.sendFile(nodePath.join(root, 'a.bin'));
    const tb = sender.sendFile(nodePath.join(root, 'b.bin'));
    expect(sender.activeTransfers).toBe(2);
    await until(() => wire.of(FrameType.FILE_ACCEPT).length === 2, 'both accepts');
    wire.hold(false);
    await Promise.all([ta.done, tb.done]);
    expect((await fs.readFile(nodePath.join(out, 'a.bin'))).equals(a)).toBe(true);
    expect((await fs.readFile(nodePath.join(out, 'b.bin'))).equals(b)).toBe(true);
    // Round-robin: neither file waits for the other to finish.
    const ids = wire.of(FrameType.FILE_CHUNK).map((c) => c.id);
    expect(ids.indexOf(tb.id)).toBeLessThan(ids.lastIndexOf(ta.id));
    expect(ids.indexOf(ta.id)).toBeLessThan(ids.lastIndexOf(tb.id));
    // While both are sending they share the link: in the stretch where both have chunks left,
    // each sends about half (one chunk per transfer per turn; file I/O timing adds some noise).
    const from = Math.max(ids.indexOf(ta.id), ids.indexOf(tb.id));
    const to = Math.min(ids.lastIndexOf(ta.id), ids.lastIndexOf(tb.id));
    const both = ids.slice(from, to + 1);
    const countA = both.filter((id) => id === ta.id).length;
    const countB = both.length - countA;
    expect(both.length).toBeGreaterThan(30);
    expect(Math.min(countA, countB) / Math.max(countA, countB)).toBeGreaterThan(0.75);
  });

  it('transfer - transfers queue while offline and run once a link is attached, within the concurrency', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const sender = engine({ owner: 'server', concurrency: 1 });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const paths = await Promise.all(
      ['1.bin', '2.bin', '3.bin'].map(async (n) => {
        const p = nodePath.join(root, n);
        await randomFile(p, 300 * 1024);
        return p;
      }),
    );
    const transfers = paths.map((p) => sender.sendFile(p));
    expect(sender.activeTransfers).toBe(3);
    new Wire(sender, receiver);
    const results = await Promise.all(transfers.map((t) => t.done));
    expect(results.map((r) => r.name)).toEqual(['1.bin', '2.bin', '3.bin']);
    expect(await listFiles(out)).toEqual(expect.arrayContaining(['1.bin', '2.bin', '3.bin']));
  });

  it('transfer - an existing file is never overwritten: a numbered suffix is added', async () => {
    const { root, out, sender, receiver, files } = await setup();
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(nodePath.join(out, 'a.txt'), 'old');
    await fs.writeFile(nodePath.join(out, 'a (1).txt'), 'older');
    const path = nodePath.join(root, 'a.txt');
    await fs.writeFile(path, 'new contents');
    new Wire(sender, receiver);
    await sender.sendFile(path).done;
    expect(files[0]?.path).toBe(nodePath.join(out, 'a (2).txt'));
    expect(await fs.readFile(nodePath.join(out, 'a.txt'), 'utf8')).toBe('old');
    expect(await fs.readFile(nodePath.join(out, 'a (1).txt'), 'utf8')).toBe('older');
    expect(await fs.readFile(nodePath.join(out, 'a (2).txt'), 'utf8')).toBe('new contents');
  });

  it('transfer - the name option is what the receiver stores', async () => {
    const { root, out, sender, receiver } = await setup();
    const path = nodePath.join(root, 'local-name.bin');
    await fs.writeFile(path, 'x');
    new Wire(sender, receiver);
    const result = await sender.sendFile(path, { name: 'remote name.bin' }).done;
    expect(result.name).toBe('remote name.bin');
    expect(await fs.readFile(nodePath.join(out, 'remote name.bin'), 'utf8')).toBe('x');
  });

  it('transfer - chunks are sized to the peer frame limit', async () => {
    const { root, out, sender, receiver } = await setup();
    const path = nodePath.join(root, 'f.bin');
    const data = await randomFile(path, 1 * MiB);
    const wire = new Wire(sender, receiver, { maxFrame: 64 * 1024 });
    await sender.sendFile(path).done;
    const chunks = wire.of(FrameType.FILE_CHUNK);
    expect(Math.max(...chunks.map((c) => c.dataLength ?? 0))).toBe(64 * 1024 - 30);
    expect((await fs.readFile(nodePath.join(out, 'f.bin'))).equals(data)).toBe(true);
  });

  it('transfer - no chunk leaves while the link is not writable; pump() resumes', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 2 * MiB);
    const sender = engine({ owner: 'server' });
    const { link, frames } = captureLink();
    let writable = false;
    sender.attach({ ...link, writable: () => writable });
    const transfer = sender.sendFile(path);
    await until(() => frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    // The accept is processed (progress fires, then the engine pumps): still no chunk.
    const accepted = new Promise((resolve) => transfer.once('progress', resolve));
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: transfer.id, offset: 0 } });
    await accepted;
    await new Promise((resolve) => setImmediate(resolve));
    expect(frames.filter((f) => f.type === FrameType.FILE_CHUNK)).toHaveLength(0);
    writable = true;
    sender.pump();
    await until(
      () => frames.filter((f) => f.type === FrameType.FILE_CHUNK).length === 8,
      '8 chunks',
    );
    // The whole 2 MiB fits the 8 MiB window: FILE_END follows the last chunk.
    await until(() => frames.some((f) => f.type === FrameType.FILE_END), 'FILE_END');
  });
});
