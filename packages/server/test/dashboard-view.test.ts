import { describe, expect, it } from 'vitest';
import type { Monitor } from '../src/dashboard/monitor.js';
import { orderPeers, pageOrder, parsePeerQuery } from '../src/dashboard/peer-view.js';
import { Surveyor } from '../src/dashboard/survey.js';
import type { Peer, PeerStats } from '../src/peer.js';
import type { TetherServer } from '../src/server.js';

interface FakePeer {
  id: string;
  clientId: string;
  remoteAddress: string;
  connected: boolean;
  closed: boolean;
  stats(): PeerStats;
}

/** A session as the dashboard reads it: getters for the fixed fields, stats() for the rest. */
function peer(id: string, clientId: string, fields: Partial<PeerStats> = {}): FakePeer {
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
  return {
    id,
    clientId,
    remoteAddress: stats.remoteAddress,
    connected: stats.connected,
    closed: false,
    stats: () => ({ ...stats }),
  };
}

const asPeers = (fakes: FakePeer[]) => fakes as unknown as Peer[];
const ids = (entries: { id: string }[]) => entries.map((p) => p.id);
const query = (params: Record<string, string> = {}) => parsePeerQuery(new URLSearchParams(params));

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

describe('dashboard view - order and page', () => {
  const all = asPeers([
    peer('d', 'zed', { bytesIn: 5, rtt: { srtt: 3, rttvar: 1, last: 3, min: 3, samples: 1 } }),
    peer('a', 'Alpha', { bytesIn: 5 }),
    peer('c', 'beta', { bytesIn: 9, rtt: { srtt: 1, rttvar: 1, last: 1, min: 1, samples: 1 } }),
    peer('b', 'gamma', { bytesIn: 1, connected: false }),
  ]);
  const order = (params: Record<string, string> = {}) => orderPeers(all, query(params), 0);

  it('sorts by a column either way, ties by session id', () => {
    expect(ids(order({ sort: 'bytesIn', dir: 'desc' }).peers)).toEqual(['c', 'a', 'd', 'b']);
    expect(ids(order({ sort: 'bytesIn', dir: 'asc' }).peers)).toEqual(['b', 'a', 'd', 'c']);
    // Peers without an RTT sample count as the slowest.
    expect(ids(order({ sort: 'rtt' }).peers)).toEqual(['c', 'd', 'a', 'b']);
    expect(ids(order({ sort: 'client' }).peers)).toEqual(['a', 'c', 'b', 'd']);
    expect(ids(order({ sort: 'state', dir: 'desc' }).peers)).toEqual(['a', 'c', 'd', 'b']);
  });

  it('filters on client id (any case), address or session id, and pages', () => {
    const filtered = order({ filter: 'A' });
    // 'Alpha', 'beta', 'gamma' hold an a; 'zed' does not.
    expect(ids(filtered.peers)).toEqual(['a', 'c', 'b']);
    expect(pageOrder(filtered, query({ filter: 'A' }))).toMatchObject({
      total: 4,
      matched: 3,
      pages: 1,
    });
    expect(ids(order({ filter: '1001' }).peers)).toEqual(['a', 'c', 'b', 'd']);
    expect(ids(order({ filter: 'd' }).peers)).toEqual(['d']);
    const second = pageOrder(order(), query({ size: '3', page: '1' }));
    expect(second).toMatchObject({ page: 1, pages: 2, matched: 4 });
    expect(ids(second.peers)).toEqual(['d']);
    // A page past the end shows the last one.
    expect(pageOrder(order(), query({ size: '3', page: '7' })).page).toBe(1);
  });

  it('a fixed column is read from the peer, a changing one from its stats', () => {
    let statsCalls = 0;
    const counted = asPeers(
      ['x', 'y'].map((id) => {
        const p = peer(id, id);
        return {
          ...p,
          stats: () => {
            statsCalls++;
            return p.stats();
          },
        };
      }),
    );
    orderPeers(counted, query({ sort: 'client', filter: 'x' }), 0);
    orderPeers(counted, query({ sort: 'state' }), 0);
    expect(statsCalls).toBe(0);
    orderPeers(counted, query({ sort: 'lastSeen' }), 0);
    expect(statsCalls).toBe(2);
  });
});

