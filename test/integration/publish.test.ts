import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type PublishFailure, type SessionInfo, TetherClient } from '@tether/client';
import { type Peer, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const MESSAGES = 10_000;

describe('publish - over a real server', () => {
  it('publish - 10,000 published messages arrive exactly once, in order, across a cut in the middle; flush() resolves once all are acknowledged', async () => {
    const server = new TetherServer({ host: '127.0.0.1' });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    const { port } = await server.listen();
    const client = new TetherClient({
      host: '127.0.0.1',
      port,
      backoff: { minDelayMs: 5, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const failures: PublishFailure[] = [];
    client.on('publishFailed', (failure) => failures.push(failure));
    const sessions: SessionInfo[] = [];
    client.on('session', (info) => sessions.push(info));

    const atServer: number[] = [];
    let cut = false;
    server.on('message', (message, peer: Peer) => {
      atServer.push(message.data.readUInt32BE(0));
      // Cut the link from the server's side in the middle of a read burst.
      if (!cut && atServer.length === MESSAGES / 2) {
        cut = true;
        peer.disconnect();
      }
    });
    await client.connect();

    const ids: number[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const payload = Buffer.alloc(64);
      payload.writeUInt32BE(i, 0);
      ids.push(client.publish(payload));
    }
    expect(ids).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    await client.flush({ timeoutMs: 30_000 });

    expect(cut).toBe(true);
    expect(client.stats().reconnects).toBe(1);
    // The session was resumed and messages in flight at the cut were sent again.
    expect(sessions.map((s) => s.resumed)).toEqual([false, true]);
    expect(sessions[1]?.resent).toBeGreaterThan(0);
    const duplicates = atServer.length - new Set(atServer).size;
    expect({ received: atServer.length, duplicates }).toEqual({
      received: MESSAGES,
      duplicates: 0,
    });
    expect(atServer).toEqual(Array.from({ length: MESSAGES }, (_, i) => i));
    expect(client.stats().outbox.depth).toBe(0);
    expect(failures).toEqual([]);
  });
});

describe('publish - with the store', () => {
  function tempDir(): string {
    const dir = fs.mkdtempSync(join(tmpdir(), 'tether-publish-store-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  it('publish - published messages are journaled like sends: after a close without flush (reported CLOSED) the next client on the store delivers them once, in order', async () => {
    const dir = tempDir();
    const first = new TetherClient({ port: 9, store: { dir } });
    cleanups.push(() => first.close());
    const failures: PublishFailure[] = [];
    first.on('publishFailed', (failure) => failures.push(failure));
    for (let i = 0; i < 5; i++) first.publish(`m${i}`);
    await first.journaled();
    await first.close();
    expect(failures.map((f) => [f.id, f.code])).toEqual(
      [1, 2, 3, 4, 5].map((id) => [id, ErrorCode.CLOSED]),
    );

    const server = new TetherServer({ host: '127.0.0.1' });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    const { port } = await server.listen();
    const received: string[] = [];
    server.on('message', (m) => received.push(`${m.id} ${m.text()}`));
    const second = new TetherClient({ host: '127.0.0.1', port, store: { dir } });
    cleanups.push(() => second.close());
    expect(second.restored.map((m) => m.payload.toString())).toEqual(
      [0, 1, 2, 3, 4].map((i) => `m${i}`),
    );
    second.publish('m5');
    await second.connect();
    await second.flush({ timeoutMs: 10_000 });
    expect(received).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${first.clientId}:${i + 1} m${i}`));
  });

  it('publish - a store that cannot write closes the client: every published message is reported STORE_FAILED and flush rejects with it', async () => {
    if (!fs.existsSync('/dev/full')) return;
    const server = new TetherServer({ host: '127.0.0.1' });
    cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
    const { port } = await server.listen();
    const dir = tempDir();
    await new TetherClient({ port: 9, store: { dir } }).close();
    // Every write to /dev/full fails with ENOSPC; reads give zeros (no session).
    fs.rmSync(join(dir, 'session'));
    fs.symlinkSync('/dev/full', join(dir, 'session'));
    const client = new TetherClient({ host: '127.0.0.1', port, store: { dir } });
    cleanups.push(() => client.close());
    client.on('error', () => {});
    const failures: PublishFailure[] = [];
    client.on('publishFailed', (failure) => failures.push(failure));
    for (let i = 0; i < 3; i++) client.publish(`m${i}`);
    const flushed = client.flush();
    flushed.catch(() => {});
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.STORE_FAILED });
    await expect(flushed).rejects.toMatchObject({ code: ErrorCode.STORE_FAILED });
    await expect.poll(() => failures.length).toBe(3);
    expect(failures.map((f) => [f.id, f.code])).toEqual(
      [1, 2, 3].map((id) => [id, ErrorCode.STORE_FAILED]),
    );
  });
});
