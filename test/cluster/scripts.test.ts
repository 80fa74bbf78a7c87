import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from '../../packages/server/src/redis/record.js';
import { SCRIPTS, type ScriptName } from '../../packages/server/src/redis/scripts.js';
import { requireBinaries, startRedis } from './helpers.js';

const enabled = requireBinaries('redis-server');
type Call = (...args: (string | number | Buffer)[]) => Promise<unknown>;
type Scripted = Redis & Record<ScriptName | `${ScriptName}Buffer`, Call>;
let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let client: Scripted;
let n = 0;

beforeAll(async () => {
  if (!enabled) return;
  redis = await startRedis();
  client = new Redis(redis.url) as Scripted;
  for (const [name, lua] of Object.entries(SCRIPTS))
    client.defineCommand(name, { numberOfKeys: 0, lua });
});
afterAll(async () => {
  client?.disconnect();
  await redis?.cleanup();
});

const P = 'scripts:';
const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

async function create(sid: string, owner: string, epochOf: string[] = [owner]) {
  for (const inst of epochOf) await client.set(`${P}epoch:${inst}`, '1');
  return client.tetherCreate(
    P,
    sid,
    `c-${sid}`,
    'idn',
    hash(`${sid}.t`),
    owner,
    0,
    Date.now(),
    60000,
    100,
    10,
  );
}

