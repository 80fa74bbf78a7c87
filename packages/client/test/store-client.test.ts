import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualScheduler } from '@tether/core';
import { type Peer, type ServerOptions, TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientOptions,
  DamageReason,
  ErrorCode,
  type Message,
  type SendReceipt,
  type StoreDamage,
  TetherClient,
  type TetherError,
} from '../src/index.js';
import { ClientStore, SEQ_JUMP } from '../src/store/client-store.js';
import { RecordArena } from '../src/store/record-codec.js';

// A client with a store on disk, against a real server on 127.0.0.1 port 0. A crash is
// simulated by copying the store's files at one instant (what a killed process leaves: the
// kernel has every write that returned) and closing the client in the same synchronous step, so
// that it says nothing more to the server; the next client opens the copy. The kill -9 test with
// child processes is test/integration/journal-kill.test.ts.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tether-store-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(
  options: ServerOptions = {},
): Promise<{ server: TetherServer; port: number }> {
  const server = new TetherServer({ host: '127.0.0.1', ...options });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  return { server, port };
}

function createClient(options: ClientOptions): TetherClient {
  const client = new TetherClient({
    host: '127.0.0.1',
    backoff: { minDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
  cleanups.push(() => client.close());
  return client;
}

/** Copies the store's files as a crash would leave them (not the lock: its owner is gone). */
function crashCopy(from: string): string {
  const to = tempDir();
  for (const name of ['journal', 'session']) {
    if (fs.existsSync(join(from, name))) fs.copyFileSync(join(from, name), join(to, name));
  }
  return to;
}

function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(check, 2);
    };
    check();
  });
}

const text = (i: number): string => `m${String(i).padStart(5, '0')}`;

