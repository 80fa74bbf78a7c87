import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, FrameType, TetherError } from '@tether/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BlobTransferEngine, type BlobTransferEngineOptions } from '../src/blob.js';
import { blobTransferId, type ReceivedFile } from '../src/index.js';
import { nodeSha256 } from '../src/node-sha256.js';
import {
  captureLink,
  engine,
  failedCode,
  MiB,
  nthAnswer,
  offerFrame,
  randomFile,
  sha256,
  tempDir,
  until,
  Wire,
} from './helpers.js';

// The engine of runtimes without a file system (browser pages), in Node with Node's SHA-256:
// Blobs up to a disk receiver, and downloads into Blobs or streams, verified and resumable.

function blobEngine(options: Partial<BlobTransferEngineOptions> = {}): BlobTransferEngine {
  const e = new BlobTransferEngine({ owner: 'server:7000', sha256: nodeSha256, ...options });
  onTestFinished(() => e.close(new TetherError(ErrorCode.CLOSED, 'test over')));
  return e;
}

/** A WritableStream that keeps what it is given. */
function collector(): {
  stream: WritableStream<Uint8Array>;
  chunks: Uint8Array[];
  closed: () => boolean;
  aborted: () => unknown;
} {
  const chunks: Uint8Array[] = [];
  let closed = false;
  let aborted: unknown;
  const stream = new WritableStream<Uint8Array>({
    write: async (chunk) => {
      chunks.push(chunk);
      // A slow sink: writes settle later, so the receiver's committed offset lags its expected one.
      await new Promise((resolve) => setTimeout(resolve, 1));
    },
    close: () => {
      closed = true;
    },
    abort: (reason) => {
      aborted = reason ?? 'aborted';
    },
  });
  return { stream, chunks, closed: () => closed, aborted: () => aborted };
}

