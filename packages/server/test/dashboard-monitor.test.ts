import { EventEmitter } from 'node:events';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Monitor } from '../src/dashboard/monitor.js';
import {
  RTT_BUCKETS_SECONDS,
  RttHistogram,
  RttHistogramMetric,
} from '../src/dashboard/rtt-histogram.js';
import type { Peer } from '../src/peer.js';
import type { TetherServer } from '../src/server.js';
import type { TransferUpdate } from '../src/transfer-watch.js';

/** A server that only emits what the test makes it emit, and a monitor of it. */
function monitored() {
  const server = new EventEmitter();
  const monitor = new Monitor(server as unknown as TetherServer, { logSize: 100 });
  const peers = new Map<string, { closed: boolean; peer: Peer }>();
  // One object per session, as the server hands it in every event.
  const peer = (id: string): Peer => {
    let known = peers.get(id);
    if (known === undefined) {
      const state = { closed: false };
      const made = {
        id,
        clientId: `client-${id}`,
        remoteAddress: '127.0.0.1:1',
        get closed() {
          return state.closed;
        },
        stats: () => ({ bytesIn: 10, bytesOut: 20 }),
      } as unknown as Peer;
      known = Object.assign(state, { peer: made });
      peers.set(id, known);
    }
    return known.peer;
  };
  const expire = (id: string) => {
    (peers.get(id) as { closed: boolean }).closed = true;
    server.emit('expire', peer(id), 'ttl');
  };
  const transfer = (id: string, update: Partial<TransferUpdate>) =>
    server.emit('transfer', peer(id), {
      id: 't1',
      direction: 'in',
      name: 'f',
      size: 100,
      bytes: 0,
      state: 'progress',
      ...update,
    });
  return { server, monitor, peer, expire, transfer };
}

describe('dashboard monitor - running counters', () => {
  it('counts connected sessions from connects, resumes, takeovers, disconnects and expiries', () => {
    const { server, monitor, peer, expire } = monitored();
    const lost = { code: 'CONNECTION_LOST', reason: 'reset' };
    server.emit('connection', peer('a'), { resumed: false });
    server.emit('connection', peer('b'), { resumed: false });
    expect(monitor.connected).toBe(2);
    server.emit('disconnect', peer('a'), lost);
    expect(monitor.connected).toBe(1);
    server.emit('connection', peer('a'), { resumed: true });
    // A resume that took the session over from a live connection: no disconnect came first.
    server.emit('connection', peer('a'), { resumed: true });
    expect(monitor.connected).toBe(2);
    expire('b');
    expect(monitor.connected).toBe(1);
    server.emit('disconnect', peer('a'), lost);
    expire('a');
    expect(monitor.connected).toBe(0);
    expect(monitor).toMatchObject({ opened: 2, resumed: 2, expired: 2 });
    expect(monitor.retiredBytes()).toEqual({ bytesIn: 20, bytesOut: 40 });
  });

  it('membership moves with every connect, disconnect and expiry, not with RTT or transfers', () => {
    const { server, monitor, peer, expire, transfer } = monitored();
    const seen = [monitor.membership];
    const moved = () => {
      const changed = monitor.membership !== seen.at(-1);
      seen.push(monitor.membership);
      return changed;
    };
    server.emit('connection', peer('a'), { resumed: false });
    expect(moved()).toBe(true);
    server.emit('rtt', peer('a'), { last: 1, min: 1, srtt: 1, rttvar: 0.5, samples: 1 });
    transfer('a', { state: 'started' });
    expect(moved()).toBe(false);
    server.emit('disconnect', peer('a'), { code: 'EVICTED', reason: 'silent' });
    expect(moved()).toBe(true);
    server.emit('connection', peer('a'), { resumed: true });
    expect(moved()).toBe(true);
    expire('a');
    expect(moved()).toBe(true);
  });

  it('counts transfers in progress: a restart is not a second one; an end or an expiry ends them', () => {
    const { monitor, expire, transfer } = monitored();
    transfer('a', { id: 't1', state: 'started' });
    transfer('a', { id: 't1', state: 'progress', bytes: 50 });
    transfer('a', { id: 't1', state: 'started', bytes: 50 });
    transfer('a', { id: 't2', state: 'started' });
    transfer('b', { id: 't3', state: 'started' });
    expect(monitor.activeTransfers()).toBe(3);
    transfer('a', { id: 't1', state: 'completed', bytes: 100 });
    expect(monitor.activeTransfers()).toBe(2);
    // An end of a transfer the monitor never saw start is counted as ended, not as active.
    transfer('a', { id: 'unknown', state: 'failed', code: 'FILE_IO' });
    expect(monitor.activeTransfers()).toBe(2);
    expire('a');
    expect(monitor.activeTransfers()).toBe(1);
    expect(monitor.transfers('b').map((t) => t.id)).toEqual(['t3']);
    // A late step of an expired session's transfer is not counted again.
    transfer('a', { id: 't2', state: 'progress', bytes: 60 });
    expect(monitor.activeTransfers()).toBe(1);
  });

  it('each RTT sample goes into the histogram, not after the session ended', () => {
    const { server, monitor, peer, expire } = monitored();
    const rtt = (id: string, last: number) =>
      server.emit('rtt', peer(id), { last, min: last, srtt: last, rttvar: 0, samples: 1 });
    for (const ms of [1, 2, 3, 4]) rtt('a', ms);
    expect(monitor.rttHistogram.count).toBe(4);
    expire('a');
    rtt('a', 5);
    expect(monitor.rttHistogram.count).toBe(4);
  });
});

describe('dashboard monitor - RTT histogram', () => {
  it('writes the same text as a prom-client Histogram fed the same samples', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const counts = new RttHistogram();
    ours.registerMetric(new RttHistogramMetric('tether_rtt_seconds', 'RTT.', counts).asMetric());
    const reference = new Histogram({
      name: 'tether_rtt_seconds',
      help: 'RTT.',
      buckets: [...RTT_BUCKETS_SECONDS],
      registers: [theirs],
    });
    // Every bound exactly (a sample equal to a bound is in its bucket), between them, past the
    // last one, and zero.
    const samples = [0, 0.3, 7, 12.5, 999, 6000, 42_000];
    for (const seconds of RTT_BUCKETS_SECONDS) samples.push(seconds * 1000);
    for (const ms of samples) {
      counts.observe(ms);
      reference.observe(ms / 1000);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('tether_rtt_seconds_bucket{le="+Inf"} 20\n');
    expect(text).toContain('tether_rtt_seconds_bucket{le="0.0005"} 3\n');
    expect(text).toContain('tether_rtt_seconds_count 20\n');
  });
});