describe('client store', () => {
  it('client store - messages sent while offline survive a close: the next client sends them once, in order, under the same client id', async () => {
    const dir = tempDir();
    const first = createClient({ port: 9, store: { dir } });
    const failed: string[] = [];
    for (let i = 0; i < 5; i++) first.send(text(i)).catch((e: TetherError) => failed.push(e.code));
    await first.journaled();
    await first.close();
    expect(failed).toEqual(Array(5).fill(ErrorCode.CLOSED));

    const { server, port } = await startServer();
    const received: string[] = [];
    server.on('message', (m) => received.push(`${m.id} ${m.text()}`));
    const second = createClient({ port, store: { dir } });
    expect(second.clientId).toBe(first.clientId);
    expect(second.restored.map((m) => m.payload.toString())).toEqual([0, 1, 2, 3, 4].map(text));
    expect(second.restored.every((m) => m.seq === 0)).toBe(true);
    await second.connect();
    const receipts = await Promise.all(second.restored.map((m) => m.receipt));
    expect(receipts.map((r) => r.id)).toEqual([1, 2, 3, 4, 5].map((s) => `${first.clientId}:${s}`));
    expect(received).toEqual([0, 1, 2, 3, 4].map((i) => `${first.clientId}:${i + 1} ${text(i)}`));
    await second.close();
    // All acknowledged: a third client restores nothing.
    const third = createClient({ port, store: { dir } });
    expect(third.restored).toHaveLength(0);
  });

  it('client store - a crash mid-stream: the next client resumes the session and every message arrives exactly once, in order', async () => {
    const { server, port } = await startServer();
    const dir = tempDir();
    const first = createClient({ port, store: { dir } });
    const total = 3000;
    for (let i = 0; i < total; i++) first.send(text(i)).catch(() => {});
    await first.journaled();
    const received: string[] = [];
    let copy: string | undefined;
    server.on('message', (m) => {
      received.push(m.text());
      // The crash: in the middle of the stream, the store as it is now, and the client gone.
      if (received.length === 1200) {
        copy = crashCopy(dir);
        void first.close();
      }
    });
    await first.connect();
    await waitFor(() => copy !== undefined);
    const second = createClient({ port, store: { dir: copy as string } });
    const sessions: boolean[] = [];
    second.on('session', (s) => sessions.push(s.resumed));
    expect(second.restored.length).toBeGreaterThan(total - 1200 - 1);
    await second.connect();
    await Promise.all(second.restored.map((m) => m.receipt));
    expect(sessions).toEqual([true]);
    expect(received).toEqual(Array.from({ length: total }, (_, i) => text(i)));
  });

  it('client store - the server lost the session: restored messages are sent again with the ids they had', async () => {
    const first = await startServer();
    const dir = tempDir();
    const client = createClient({ port: first.port, store: { dir } });
    for (let i = 0; i < 500; i++) client.send(text(i)).catch(() => {});
    await client.journaled();
    const seen = new Map<string, string>();
    let copy: string | undefined;
    first.server.on('message', (m) => {
      seen.set(m.text(), m.id);
      if (seen.size === 200) {
        copy = crashCopy(dir);
        void client.close();
      }
    });
    await client.connect();
    await waitFor(() => copy !== undefined);
    const second = await startServer();
    const again = new Map<string, string>();
    second.server.on('message', (m) => again.set(m.text(), m.id));
    const restarted = createClient({ port: second.port, store: { dir: copy as string } });
    const lost: boolean[] = [];
    restarted.on('session', (s) => lost.push(s.lost));
    await restarted.connect();
    await Promise.all(restarted.restored.map((m) => m.receipt));
    expect(lost).toEqual([true]);
    // Every message arrived; the ones both servers saw carry the same id (at least once).
    for (let i = 0; i < 500; i++) expect(seen.has(text(i)) || again.has(text(i))).toBe(true);
    const both = [...again.keys()].filter((t) => seen.has(t));
    for (const t of both) expect(again.get(t)).toBe(seen.get(t));
    for (const [t, id] of again) expect(id).toBe(`${client.clientId}:${Number(t.slice(1)) + 1}`);
  });

  it('client store - a message being handled at a crash comes again marked redelivered, and no other', async () => {
    const { server, port } = await startServer();
    let peer: Peer | undefined;
    server.on('connection', (p) => {
      peer = p;
    });
    const dir = tempDir();
    const first = createClient({ port, store: { dir } });
    const handled: boolean[] = [];
    let copy: string | undefined;
    first.on('message', (m) => {
      handled.push(m.redelivered);
      if (m.seq === 50) {
        // Dies while handling message 50.
        copy = crashCopy(dir);
        void first.close();
      }
    });
    await first.connect();
    await waitFor(() => peer !== undefined);
    const sends = Array.from({ length: 100 }, (_, i) => (peer as Peer).send(text(i + 1)));
    await waitFor(() => copy !== undefined);
    expect(handled).toEqual(Array(50).fill(false));

    const second = createClient({ port, store: { dir: copy as string } });
    const again: Message[] = [];
    second.on('message', (m) => again.push(m));
    await second.connect();
    await Promise.all(sends);
    expect(again.map((m) => m.seq)).toEqual(Array.from({ length: 51 }, (_, i) => i + 50));
    expect(again.map((m) => m.redelivered)).toEqual([true, ...Array(50).fill(false)]);
    expect(again[0]?.id).toBe(`${second.stats().sessionId}:50`);
  });

  it('client store - close() right after a send, with the journal past its compaction size: nothing is lost', async () => {
    const dir = tempDir();
    const first = createClient({ port: 9, maxQueuedMessages: 20_000, store: { dir } });
    const payload = Buffer.alloc(128, 0x62);
    for (let i = 0; i < 10_000; i++) first.send(payload).catch(() => {});
    await first.journaled();
    expect(first.stats().store?.journalBytes).toBeGreaterThan(1024 * 1024);
    first.send('last').catch(() => {});
    await first.close();
    const second = createClient({ port: 9, store: { dir } });
    expect(second.restored).toHaveLength(10_001);
    expect(second.restored.at(-1)?.payload.toString()).toBe('last');
  });

  it('client store - a message transmitted before the restart keeps no TTL, even when the store starts over', async () => {
    const { server, port } = await startServer();
    // The client dies with the message on the wire; the server's application does not see it.
    const dir = tempDir();
    const first = createClient({ port, store: { dir } });
    await first.connect();
    let copy: string | undefined;
    server.on('message', () => {
      copy ??= crashCopy(dir);
      void first.close();
    });
    first.send('in flight', { ttlMs: 1000 }).catch(() => {});
    await waitFor(() => copy !== undefined);
    // A previous run found the server ahead: this open starts over and queues it again.
    const arena = new RecordArena();
    arena.diverged();
    fs.appendFileSync(join(copy as string, 'journal'), Buffer.concat(arena.take()));
    const scheduler = new VirtualScheduler();
    const second = createClient({ port: 9, scheduler, store: { dir: copy as string } });
    const [restored] = second.restored;
    expect(restored?.payload.toString()).toBe('in flight');
    let outcome = 'pending';
    restored?.receipt.catch((e: TetherError) => {
      outcome = e.code;
    });
    scheduler.advance(60_000);
    await new Promise((resolve) => setImmediate(resolve));
    // Not MESSAGE_EXPIRED: the server may have it; it is sent again (at least once).
    expect(outcome).toBe('pending');
    expect(second.stats().outbox).toMatchObject({ depth: 1, queued: 1 });
  });

  it('client store - a session file that cannot be written closes the client with STORE_FAILED', async () => {
    if (!fs.existsSync('/dev/full')) return;
    const { port } = await startServer();
    const dir = tempDir();
    await createClient({ port: 9, store: { dir } }).close();
    // Every write to /dev/full fails with ENOSPC; reads give zeros (no session).
    fs.rmSync(join(dir, 'session'));
    fs.symlinkSync('/dev/full', join(dir, 'session'));
    const client = createClient({ port, store: { dir } });
    const errors: TetherError[] = [];
    client.on('error', (e) => errors.push(e));
    const closed = new Promise((resolve) => client.once('close', resolve));
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.STORE_FAILED });
    await closed;
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.STORE_FAILED]);
    expect(client.state).toBe('closed');
  });

  it('client store - request ids are reserved in the store: a restart never reuses one', async () => {
    const dir = tempDir();
    const failed = (): void => {};
    const scheduler = new VirtualScheduler();
    const first = ClientStore.open({ dir, sync: true, clientId: undefined, scheduler }, failed);
    expect(first.firstRequestId).toBe(1);
    for (let id = 1; id <= 3; id++) first.useRequestId(id);
    const closed = first.close();
    scheduler.runDeferred();
    await closed;
    const second = ClientStore.open({ dir, sync: true, clientId: undefined, scheduler }, failed);
    cleanups.push(() => {
      const closing = second.close();
      scheduler.runDeferred();
      return closing;
    });
    // The first id reserved a block; the restart starts after it.
    expect(second.firstRequestId).toBeGreaterThan(3);
    expect(second.firstRequestId).toBe(1 + 1024 + 1);
  });

  it('client store - a second client on the same store is refused with STORE_LOCKED; once closed, the store opens', async () => {
    const dir = tempDir();
    const first = createClient({ port: 9, store: { dir } });
    let error: TetherError | undefined;
    try {
      createClient({ port: 9, store: { dir } });
    } catch (e) {
      error = e as TetherError;
    }
    expect(error?.code).toBe(ErrorCode.STORE_LOCKED);
    await first.close();
    const second = createClient({ port: 9, store: { dir } });
    expect(second.clientId).toBe(first.clientId);
  });

  it('client store - a clientId other than the store one is refused with INVALID_OPTION', async () => {
    const dir = tempDir();
    await createClient({ port: 9, clientId: 'sensor-1', store: { dir } }).close();
    expect(() => createClient({ port: 9, clientId: 'sensor-2', store: { dir } })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_OPTION }),
    );
    const same = createClient({ port: 9, clientId: 'sensor-1', store: { dir } });
    expect(same.clientId).toBe('sensor-1');
  });

  it('client store - a torn journal tail: the damage event reports it and the valid prefix is restored', async () => {
    const dir = tempDir();
    const first = createClient({ port: 9, store: { dir } });
    for (let i = 0; i < 3; i++) first.send(text(i)).catch(() => {});
    await first.journaled();
    await first.close();
    // A write cut short: the start of another record.
    const journal = join(dir, 'journal');
    const whole = fs.readFileSync(journal);
    fs.appendFileSync(journal, whole.subarray(whole.length - 30, whole.length - 10));
    const damaged: StoreDamage[] = [];
    const second = createClient({ port: 9, store: { dir } });
    second.on('damage', (d) => damaged.push(d));
    await Promise.resolve();
    expect(damaged).toEqual([
      expect.objectContaining({
        code: ErrorCode.STORE_DAMAGED,
        file: 'journal',
        reason: DamageReason.TORN_TAIL,
        offset: whole.length,
        droppedBytes: 20,
      }),
    ]);
    expect(second.restored.map((m) => m.payload.toString())).toEqual([0, 1, 2].map(text));
    expect(fs.readFileSync(join(dir, 'journal.damaged')).length).toBe(whole.length + 20);
    await second.close();
    // The store was rewritten clean: no damage the next time.
    const third = createClient({ port: 9, store: { dir } });
    const again: StoreDamage[] = [];
    third.on('damage', (d) => again.push(d));
    await Promise.resolve();
    expect(again).toEqual([]);
    expect(third.restored).toHaveLength(3);
  });

  it('client store - damage in the middle of the journal: a new session and new seqs for what it restored', async () => {
    const { server, port } = await startServer();
    const ids: string[] = [];
    server.on('message', (m) => ids.push(m.id));
    const dir = tempDir();
    const first = createClient({ port, store: { dir } });
    await first.connect();
    await first.send('one');
    await first.close();
    const offline = createClient({ port: 9, store: { dir } });
    for (let i = 0; i < 4; i++) offline.send(text(i)).catch(() => {});
    await offline.journaled();
    await offline.close();
    // Garble the second queued message's record: two valid ones follow it.
    const journal = join(dir, 'journal');
    const bytes = fs.readFileSync(journal);
    const at = bytes.indexOf(Buffer.from(text(1)));
    bytes[at] = (bytes[at] as number) ^ 0xff;
    fs.writeFileSync(journal, bytes);
    const second = createClient({ port, store: { dir } });
    const damaged: StoreDamage[] = [];
    second.on('damage', (d) => damaged.push(d));
    const sessions: { resumed: boolean; lost: boolean }[] = [];
    second.on('session', (s) => sessions.push({ resumed: s.resumed, lost: s.lost }));
    await Promise.resolve();
    expect(damaged.map((d) => d.reason)).toEqual([DamageReason.CORRUPT]);
    expect(second.restored.map((m) => m.payload.toString())).toEqual([text(0)]);
    await second.connect();
    const [receipt] = await Promise.all(second.restored.map((m) => m.receipt));
    expect(sessions).toEqual([{ resumed: false, lost: false }]);
    expect((receipt as SendReceipt).seq).toBe(1 + SEQ_JUMP + 1);
    expect(ids).toEqual([`${first.clientId}:1`, `${first.clientId}:${SEQ_JUMP + 2}`]);
  });

  it('client store - a store behind the server (it lost records) closes the client with STORE_DAMAGED; the next open starts over', async () => {
    const { server, port } = await startServer();
    const received: string[] = [];
    server.on('message', (m) => received.push(m.text()));
    const dir = tempDir();
    const first = createClient({ port, store: { dir } });
    await first.connect();
    await first.send('a');
    await first.journaled();
    const old = crashCopy(dir);
    await first.send('b');
    await first.send('c');
    await first.close();
    // The old copy knows only of 'a'; the server delivered three.
    const behind = createClient({ port, store: { dir: old } });
    const errors: TetherError[] = [];
    behind.on('error', (e) => errors.push(e));
    await expect(behind.connect()).rejects.toMatchObject({ code: ErrorCode.STORE_DAMAGED });
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.STORE_DAMAGED]);
    await behind.close();
    const next = createClient({ port, store: { dir: old } });
    const damaged: StoreDamage[] = [];
    next.on('damage', (d) => damaged.push(d));
    await Promise.resolve();
    expect(damaged.map((d) => d.reason)).toEqual([DamageReason.DIVERGED]);
    await next.connect();
    const receipt = await next.send('d');
    expect(receipt.seq).toBeGreaterThan(SEQ_JUMP);
    expect(received).toEqual(['a', 'b', 'c', 'd']);
  });

  it('client store - a TTL holds across a restart: a message that expired meanwhile is rejected with MESSAGE_EXPIRED', async () => {
    const dir = tempDir();
    const scheduler = new VirtualScheduler();
    const first = createClient({ port: 9, scheduler, store: { dir } });
    first.send('short', { ttlMs: 1000 }).catch(() => {});
    first.send('long', { ttlMs: 3_600_000 }).catch(() => {});
    const journaled = first.journaled();
    scheduler.runDeferred();
    await journaled;
    await first.close();

    const later = new VirtualScheduler();
    const second = createClient({ port: 9, scheduler: later, store: { dir } });
    const [short, long] = second.restored;
    const outcome: string[] = [];
    short?.receipt.catch((e: TetherError) => outcome.push(e.code));
    later.advance(999 - 500);
    await Promise.resolve();
    expect(outcome).toEqual([]);
    later.advance(1500);
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcome).toEqual([ErrorCode.MESSAGE_EXPIRED]);
    expect(second.stats().outbox.depth).toBe(1);
    expect(long?.payload.toString()).toBe('long');
  });

  it('client store - group commit: a burst of 1000 sends is one write and one fsync; sync never does no fsync', async () => {
    for (const sync of ['batch', 'never'] as const) {
      const dir = tempDir();
      const client = createClient({ port: 9, store: { dir, sync } });
      const before = client.stats().store;
      for (let i = 0; i < 1000; i++) client.send(text(i)).catch(() => {});
      await client.journaled();
      const after = client.stats().store;
      expect(after?.batches, sync).toBe((before?.batches ?? 0) + 1);
      expect(after?.syncs, sync).toBe((before?.syncs ?? 0) + (sync === 'batch' ? 1 : 0));
    }
  });

  it('client store - the journal stays near the size of what is unacknowledged after a long run', async () => {
    const { port } = await startServer();
    const dir = tempDir();
    const client = createClient({ port, store: { dir } });
    await client.connect();
    const payload = Buffer.alloc(128, 0x61);
    let last: Promise<SendReceipt> | undefined;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 1000; i++) last = client.send(payload);
      await last;
    }
    const stats = client.stats().store;
    expect(stats?.compactions).toBeGreaterThan(0);
    // 20,000 messages of 128 bytes went through it (over 3 MiB of records); what stays is at
    // most the compaction threshold and one batch.
    expect(stats?.journalBytes).toBeLessThan(1.5 * 1024 * 1024);
    expect(fs.statSync(join(dir, 'journal')).size).toBe(stats?.journalBytes);
    await client.close();
    expect(createClient({ port: 9, store: { dir } }).restored).toHaveLength(0);
  });
});