describe.skipIf(!enabled)('Redis store scripts', () => {
  it('scripts - a take fences the previous owner: its position writes fail, the new owner writes', async () => {
    const sid = `s${++n}`;
    expect(await create(sid, 'A', ['A', 'B'])).toEqual(['ok']);
    expect(await client.tetherCommit(P, sid, 'A', '1', 0, 3, 2)).toBe(1);
    const taken = (await client.tetherTake(
      P,
      sid,
      hash(`${sid}.t`),
      `c-${sid}`,
      'idn',
      'B',
    )) as unknown[];
    expect(taken.slice(0, 5)).toEqual([2, '2', '3', '0', '0']);
    // A does not know yet: its writes are refused, nothing moves.
    expect(await client.tetherCommit(P, sid, 'A', '1', 0, 9, 9)).toBe(0);
    expect(await client.hmget(`${P}s:${sid}`, 'mark', 'in', 'own')).toEqual(['3', '2', 'B']);
    expect(await client.tetherCommit(P, sid, 'B', '2', 0, 5, 5)).toBe(1);
    expect(await client.hmget(`${P}s:${sid}`, 'mark', 'in')).toEqual(['5', '5']);
    // Idle, release and end by the fenced owner are refused too.
    expect(await client.tetherIdle(P, sid, 'A', '1', Date.now() + 1000, 2000)).toBe(0);
    expect(await client.tetherRelease(P, sid, 'A', '1', Date.now() + 1000, 2000)).toBe(0);
    expect(await client.tetherEnd(P, sid, 'A', '1', 'CLOSED')).toBe(0);
    expect(await client.exists(`${P}s:${sid}`)).toBe(1);
  });

  it('scripts - a take asks a live owner to hand the session over first; forced, it fences', async () => {
    const sid = `s${++n}`;
    await create(sid, 'A');
    const listener = new Redis(redis?.url as string);
    const heard: string[] = [];
    listener.on('message', (_channel: string, message: string) => heard.push(message));
    await listener.subscribe(`${P}ch:A`);
    try {
      const asked = await client.tetherTake(P, sid, hash(`${sid}.t`), `c-${sid}`, 'idn', 'B', '0');
      expect(asked).toEqual(['handoff']);
      expect(await client.hget(`${P}s:${sid}`, 'own')).toBe('A');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(heard).toEqual([`h ${sid} B`]);
      const taken = (await client.tetherTake(
        P,
        sid,
        hash(`${sid}.t`),
        `c-${sid}`,
        'idn',
        'B',
        '1',
      )) as unknown[];
      expect(taken[0]).toBe(2);
      expect(await client.hget(`${P}s:${sid}`, 'own')).toBe('B');
    } finally {
      listener.disconnect();
    }
  });

  it('scripts - a take needs the token, client id and identity of the session', async () => {
    const sid = `s${++n}`;
    await create(sid, 'A');
    expect(
      await client.tetherTake(P, sid, hash(`${sid}.wrong`), `c-${sid}`, 'idn', 'B'),
    ).toBeNull();
    expect(await client.tetherTake(P, sid, hash(`${sid}.t`), 'other', 'idn', 'B')).toBeNull();
    expect(await client.tetherTake(P, sid, hash(`${sid}.t`), `c-${sid}`, 'other', 'B')).toBeNull();
    expect(await client.hget(`${P}s:${sid}`, 'own')).toBe('A');
  });

  it('scripts - an append is applied once per id, from a current connection only; seqs follow the acknowledged base', async () => {
    const sid = `s${++n}`;
    await create(sid, 'A');
    const rec = (text: string): Buffer =>
      encodeRecord({ flags: 0, requestId: 0, origin: 'A', payload: Buffer.from(text) });
    expect(await client.tetherAppend(P, sid, 'A', '1', '7', rec('a'), rec('b'))).toEqual([
      'ok',
      '1',
    ]);
    // The same append again (its answer was lost): the first answer, nothing added.
    expect(await client.tetherAppend(P, sid, 'A', '1', '7', rec('a'), rec('b'))).toEqual([
      'ok',
      '1',
    ]);
    expect(await client.tetherAppend(P, sid, 'A', '1', '8', rec('c'))).toEqual(['ok', '3']);
    // Sent on a connection that has since been replaced: refused.
    await client.set(`${P}epoch:A`, '2');
    expect(await client.tetherAppend(P, sid, 'A', '1', '9', rec('d'))).toEqual(['stale']);
    expect(await client.llen(`${P}o:${sid}`)).toBe(3);
    // The client acknowledged 2: the list keeps 3 only, and a fetch numbers it from there.
    expect(await client.tetherCommit(P, sid, 'A', '1', 2, 0, 0)).toBe(1);
    const fetched = (await client.tetherFetchBuffer(P, sid, 1, 10)) as [number, Buffer[]];
    expect(fetched[0]).toBe(2);
    expect(fetched[1].map((r) => decodeRecord(r).payload.toString())).toEqual(['c']);
    expect(await client.tetherAppend(P, 'nope', 'A', '2', '10', rec('x'))).toEqual(['gone']);
  });

  it('scripts - the identity cap ends the longest-disconnected session of the identity, or refuses', async () => {
    const prefix = `cap${++n}:`;
    await client.set(`${prefix}epoch:A`, '1');
    const make = (sid: string) =>
      client.tetherCreate(
        prefix,
        sid,
        `c-${sid}`,
        'who',
        hash(sid),
        'A',
        0,
        Date.now(),
        60000,
        100,
        2,
      );
    expect(await make('x1')).toEqual(['ok']);
    expect(await make('x2')).toEqual(['ok']);
    expect(await make('x3')).toEqual(['full', 'identity']);
    await client.tetherIdle(prefix, 'x1', 'A', '1', Date.now() + 60000, 120000);
    expect(await make('x3')).toEqual(['ok', 'x1']);
    expect(await client.exists(`${prefix}s:x1`)).toBe(0);
  });

  it('scripts - the sweep hands the sessions of a dead instance back and ends idle ones past their TTL', async () => {
    const prefix = `sw${++n}:`;
    await client.set(`${prefix}epoch:D`, '1');
    const now = Date.now();
    await client.tetherCreate(prefix, 'd1', 'c-d1', 'idn', hash('d1'), 'D', 0, now, 5000, 100, 10);
    // D renewed its lease long ago: it is dead.
    await client.zadd(`${prefix}instances`, now - 1, 'D');
    // Without `orphans` (this instance just connected) nothing is handed back yet.
    await client.tetherSweep(prefix, 'L', now, 5000, 1000, 100, '0');
    expect(await client.hget(`${prefix}s:d1`, 'own')).toBe('D');
    await client.tetherSweep(prefix, 'L', now, 5000, 1000, 100, '1');
    expect(await client.hget(`${prefix}s:d1`, 'own')).toBe('');
    expect(Number(await client.zscore(`${prefix}idle`, 'd1'))).toBe(now + 5000);
    expect(await client.zscore(`${prefix}instances`, 'D')).toBeNull();
    // Its TTL passes: the next sweep ends it.
    expect(await client.tetherSweep(prefix, 'L', now + 5001, 5000, 1000, 100, '1')).toBe(1);
    expect(await client.exists(`${prefix}s:d1`)).toBe(0);
    expect(await client.zcard(`${prefix}sessions`)).toBe(0);
  });
});
