import { describe, expect, it } from 'vitest';
import type { PeerPage, PeerRow } from '../src/dashboard/peer-view.js';
import { UpdateJson } from '../src/dashboard/update-json.js';

function row(id: string, fields: Partial<PeerRow> = {}): PeerRow {
  return {
    id,
    clientId: `client-${id}`,
    address: '127.0.0.1:1000',
    connected: true,
    srtt: 1.5,
    rttvar: 0.25,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 14,
    bytesOut: 14,
    queueDepth: 0,
    queueBytes: 0,
    transfers: [],
    lastSeen: 1000,
    ...fields,
  };
}

/** What the stream hands over: rows without `rtt`, and each row's history beside them. */
function split(rows: PeerRow[]): [PeerRow[], (number[] | undefined)[]] {
  return [rows.map(({ rtt: _rtt, ...rest }) => rest), rows.map((r) => r.rtt)];
}

function update(rows: PeerRow[], time = 5000) {
  const peers: PeerPage = {
    total: rows.length,
    matched: rows.length,
    page: 0,
    pages: 1,
    size: 50,
    sort: 'client',
    desc: false,
    filter: 'a"\\',
    rows,
  };
  return { time, totals: { sessions: rows.length, draining: false }, peers, log: [{ seq: 1 }] };
}

describe('dashboard - the JSON of a live update', () => {
  it('is what JSON.stringify gives, round after round, as rows change, gain a history or go', () => {
    const json = new UpdateJson();
    const rounds: PeerRow[][] = [
      [row('a'), row('b'), row('c', { rtt: [1, 2.5] })],
      // b changed (a ping: bytes and last seen); a did not; c's history was sent already.
      [row('a'), row('b', { bytesIn: 28, lastSeen: 6000 }), row('c')],
      // a new sample of a; a transfer on b; c gone.
      [
        row('a', { rtt: [1.25] }),
        row('b', {
          bytesIn: 28,
          lastSeen: 6000,
          transfers: [{ id: 't', direction: 'in', name: 'f', size: 10, bytes: 5 }],
        }),
      ],
      // b's transfer moved on: the row must not be taken for the one before.
      [
        row('a'),
        row('b', {
          bytesIn: 28,
          lastSeen: 6000,
          transfers: [{ id: 't', direction: 'in', name: 'f', size: 10, bytes: 9 }],
        }),
      ],
      [row('a', { srtt: null, rttvar: null, connected: false })],
      [],
    ];
    for (const [i, rows] of rounds.entries()) {
      json.round();
      const [bare, histories] = split(rows);
      const u = update(bare, 5000 + i);
      const text = json.write(u, histories);
      // As the rows with their histories would be stringified.
      expect(text).toBe(JSON.stringify(update(rows, 5000 + i)));
      // Two streams in one round get the same.
      expect(json.write(u, histories)).toBe(text);
    }
  });

  it('writes a row again when any one of its fields changed', () => {
    const base = row('a');
    const changed = (value: unknown): unknown => {
      if (typeof value === 'number') return value + 1;
      if (typeof value === 'string') return `${value}x`;
      if (typeof value === 'boolean') return !value;
      if (value === null) return 2;
      return [{ id: 't', direction: 'in', name: 'f', size: 10, bytes: 5 }];
    };
    const keys = Object.keys(base) as (keyof PeerRow)[];
    // Every field of a row but its RTT history, which goes beside it.
    expect(keys).toHaveLength(14);
    for (const key of keys) {
      const json = new UpdateJson();
      json.round();
      json.write(update([base]), []);
      json.round();
      const other = { ...base, [key]: changed(base[key]) };
      expect(json.write(update([other]), [])).toBe(JSON.stringify(update([other])));
    }
  });

  it('keeps the rows of the last two rounds only', () => {
    const json = new UpdateJson();
    json.round();
    json.write(update([row('a'), row('b')]), []);
    json.round();
    json.write(update([row('b'), row('c')]), []);
    expect(json.keptRows).toBe(3);
    json.round();
    json.write(update([row('c')]), []);
    // a was last written two rounds ago.
    expect(json.keptRows).toBe(2);
    json.round();
    json.round();
    expect(json.keptRows).toBe(0);
  });
});
