import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualScheduler } from '@tether/core';
import { afterEach, describe, expect, it } from 'vitest';
import { replayJournal } from '../src/store/journal-replay.js';
import { type JournalHost, JournalWriter } from '../src/store/journal-writer.js';
import { type RecordArena, RecordType, readRecord } from '../src/store/record-codec.js';
import { SessionCursor } from '../src/store/session-cursor.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Fixture {
  dir: string;
  path: string;
  scheduler: VirtualScheduler;
  writer: JournalWriter;
  cursor: SessionCursor;
  failures: Error[];
  host: { live: number; snapshots: number };
}

function open(
  options: { sync?: boolean; compactMinBytes?: number; readOnly?: boolean } = {},
): Fixture {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tether-writer-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'journal');
  fs.writeFileSync(path, '');
  const fd = fs.openSync(path, options.readOnly ? 'r' : 'a');
  const { cursor } = SessionCursor.open(join(dir, 'session'));
  const scheduler = new VirtualScheduler();
  const failures: Error[] = [];
  const state = { live: 100, snapshots: 0 };
  const host: JournalHost = {
    // A snapshot: a header and one ACKED record of how many snapshots were taken.
    snapshot(arena: RecordArena) {
      state.snapshots++;
      arena.header();
      arena.client('c');
      arena.acked(state.snapshots);
    },
    liveBytes: () => state.live,
    failed: (error) => failures.push(error),
  };
  const writer = new JournalWriter(
    fd,
    0,
    cursor,
    {
      path,
      dir,
      sync: options.sync ?? true,
      scheduler,
      compactMinBytes: options.compactMinBytes ?? 1 << 30,
    },
    host,
  );
  cleanups.push(async () => {
    await writer.close();
    cursor.close();
  });
  return { dir, path, scheduler, writer, cursor, failures, host: state };
}

