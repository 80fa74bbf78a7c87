import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TetherClient } from '@tether/client';
import { ErrorCode } from '@tether/protocol';
import { type Peer, TetherServer, type TransferUpdate } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';

// The server's observation API: `draining`, the `rtt` and `transfer` events.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-observe-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(options: ConstructorParameters<typeof TetherServer>[0] = {}) {
  const server = new TetherServer({ pingIntervalMs: 100, evictAfterMs: 600, ...options });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  const transfers: { peer: Peer; update: TransferUpdate }[] = [];
  server.on('transfer', (peer, update) => transfers.push({ peer, update }));
  return { server, port, transfers };
}

function newClient(port: number, options: Partial<ConstructorParameters<typeof TetherClient>[0]>) {
  const client = new TetherClient({
    port,
    pingIntervalMs: 50,
    deadAfterMs: 400,
    backoff: { minDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

describe('server observation - transfer events', () => {
  it('an upload reports started, committed progress in order and completed, with its name and size', async () => {
    const uploads = await tempDir();
    const source = await tempDir();
    const size = 9 * 1024 * 1024 + 123;
    const path = join(source, 'big.bin');
    await writeFile(path, randomBytes(size));
    const { port, transfers } = await startServer({ uploadDir: uploads });
    const client = newClient(port, { clientId: 'uploader' });
    await client.connect();
    const result = await client.sendFile(path, { name: 'report\u202e.bin' }).done;
    await expect.poll(() => transfers.at(-1)?.update.state).toBe('completed');
    const updates = transfers.map((t) => t.update);
    expect(updates.every((u) => u.direction === 'in' && u.id === result.id)).toBe(true);
    expect(updates.every((u) => u.name === 'report\u202e.bin' && u.size === size)).toBe(true);
    expect(updates[0]?.state).toBe('started');
    expect(updates[0]?.bytes).toBe(0);
    const progress = updates.filter((u) => u.state === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    const offsets = progress.map((u) => u.bytes);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(updates.at(-1)).toMatchObject({ state: 'completed', bytes: size });
    expect(transfers[0]?.peer.clientId).toBe('uploader');
  });

  it('a download (peer.sendFile) reports direction out up to completed', async () => {
    const downloads = await tempDir();
    const source = await tempDir();
    const path = join(source, 'down.bin');
    await writeFile(path, randomBytes(3 * 1024 * 1024));
    const { server, port, transfers } = await startServer();
    const connected = new Promise<Peer>((resolve) => server.once('connection', resolve));
    const client = newClient(port, { clientId: 'downloader', downloadDir: downloads });
    await client.connect();
    const peer = await connected;
    await peer.sendFile(path).done;
    await expect.poll(() => transfers.at(-1)?.update.state).toBe('completed');
    const updates = transfers.map((t) => t.update);
    expect(updates.every((u) => u.direction === 'out' && u.name === 'down.bin')).toBe(true);
    expect(updates[0]?.state).toBe('started');
    expect(updates.at(-1)?.bytes).toBe(3 * 1024 * 1024);
  });

  it('a refused upload reports failed with the receiver code, and no start', async () => {
    const uploads = await tempDir();
    const source = await tempDir();
    const path = join(source, 'no.bin');
    await writeFile(path, randomBytes(1000));
    const { port, transfers } = await startServer({ uploadDir: uploads, acceptFile: () => false });
    const client = newClient(port, {});
    await client.connect();
    await expect(client.sendFile(path).done).rejects.toMatchObject({
      code: ErrorCode.TRANSFER_REFUSED,
    });
    await expect.poll(() => transfers.length).toBe(1);
    expect(transfers[0]?.update).toMatchObject({
      state: 'failed',
      code: ErrorCode.TRANSFER_REFUSED,
      bytes: 0,
      name: 'no.bin',
    });
  });

  it('a cancelled download reports cancelled', async () => {
    const downloads = await tempDir();
    const source = await tempDir();
    const path = join(source, 'c.bin');
    await writeFile(path, randomBytes(64 * 1024 * 1024));
    const { server, port, transfers } = await startServer();
    const connected = new Promise<Peer>((resolve) => server.once('connection', resolve));
    const client = newClient(port, { downloadDir: downloads });
    await client.connect();
    const transfer = (await connected).sendFile(path);
    await expect.poll(() => transfers.length, { timeout: 10_000 }).toBeGreaterThan(0);
    transfer.cancel();
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_CANCELLED });
    await expect.poll(() => transfers.at(-1)?.update.state).toBe('cancelled');
  });

  it('a listener that throws costs neither the connection nor the transfer', async () => {
    const uploads = await tempDir();
    const source = await tempDir();
    const path = join(source, 'x.bin');
    await writeFile(path, randomBytes(100_000));
    const { server, port } = await startServer({ uploadDir: uploads });
    const errors: string[] = [];
    server.on('error', (error) => errors.push(error.code));
    server.on('transfer', () => {
      throw new Error('listener bug');
    });
    const client = newClient(port, {});
    await client.connect();
    await client.sendFile(path).done;
    expect(errors).toContain(ErrorCode.HANDLER_FAILED);
    expect(client.state).toBe('connected');
  });
});

describe('server observation - rtt and draining', () => {
  it('emits an RTT sample per PONG, with the peer', async () => {
    const { server, port } = await startServer();
    const samples: { clientId: string; last: number; samples: number }[] = [];
    server.on('rtt', (peer, rtt) =>
      samples.push({ clientId: peer.clientId, last: rtt.last, samples: rtt.samples }),
    );
    const client = newClient(port, { clientId: 'pinger' });
    await client.connect();
    // The server pings a client for its RTT once per 6 intervals (100 ms here).
    await expect.poll(() => samples.length, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    expect(samples[0]?.clientId).toBe('pinger');
    expect(samples[0]?.last).toBeGreaterThanOrEqual(0);
    expect(samples[1]?.samples).toBe((samples[0]?.samples ?? 0) + 1);
  });

  it('draining is false while serving and true from the start of close()', async () => {
    const { server, port } = await startServer();
    const client = newClient(port, {});
    await client.connect();
    expect(server.draining).toBe(false);
    const closing = server.close({ drainTimeoutMs: 200 });
    expect(server.draining).toBe(true);
    await closing;
    expect(server.draining).toBe(true);
  });
});
