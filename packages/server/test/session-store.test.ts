import { VirtualScheduler } from '@tether/core';
import { ErrorCode } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import type { PeerSession } from '../src/peer-session.js';
import { MemorySessionStore } from '../src/session-store.js';

// The store reads a session's id, client id, identity, connection and TTL timer only.
function session(id: string, identity: string, connected: boolean): PeerSession {
  return {
    id,
    clientId: id,
    identity,
    connection: connected ? {} : undefined,
    ttlTimer: undefined,
  } as unknown as PeerSession;
}

function store(maxSessionsPerIdentity: number) {
  const ended: string[] = [];
  const memory = new MemorySessionStore({
    scheduler: new VirtualScheduler(),
    sessionTtlMs: 60_000,
    maxSessions: 100,
    maxSessionsPerIdentity,
    ended: (s) => ended.push(s.id),
  });
  return { memory, ended };
}

describe('MemorySessionStore - sessions per identity', () => {
  it('one session of an identity counts toward its cap, and removing it frees the identity', () => {
    const { memory } = store(1);
    const a = session('a', 'alice', true);
    memory.add(a);
    expect(memory.makeRoom('alice')?.code).toBe(ErrorCode.TOO_MANY_SESSIONS);
    expect(memory.makeRoom('bob')).toBeUndefined();
    memory.remove(a);
    expect(memory.makeRoom('alice')).toBeUndefined();
    expect(memory.size).toBe(0);
  });

  it('with several sessions the oldest disconnected one goes first, also after the count fell back to one', () => {
    const { memory, ended } = store(2);
    const [a, b, c] = [
      session('a', 'alice', false),
      session('b', 'alice', true),
      session('c', 'alice', false),
    ];
    memory.add(a);
    memory.add(b);
    // Two of two: the disconnected one (a) makes room.
    expect(memory.makeRoom('alice')).toBeUndefined();
    expect(ended).toEqual(['a']);
    // Back to one (b), then two again (b, c): c is the disconnected one.
    memory.add(c);
    expect(memory.makeRoom('alice')).toBeUndefined();
    expect(ended).toEqual(['a', 'c']);
    // b alone, connected: a second session fits, a third does not.
    expect(memory.makeRoom('alice')).toBeUndefined();
    memory.add(session('d', 'alice', true));
    expect(memory.makeRoom('alice')?.code).toBe(ErrorCode.TOO_MANY_SESSIONS);
    expect([...memory.values()].map((s) => s.id)).toEqual(['b', 'd']);
  });
});
