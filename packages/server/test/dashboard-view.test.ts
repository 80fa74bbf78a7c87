import { describe, expect, it } from 'vitest';
import type { Monitor } from '../src/dashboard/monitor.js';
import { pageOrder, parsePeerQuery } from '../src/dashboard/peer-view.js';
import { type SurveyEntry, Surveyor } from '../src/dashboard/survey.js';
import type { Peer, PeerStats } from '../src/peer.js';
import type { TetherServer } from '../src/server.js';

function entry(id: string, clientId: string, fields: Partial<PeerStats> = {}): SurveyEntry {
  const stats: PeerStats = {
    id,
    clientId,
    remoteAddress: `127.0.0.1:${1000 + id.length}`,
    connected: true,
    rtt: undefined,
    lastSeen: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    queueDepth: 0,
    queueBytes: 0,
    transfers: 0,
    ...fields,
  };
  return { peer: { id } as Peer, stats };
}

const ids = (entries: { id: string }[]) => entries.map((p) => p.id);

describe('dashboard view - query', () => {
  it('bad values fall back, sizes are clamped, the filter is cut and lowercased', () => {
    expect(parsePeerQuery(new URLSearchParams(''))).toEqual({
      sort: 'client',
      desc: false,
      filter: '',
      page: 0,
      size: 50,
    });
    const q = parsePeerQuery(
      new URLSearchParams({
        sort: 'constructor',
        dir: 'desc',
        page: '-3',
        size: '99999',
        filter: 'AbC'.repeat(100),
      }),
    );
    expect(q.sort).toBe('client');
    expect(q.desc).toBe(true);
    expect(q.page).toBe(0);
    expect(q.size).toBe(500);
    expect(q.filter).toBe('abc'.repeat(100).slice(0, 200));
    expect(parsePeerQuery(new URLSearchParams({ page: '1.5', size: 'x' }))).toMatchObject({
      page: 0,
      size: 50,
    });
  });
});

describe('dashboard view - page order', () => {
  const all = [
    entry('d', 'zed', { bytesIn: 5, rtt: { srtt: 3, rttvar: 1, last: 3, min: 3, samples: 1 } }),
    entry('a', 'Alpha', { bytesIn: 5 }),
    entry('c', 'beta', { bytesIn: 9, rtt: { srtt: 1, rttvar: 1, last: 1, min: 1, samples: 1 } }),
    entry('b', 'gamma', { bytesIn: 1, connected: false }),
  ];

  it('sorts by a column either way, ties by session id', () => {
    const query = parsePeerQuery(new URLSearchParams({ sort: 'bytesIn', dir: 'desc' }));
    expect(ids(pageOrder(all, query).peers)).toEqual(['c', 'a', 'd', 'b']);
    const asc = parsePeerQuery(new URLSearchParams({ sort: 'bytesIn', dir: 'asc' }));
    expect(ids(pageOrder(all, asc).peers)).toEqual(['b', 'a', 'd', 'c']);
    // Peers without an RTT sample count as the slowest.
    const rtt = parsePeerQuery(new URLSearchParams({ sort: 'rtt' }));
    expect(ids(pageOrder(all, rtt).peers)).toEqual(['c', 'd', 'a', 'b']);
  });

  it('filters on client id (any case), address or session id, and pages', () => {
    const filtered = pageOrder(all, parsePeerQuery(new URLSearchParams({ filter: 'A' })));
    // 'Alpha', 'beta', 'gamma' hold an a; 'zed' does not.
    expect(ids(filtered.peers)).toEqual(['a', 'c', 'b']);
    expect(filtered).toMatchObject({ total: 4, matched: 3, pages: 1 });
    const second = pageOrder(all, parsePeerQuery(new URLSearchParams({ size: '3', page: '1' })));
    expect(second).toMatchObject({ page: 1, pages: 2 });
    expect(ids(second.peers)).toEqual(['d']);
    // A page past the end shows the last one.
    const past = pageOrder(all, parsePeerQuery(new URLSearchParams({ size: '3', page: '7' })));
    expect(past.page).toBe(1);
  });
});

describe('dashboard view - surveyor', () => {
  it('reuses a pass while its cost is over the CPU share, and takes a new one after', () => {
    let clock = 0;
    const peers = Array.from({ length: 100 }, (_, i) => ({
      stats() {
        clock += 0.1; // each stats() costs 0.1 ms: a pass costs 10 ms
        return entry(String(i), `c${i}`, { bytesIn: 2 }).stats;
      },
    }));
    const server = { peers } as unknown as TetherServer;
    const monitor = { retiredBytes: () => ({ bytesIn: 7, bytesOut: 0 }) } as unknown as Monitor;
    const surveyor = new Surveyor(server, monitor, { share: 0.001, now: () => clock });
    const first = surveyor.take(1000);
    expect(first.sums.bytesIn).toBe(7 + 200);
    expect(first.entries).toHaveLength(100);
    // 10 ms at a 0.1% share: one pass per 10 s, however often it is asked for.
    clock += 5000;
    expect(surveyor.take(1000)).toBe(first);
    clock += 5001;
    const second = surveyor.take(1000);
    expect(second).not.toBe(first);
    // Sorting charged to the pass spaces the next one further.
    surveyor.charge(10);
    clock += 15_000;
    expect(surveyor.take(1000)).toBe(second);
    clock += 5001;
    expect(surveyor.take(1000)).not.toBe(second);
  });

  it('a cheap pass is taken again once it is older than asked', () => {
    let clock = 0;
    const server = { peers: [] } as unknown as TetherServer;
    const monitor = { retiredBytes: () => ({ bytesIn: 0, bytesOut: 0 }) } as unknown as Monitor;
    const surveyor = new Surveyor(server, monitor, { now: () => clock });
    const first = surveyor.take(1000);
    clock += 999;
    expect(surveyor.take(1000)).toBe(first);
    clock += 1;
    expect(surveyor.take(1000)).not.toBe(first);
  });
});