// Lets the deferred flush start and the file system calls finish.
async function drive(f: Fixture, promise: Promise<unknown> | undefined): Promise<void> {
  let done = promise === undefined;
  const settled = (): void => {
    done = true;
  };
  promise?.then(settled, settled);
  for (let i = 0; i < 1000 && !done; i++) {
    f.scheduler.runDeferred();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await promise;
}

// Drives the fake scheduler and lets the file system work until `predicate` holds (or 5 s of
// real file system time pass).
async function until(f: Fixture, predicate: () => boolean): Promise<void> {
  const started = Date.now();
  while (!predicate() && Date.now() - started < 5000) {
    f.scheduler.runDeferred();
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(predicate()).toBe(true);
}

function types(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const record = readRecord(bytes, at);
    if (typeof record !== 'object') throw new Error(`bad record at ${at}`);
    out.push(record.type);
    at = record.end;
  }
  return out;
}

describe('store writer', () => {
  it('store writer - records of one turn go out in one write and one fsync; commit resolves once they are on disk', async () => {
    const f = open();
    expect(f.writer.commit()).toBeUndefined();
    for (let i = 1; i <= 100; i++) f.writer.arena.acked(i);
    f.writer.touch();
    const committed = f.writer.commit();
    expect(committed).toBeInstanceOf(Promise);
    // Nothing is written until the deferred flush runs.
    expect(fs.statSync(f.path).size).toBe(0);
    await drive(f, committed);
    expect(fs.statSync(f.path).size).toBe(100 * 17);
    expect(f.writer.stats).toMatchObject({ batches: 1, syncs: 1, fileBytes: 1700 });
    expect(f.writer.commit()).toBeUndefined();
  });

  it('store writer - records added during a write wait for it, then all go out together (group commit)', async () => {
    const f = open();
    f.writer.arena.acked(1);
    f.writer.touch();
    const first = f.writer.commit();
    f.scheduler.runDeferred();
    // The first write is under way: these 50 form the next batch, one write for all of them.
    for (let i = 2; i <= 51; i++) {
      f.writer.arena.acked(i);
      f.writer.touch();
    }
    const second = f.writer.commit();
    expect(second).not.toBe(first);
    await drive(f, second);
    await first;
    expect(f.writer.stats).toMatchObject({ batches: 2, syncs: 2 });
    expect(types(fs.readFileSync(f.path))).toHaveLength(51);
  });

  it('store writer - sync never writes without fsync', async () => {
    const f = open({ sync: false });
    f.writer.arena.acked(1);
    f.writer.touch();
    await drive(f, f.writer.commit());
    expect(f.writer.stats).toMatchObject({ batches: 1, syncs: 0 });
    expect(fs.statSync(f.path).size).toBe(17);
  });

  it('store writer - a session file write is fsynced with the next batch (policy batch only)', async () => {
    const f = open();
    f.cursor.handled(3);
    expect(f.cursor.dirty).toBe(true);
    await drive(f, f.writer.commit());
    expect(f.cursor.dirty).toBe(false);
    expect(f.writer.stats).toMatchObject({ batches: 0, syncs: 1 });
    const never = open({ sync: false });
    never.cursor.handled(3);
    expect(never.writer.commit()).toBeUndefined();
  });

  it('store writer - past the threshold the journal is rewritten from a snapshot (temp file renamed over it)', async () => {
    const f = open({ compactMinBytes: 1000 });
    for (let i = 1; i <= 100; i++) f.writer.arena.acked(i);
    f.writer.touch();
    await drive(f, f.writer.commit());
    expect(f.writer.stats.fileBytes).toBe(1700);
    // The journal is over 1000 bytes and over 4 times the live state (100): the next flush
    // compacts, and the record waiting now is part of the snapshot's state.
    f.writer.arena.acked(101);
    f.writer.touch();
    await drive(f, f.writer.commit());
    expect(f.host.snapshots).toBe(1);
    await until(f, () => f.writer.stats.compactions === 1);
    expect(types(fs.readFileSync(f.path))).toEqual([
      RecordType.HEADER,
      RecordType.CLIENT,
      RecordType.ACKED,
    ]);
    expect(fs.existsSync(`${f.path}.tmp`)).toBe(false);
    // Appends go to the new file, after the snapshot.
    f.writer.arena.acked(102);
    f.writer.touch();
    await drive(f, f.writer.commit());
    const bytes = fs.readFileSync(f.path);
    expect(types(bytes)).toEqual([
      RecordType.HEADER,
      RecordType.CLIENT,
      RecordType.ACKED,
      RecordType.ACKED,
    ]);
    expect(f.writer.stats.fileBytes).toBe(bytes.length);
  });

  it('store writer - no compaction while the live state is a quarter of the journal or more', async () => {
    const f = open({ compactMinBytes: 1000 });
    f.host.live = 500;
    for (let i = 1; i <= 100; i++) f.writer.arena.acked(i);
    f.writer.touch();
    await drive(f, f.writer.commit());
    f.writer.arena.acked(101);
    f.writer.touch();
    await drive(f, f.writer.commit());
    expect(f.writer.stats.compactions).toBe(0);
  });

  it('store writer - a failed write rejects the commit, reports once, and every later commit rejects', async () => {
    const f = open({ readOnly: true });
    f.writer.arena.acked(1);
    f.writer.touch();
    const committed = f.writer.commit();
    await expect(drive(f, committed)).rejects.toMatchObject({ code: 'EBADF' });
    expect(f.failures).toHaveLength(1);
    f.writer.arena.acked(2);
    await expect(f.writer.commit()).rejects.toMatchObject({ code: 'EBADF' });
    expect(f.failures).toHaveLength(1);
  });

  it('store writer - close writes what is waiting', async () => {
    const f = open();
    f.writer.arena.acked(7);
    f.writer.touch();
    await f.writer.close();
    const replayed = readRecord(fs.readFileSync(f.path), 0);
    expect(typeof replayed === 'object' && replayed.type).toBe(RecordType.ACKED);
    expect(replayJournal(fs.readFileSync(f.path)).fault?.detail).toBe(
      'the first record is no header',
    );
  });

  it('store writer - once closing, commit() settles with the close instead of waiting for ever', async () => {
    const f = open({ compactMinBytes: 1000 });
    for (let i = 1; i <= 100; i++) f.writer.arena.acked(i);
    f.writer.touch();
    await drive(f, f.writer.commit());
    // 1700 bytes, a live state of 100: a flush now would compact, but a close never does.
    f.writer.arena.acked(101);
    f.writer.touch();
    const closed = f.writer.close();
    expect(f.writer.commit()).toBe(closed);
    await closed;
    expect(f.host.snapshots).toBe(0);
    expect(types(fs.readFileSync(f.path))).toHaveLength(101);
  });

  it('store writer - compactions between batches lose nothing and repeat nothing, over many of them', async () => {
    const f = open({ compactMinBytes: 600 });
    // The state is every ACKED record so far: a snapshot holds all of them.
    let appended = 0;
    const host = f.writer as unknown as { snapshot?: unknown };
    expect(host.snapshot).toBeUndefined();
    const writer = new JournalWriter(
      fs.openSync(f.path, 'w'),
      0,
      f.cursor,
      { path: f.path, dir: f.dir, sync: true, scheduler: f.scheduler, compactMinBytes: 600 },
      {
        snapshot(arena) {
          arena.header();
          arena.client('c');
          for (let i = 1; i <= appended; i++) arena.acked(i);
        },
        liveBytes: () => 100,
        failed: (error) => f.failures.push(error),
      },
    );
    const pending: Promise<void>[] = [];
    for (let round = 0; round < 150; round++) {
      for (let i = 0; i < 5; i++) writer.arena.acked(++appended);
      writer.touch();
      const commit = writer.commit();
      if (commit !== undefined) pending.push(commit);
      f.scheduler.runDeferred();
      // Every other round waits for its batch, so that records also arrive during writes.
      if (round % 2 === 0 && commit !== undefined) await drive(f, commit);
      else await new Promise((resolve) => setImmediate(resolve));
    }
    await until(f, () => {
      f.scheduler.runDeferred();
      return writer.commit() === undefined;
    });
    await Promise.all(pending);
    const compactions = writer.stats.compactions;
    await writer.close();
    expect(f.failures).toEqual([]);
    expect(compactions).toBeGreaterThan(3);
    const bytes = fs.readFileSync(f.path);
    const kinds = types(bytes);
    if (kinds[0] === RecordType.HEADER) {
      expect(kinds.slice(0, 2)).toEqual([RecordType.HEADER, RecordType.CLIENT]);
    }
    const acked: number[] = [];
    for (let at = 0; at < bytes.length; ) {
      const record = readRecord(bytes, at);
      if (typeof record !== 'object') throw new Error('bad record');
      if (record.type === RecordType.ACKED) acked.push(record.body.readDoubleBE(0));
      at = record.end;
    }
    expect(acked).toEqual(Array.from({ length: appended }, (_, i) => i + 1));
  });
});