describe('blob engine', () => {
  it('blob engine - a Blob uploads to a disk receiver, resumes after a drop, and is verified', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const sender = blobEngine();
    const receiver = engine({ owner: 'client-a', receive: { dir: out } });
    const files: ReceivedFile[] = [];
    receiver.on('file', (f) => files.push(f));
    const data = randomBytes(6 * MiB);
    const file = new File([data], 'photo.jpg', { lastModified: 1_700_000_000_000 });
    const wire = new Wire(sender, receiver, { highWater: 512 * 1024 });
    const transfer = sender.sendFile(file);
    expect(transfer.name).toBe('photo.jpg');
    expect(transfer.path).toBe('');
    expect(transfer.size).toBe(6 * MiB);
    await until(() =>
      wire.of(FrameType.FILE_STATUS).some((r) => (r.body as { offset: number }).offset > 0),
    );
    wire.drop();
    wire.reconnect();
    const result = await transfer.done;
    expect(result.sha256).toBe(sha256(data));
    expect(result.bytesSent).toBeLessThan(2 * data.length);
    // The second offer resumed where the receiver stood.
    const accepts = wire
      .of(FrameType.FILE_ACCEPT)
      .map((r) => (r.body as { offset: number }).offset);
    expect(accepts[0]).toBe(0);
    expect(accepts[1]).toBeGreaterThan(0);
    await until(() => files.length === 1);
    expect((await fs.readFile(files[0]?.path ?? '')).equals(data)).toBe(true);
  });

  it('blob engine - a download lands in a Blob, resumed in memory after a drop', async () => {
    const root = await tempDir();
    const sender = engine({ owner: 'client-a' });
    const receiver = blobEngine({ receive: { decide: () => true } });
    const files: ReceivedFile[] = [];
    receiver.on('file', (f) => files.push(f));
    const path = nodePath.join(root, 'report.pdf');
    const data = await randomFile(path, 5 * MiB);
    const wire = new Wire(sender, receiver, { highWater: 512 * 1024 });
    const transfer = sender.sendFile(path);
    await until(() =>
      wire.of(FrameType.FILE_STATUS).some((r) => (r.body as { offset: number }).offset > MiB),
    );
    expect(receiver.activeTransfers).toBe(1);
    wire.drop();
    wire.reconnect();
    const result = await transfer.done;
    expect(result.sha256).toBe(sha256(data));
    const accepts = wire
      .of(FrameType.FILE_ACCEPT)
      .map((r) => (r.body as { offset: number }).offset);
    expect(accepts).toHaveLength(2);
    expect(accepts[1]).toBeGreaterThan(MiB);
    await until(() => files.length === 1);
    const received = files[0] as ReceivedFile;
    expect(received).toMatchObject({
      name: 'report.pdf',
      size: 5 * MiB,
      sha256: sha256(data),
      path: '',
    });
    expect(Buffer.from(await (received.blob as Blob).arrayBuffer()).equals(data)).toBe(true);
    expect(receiver.activeTransfers).toBe(0);
  });

  it('blob engine - a download streams into a WritableStream, closed once verified', async () => {
    const root = await tempDir();
    const sender = engine({ owner: 'client-a' });
    const sink = collector();
    const receiver = blobEngine({ receive: { decide: () => sink.stream } });
    const files: ReceivedFile[] = [];
    receiver.on('file', (f) => files.push(f));
    const path = nodePath.join(root, 'video.bin');
    const data = await randomFile(path, 3 * MiB);
    new Wire(sender, receiver);
    const result = await sender.sendFile(path).done;
    expect(result.sha256).toBe(sha256(data));
    await until(() => files.length === 1);
    expect(files[0]?.blob).toBeUndefined();
    expect(sink.closed()).toBe(true);
    expect(Buffer.concat(sink.chunks).equals(data)).toBe(true);
  });

  it('blob engine - a SHA-256 mismatch fails the download (retryable) and aborts its stream', async () => {
    const sink = collector();
    const receiver = blobEngine({ receive: { decide: () => sink.stream } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    const data = randomBytes(1000);
    const id = 'a'.repeat(32);
    receiver.handle(offerFrame(id, 'x.bin', data.length));
    expect((await nthAnswer(frames, id)).type).toBe(FrameType.FILE_ACCEPT);
    const { crc32 } = await import('@tether/protocol');
    receiver.handle({ type: FrameType.FILE_CHUNK, id, offset: 0, crc32: crc32(data), data });
    receiver.handle({ type: FrameType.FILE_END, body: { id, sha256: 'b'.repeat(64) } });
    const answer = await nthAnswer(frames, id, 2);
    expect(failedCode(answer)).toBe(ErrorCode.FILE_CHECKSUM_MISMATCH);
    expect(answer.type === FrameType.FILE_FAILED && answer.body.retryable).toBe(true);
    await until(() => sink.aborted() !== undefined);
    expect(receiver.activeTransfers).toBe(0);
  });

  it('blob engine - refusals: the application, the size limit, no receiving side, paths', async () => {
    const { link, frames } = captureLink();
    const refusing = blobEngine({ receive: { decide: () => false, maxFileSize: 100 } });
    refusing.attach(link);
    refusing.handle(offerFrame('1'.repeat(32), 'ok.bin', 10));
    refusing.handle(offerFrame('2'.repeat(32), 'big.bin', 101));
    refusing.handle(offerFrame('3'.repeat(32), '../evil', 10));
    expect(failedCode(await nthAnswer(frames, '1'.repeat(32)))).toBe(ErrorCode.TRANSFER_REFUSED);
    expect(failedCode(await nthAnswer(frames, '2'.repeat(32)))).toBe(ErrorCode.FILE_TOO_LARGE);
    expect(failedCode(await nthAnswer(frames, '3'.repeat(32)))).toBe(ErrorCode.FILE_NAME_INVALID);
    const deaf = blobEngine();
    deaf.attach(link);
    deaf.handle(offerFrame('4'.repeat(32), 'x.bin', 10));
    expect(failedCode(await nthAnswer(frames, '4'.repeat(32)))).toBe(ErrorCode.TRANSFER_REFUSED);
    await expect(deaf.sendFile('/etc/hostname').done).rejects.toMatchObject({
      code: ErrorCode.INVALID_OPTION,
    });
    // An answer to an offer never made is a protocol error, as in the disk engine.
    expect(
      deaf.handle({ type: FrameType.FILE_ACCEPT, body: { id: '5'.repeat(32), offset: 0 } })?.code,
    ).toBe(ErrorCode.UNEXPECTED_FRAME);
  });

  it('blob engine - a File keeps its transfer id across page loads; a plain Blob has its own', () => {
    const a = new File(['hello'], 'a.txt', { lastModified: 42, type: 'text/plain' });
    const again = new File(['hello'], 'a.txt', { lastModified: 42, type: 'text/plain' });
    const touched = new File(['hello'], 'a.txt', { lastModified: 43, type: 'text/plain' });
    expect(blobTransferId(a, 'a.txt', 'srv')).toMatch(/^[0-9a-f]{32}$/);
    expect(blobTransferId(again, 'a.txt', 'srv')).toBe(blobTransferId(a, 'a.txt', 'srv'));
    expect(blobTransferId(touched, 'a.txt', 'srv')).not.toBe(blobTransferId(a, 'a.txt', 'srv'));
    expect(blobTransferId(a, 'a.txt', 'other')).not.toBe(blobTransferId(a, 'a.txt', 'srv'));
    const blob = new Blob(['hello']);
    expect(blobTransferId(blob, 'b', 'srv')).toBe(blobTransferId(blob, 'b', 'srv'));
    expect(blobTransferId(new Blob(['hello']), 'b', 'srv')).not.toBe(
      blobTransferId(blob, 'b', 'srv'),
    );
  });
});
