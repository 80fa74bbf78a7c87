import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosProxy } from '@tether/chaos';
import { TetherClient } from '@tether/client';
import { ErrorCode } from '@tether/protocol';
import { type Peer, type ReceivedFile, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const MiB = 1024 * 1024;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-files-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function makeFile(
  dir: string,
  name: string,
  size: number,
): Promise<{ path: string; sha256: string }> {
  const path = join(dir, name);
  const data = randomBytes(size);
  await writeFile(path, data);
  return { path, sha256: createHash('sha256').update(data).digest('hex') };
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function startServer(
  uploadDir: string,
  options: ConstructorParameters<typeof TetherServer>[0] = {},
) {
  const server = new TetherServer({
    uploadDir,
    pingIntervalMs: 100,
    evictAfterMs: 600,
    ...options,
  });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  const files: ReceivedFile[] = [];
  server.on('file', (file) => files.push(file));
  return { server, port, files };
}

function newClient(
  port: number,
  options: Partial<ConstructorParameters<typeof TetherClient>[0]> = {},
) {
  const client = new TetherClient({
    port,
    pingIntervalMs: 100,
    deadAfterMs: 400,
    backoff: { minDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

describe('files - uploads over dropped links', () => {
  it('a 50 MiB file survives 5 cuts (reset, black hole, limit) and arrives byte-identical', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const { port, files } = await startServer(uploads);
    const proxy = new ChaosProxy({ target: { port } });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const client = newClient(proxy.port);
    await client.connect();
    const { path, sha256 } = await makeFile(source, 'big.bin', 50 * MiB);

    const transfer = client.sendFile(path);
    const committed: number[] = [];
    transfer.on('progress', (p) => committed.push(p.bytesCommitted));
    const reconnects: string[] = [];
    client.on('state', (c) => {
      if (c.state === 'reconnecting') reconnects.push(c.error?.code ?? c.reason);
    });
    // Cut five times as the committed offset passes 15%, 30%, ... of the file.
    const cuts = ['reset', 'blackhole', 'limit_data', 'reset', 'blackhole'] as const;
    let done = false;
    const cutter = (async () => {
      for (const [i, kind] of cuts.entries()) {
        const mark = ((i + 1) * 0.15 * 50 * MiB) | 0;
        while (!done && (committed.at(-1) ?? 0) < mark) await new Promise((r) => setTimeout(r, 5));
        if (done) return;
        const before = reconnects.length;
        if (kind === 'reset') proxy.resetAll();
        else if (kind === 'blackhole')
          proxy.addToxic({ type: 'blackhole', direction: 'both', name: `hole-${i}` });
        else
          proxy.addToxic({
            type: 'limit_data',
            direction: 'upstream',
            bytes: 64 * 1024,
            name: `limit-${i}`,
          });
        while (!done && reconnects.length === before) await new Promise((r) => setTimeout(r, 5));
        proxy.clearToxics();
      }
    })();
    const result = await transfer.done;
    done = true;
    await cutter;

    expect(reconnects.length).toBeGreaterThanOrEqual(5);
    expect(result.sha256).toBe(sha256);
    expect(result.size).toBe(50 * MiB);
    // Resumed from the receiver's offset each time, not from zero.
    expect(result.bytesSent).toBeLessThan(1.5 * 50 * MiB);
    await expect.poll(() => files.length).toBe(1);
    expect(files[0]?.sha256).toBe(sha256);
    expect(await sha256Of(files[0]?.path as string)).toBe(sha256);
  }, 120_000);

  it('a restarted sending process resumes where the server stopped, not from zero', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const { port, files } = await startServer(uploads);
    const size = 20 * MiB;
    const { path, sha256 } = await makeFile(source, 'resume.bin', size);

    const first = newClient(port, { clientId: 'restartable' });
    await first.connect();
    const partial = first.sendFile(path);
    partial.done.catch(() => {});
    let committed = 0;
    partial.on('progress', (p) => {
      committed = p.bytesCommitted;
    });
    await expect.poll(() => committed, { timeout: 20_000 }).toBeGreaterThan(size / 3);
    await first.close(); // the "process" ends mid-transfer

    const second = newClient(port, { clientId: 'restartable' });
    await second.connect();
    const result = await second.sendFile(path).done;
    expect(result.sha256).toBe(sha256);
    expect(result.resumedFrom).toBeGreaterThan(0);
    expect(result.bytesSent).toBeLessThanOrEqual(size - result.resumedFrom + 1 * MiB);
    expect(result.bytesSent).toBeLessThan(size);
    await expect.poll(() => files.length).toBe(1);
    expect(await sha256Of(files[0]?.path as string)).toBe(sha256);
  }, 60_000);
});

describe('files - refusals and control', () => {
  it('a bad name and a too-large file are refused with codes before any byte arrives', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const { port } = await startServer(uploads, { maxFileSize: MiB });
    const client = newClient(port);
    await client.connect();
    const small = await makeFile(source, 'ok.bin', 1024);
    const large = await makeFile(source, 'large.bin', 2 * MiB);
    await expect(client.sendFile(small.path, { name: '../escape.bin' }).done).rejects.toMatchObject(
      {
        code: ErrorCode.FILE_NAME_INVALID,
      },
    );
    const tooLarge = client.sendFile(large.path);
    await expect(tooLarge.done).rejects.toMatchObject({ code: ErrorCode.FILE_TOO_LARGE });
    await expect(stat(join(uploads, 'large.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('cancel rejects the transfer with FILE_CANCELLED and leaves no file', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const { port, files } = await startServer(uploads);
    const client = newClient(port);
    await client.connect();
    const { path } = await makeFile(source, 'cancel.bin', 30 * MiB);
    const transfer = client.sendFile(path);
    let sent = 0;
    transfer.on('progress', (p) => {
      sent = p.bytesSent;
    });
    await expect.poll(() => sent).toBeGreaterThan(0);
    transfer.cancel();
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CANCELLED });
    await new Promise((r) => setTimeout(r, 100));
    expect(files).toEqual([]);
    await expect(stat(join(uploads, 'cancel.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('two transfers and a stream of messages at once: messages are not stuck behind files', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const { server, port, files } = await startServer(uploads);
    const client = newClient(port);
    await client.connect();
    const a = await makeFile(source, 'a.bin', 20 * MiB);
    const b = await makeFile(source, 'b.bin', 20 * MiB);
    const received: number[] = [];
    server.on('message', (m) => received.push(m.json<number>()));
    const ta = client.sendFile(a.path);
    const tb = client.sendFile(b.path);
    // While the files flow, each message must arrive quickly: measure the worst round trip.
    let worstMs = 0;
    let n = 0;
    let filesDone = false;
    void Promise.all([ta.done, tb.done]).finally(() => {
      filesDone = true;
    });
    while (!filesDone && n < 2000) {
      const started = performance.now();
      await client.sendJson(n++);
      worstMs = Math.max(worstMs, performance.now() - started);
    }
    const [ra, rb] = await Promise.all([ta.done, tb.done]);
    expect(ra.sha256).toBe(a.sha256);
    expect(rb.sha256).toBe(b.sha256);
    expect(received).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(n).toBeGreaterThan(10);
    // 256 KiB of chunks may sit ahead of a message in the socket; a whole file window (8 MiB)
    // never does. On loopback that is well under a quarter second.
    expect(worstMs).toBeLessThan(250);
    await expect.poll(() => files.length).toBe(2);
  }, 60_000);

  it('downloads: the server sends a file to the client, verified and stored in downloadDir', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const downloads = await tempDir();
    const { server, port } = await startServer(uploads);
    const client = newClient(port, { downloadDir: downloads });
    const got = new Promise<ReceivedFile>((resolve) => client.on('file', resolve));
    await client.connect();
    await expect.poll(() => server.peers.length).toBe(1);
    const { path, sha256 } = await makeFile(source, 'report.pdf', 5 * MiB);
    const result = await (server.peers[0] as Peer).sendFile(path).done;
    expect(result.sha256).toBe(sha256);
    const file = await got;
    expect(file.name).toBe('report.pdf');
    expect(file.path.startsWith(downloads)).toBe(true);
    expect(await sha256Of(file.path)).toBe(sha256);
  });

  it('a client without downloadDir refuses files with TRANSFER_REFUSED', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const { server, port } = await startServer(uploads);
    const client = newClient(port);
    await client.connect();
    await expect.poll(() => server.peers.length).toBe(1);
    const { path } = await makeFile(source, 'x.bin', 1024);
    await expect((server.peers[0] as Peer).sendFile(path).done).rejects.toMatchObject({
      code: ErrorCode.TRANSFER_REFUSED,
    });
  });
});

describe('files - downloads across reconnects', () => {
  it('a download cut mid-way completes on the sender side after the client reconnects', async () => {
    const source = await tempDir();
    const uploads = await tempDir();
    const downloads = await tempDir();
    const { server, port } = await startServer(uploads);
    const proxy = new ChaosProxy({ target: { port } });
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const client = newClient(proxy.port, { downloadDir: downloads });
    const stored: ReceivedFile[] = [];
    client.on('file', (file) => stored.push(file));
    await client.connect();
    await expect.poll(() => server.peers.length).toBe(1);
    // The server's offer arrives right behind WELCOME after the reconnect: the client must be
    // ready for it, or the transfer never settles.
    for (let i = 0; i < 3; i++) {
      const { path, sha256 } = await makeFile(source, `d${i}.bin`, 200_000);
      const transfer = (server.peers[0] as Peer).sendFile(path);
      setTimeout(() => proxy.resetAll(), 10 + 5 * i);
      const result = await transfer.done;
      expect(result.sha256).toBe(sha256);
    }
    await expect.poll(() => stored.length).toBe(3);
  }, 30_000);
});