/** A server with these sessions, a monitor whose membership the test moves, a fake clock. */
function surveyed(peers: FakePeer[], share?: number) {
  const clock = { now: 0 };
  const server = {
    get peers() {
      return asPeers(peers.filter((p) => !p.closed));
    },
  } as unknown as TetherServer;
  const monitor = { membership: 0, retiredBytes: () => ({ bytesIn: 7, bytesOut: 0 }) };
  const surveyor = new Surveyor(server, monitor as unknown as Monitor, {
    now: () => clock.now,
    // Here a pass's CPU time is its time on the fake clock (slowPeers moves it).
    cpuTime: () => clock.now,
    ...(share === undefined ? {} : { share }),
  });
  return { clock, monitor, surveyor };
}

/** Sessions whose stats() each cost 0.1 ms of the fake clock. */
function slowPeers(count: number, clock: { now: number }): FakePeer[] {
  return Array.from({ length: count }, (_, i) => {
    const p = peer(String(i).padStart(3, '0'), `c${i}`, { bytesIn: 2, queueDepth: 1 });
    return {
      ...p,
      stats() {
        clock.now += 0.1;
        return p.stats();
      },
    };
  });
}

describe('dashboard view - surveyor', () => {
  it('sums: a pass is reused while its cost is over the CPU share, and taken again after', () => {
    const peers: FakePeer[] = [];
    const { clock, surveyor } = surveyed(peers, 0.001);
    peers.push(...slowPeers(100, clock));
    const first = surveyor.sums(1000);
    expect(first).toMatchObject({ bytesIn: 7 + 200, outboxMessages: 100 });
    // 10 ms at a 0.1 % share: one pass per 10 s, however often it is asked for.
    clock.now += 5000;
    expect(surveyor.sums(1000)).toBe(first);
    clock.now += 5001;
    const second = surveyor.sums(1000);
    expect(second).not.toBe(first);
  });

  it('sums: a cheap pass is taken again once it is older than asked', () => {
    const { clock, surveyor } = surveyed([peer('a', 'a')]);
    const first = surveyor.sums(1000);
    clock.now += 999;
    expect(surveyor.sums(1000)).toBe(first);
    clock.now += 1;
    expect(surveyor.sums(1000)).not.toBe(first);
  });

  it('an order by a fixed column is kept, however old, until the sessions change', () => {
    const peers = [peer('b', 'beta'), peer('a', 'alpha')];
    const { clock, monitor, surveyor } = surveyed(peers);
    const first = surveyor.order(query({ sort: 'client' }), 1000);
    expect(ids(first.peers)).toEqual(['a', 'b']);
    clock.now += 3_600_000;
    expect(surveyor.order(query({ sort: 'client' }), 1000)).toBe(first);
    // Another page or size of the same view is cut from the same order.
    expect(surveyor.order(query({ sort: 'client', page: '3', size: '1' }), 1000)).toBe(first);
    peers.push(peer('c', 'aardvark'));
    monitor.membership++;
    expect(ids(surveyor.order(query({ sort: 'client' }), 1000).peers)).toEqual(['c', 'a', 'b']);
  });

  it('an order by a changing column is taken again when older than asked, within the share', () => {
    const peers: FakePeer[] = [];
    const { clock, surveyor } = surveyed(peers, 0.001);
    peers.push(...slowPeers(100, clock));
    const view = query({ sort: 'bytesIn', dir: 'desc' });
    const first = surveyor.order(view, 1000);
    expect(first.peers).toHaveLength(100);
    // It cost 10 ms: not again for 10 s, even though older than asked.
    clock.now += 9000;
    expect(surveyor.order(view, 1000)).toBe(first);
    clock.now += 1001;
    expect(surveyor.order(view, 1000)).not.toBe(first);
  });

  it('sums and orders asked for at every update both refresh: neither waits for the other', () => {
    const peers: FakePeer[] = [];
    const { clock, surveyor } = surveyed(peers, 0.001);
    peers.push(...slowPeers(100, clock));
    const view = query({ sort: 'lastSeen' });
    let sums = surveyor.sums(1000);
    let order = surveyor.order(view, 1000);
    const refreshed = { sums: 0, order: 0 };
    // An update per second for 100 s, sums first as the live page asks.
    for (let second = 0; second < 100; second++) {
      clock.now += 1000;
      const nextSums = surveyor.sums(1000);
      const nextOrder = surveyor.order(view, 1000);
      if (nextSums !== sums) refreshed.sums++;
      if (nextOrder !== order) refreshed.order++;
      sums = nextSums;
      order = nextOrder;
    }
    // Each pass costs 10 ms at a 0.1 % share: about one per 10 s each.
    expect(refreshed.sums).toBeGreaterThanOrEqual(8);
    expect(refreshed.sums).toBeLessThanOrEqual(10);
    expect(refreshed.order).toBeGreaterThanOrEqual(8);
    expect(refreshed.order).toBeLessThanOrEqual(10);
  });

  it('views open at once take turns: the one that waited longest is ordered first', () => {
    const peers: FakePeer[] = [];
    const { clock, surveyor } = surveyed(peers, 0.001);
    peers.push(...slowPeers(100, clock));
    const views = [query({ sort: 'bytesIn' }), query({ sort: 'queue' }), query({ sort: 'rtt' })];
    let orders = views.map((v) => surveyor.order(v, 1000));
    const refreshed = [0, 0, 0];
    for (let second = 0; second < 120; second++) {
      clock.now += 1000;
      // Always asked in the same order, as the streams are.
      const next = views.map((v) => surveyor.order(v, 1000));
      next.forEach((order, i) => {
        if (order !== orders[i]) refreshed[i] = (refreshed[i] as number) + 1;
      });
      orders = next;
    }
    // 10 ms a pass at 0.1 %: about 12 passes in 120 s, shared out.
    for (const count of refreshed) expect(count).toBeGreaterThanOrEqual(3);
    expect(refreshed.reduce((a, b) => a + b)).toBeLessThanOrEqual(12);
  });

  it('a pass is charged its CPU time, not the time its thread waited for a core', () => {
    const wall = { now: 0 };
    const cpu = { now: 0 };
    const peers = Array.from({ length: 3 }, (_, i) => {
      const p = peer(String(i), `c${i}`, { bytesIn: 1 });
      return {
        ...p,
        stats() {
          // Descheduled for 5 ms in the middle of a pass that used 0.01 ms of CPU.
          wall.now += 5;
          cpu.now += 0.01;
          return p.stats();
        },
      };
    });
    const server = { peers: asPeers(peers) } as unknown as TetherServer;
    const monitor = { membership: 0, retiredBytes: () => ({ bytesIn: 0, bytesOut: 0 }) };
    const surveyor = new Surveyor(server, monitor as unknown as Monitor, {
      now: () => wall.now,
      cpuTime: () => cpu.now,
      share: 0.001,
    });
    const first = surveyor.sums(0);
    // 0.03 ms of CPU at 0.1 %: the next pass may start 30 ms later (by wall time, 15 s).
    wall.now += 100;
    expect(surveyor.sums(0)).not.toBe(first);
  });

  it('a view not seen before is ordered at once, even over the share', () => {
    const peers: FakePeer[] = [];
    const { clock, surveyor } = surveyed(peers, 0.001);
    peers.push(...slowPeers(100, clock));
    surveyor.order(query({ sort: 'bytesIn' }), 1000);
    const before = clock.now;
    const other = surveyor.order(query({ sort: 'bytesIn', filter: 'C5' }), 1000);
    expect(clock.now).toBeGreaterThan(before);
    // All hold 2 bytes: by session id.
    expect(ids(other.peers)).toEqual(['005', ...Array.from({ length: 10 }, (_, i) => `05${i}`)]);
  });
});
