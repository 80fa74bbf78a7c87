import type { Peer } from '../peer.js';
import type { TransferView } from './monitor.js';

/** Columns the peer table sorts by. */
export const SortKey = {
  CLIENT: 'client',
  ADDRESS: 'address',
  STATE: 'state',
  RTT: 'rtt',
  MESSAGES_IN: 'messagesIn',
  MESSAGES_OUT: 'messagesOut',
  BYTES_IN: 'bytesIn',
  BYTES_OUT: 'bytesOut',
  QUEUE: 'queue',
  TRANSFERS: 'transfers',
  LAST_SEEN: 'lastSeen',
} as const;
export type SortKey = (typeof SortKey)[keyof typeof SortKey];

const SORT_KEYS = new Set<string>(Object.values(SortKey));

/** Which page of which peers a viewer asked for. */
export interface PeerQuery {
  sort: SortKey;
  /** Largest first. */
  desc: boolean;
  /** Case-insensitive substring of the client id, address or session id; '' for all. */
  filter: string;
  /** From 0. */
  page: number;
  /** Rows per page. */
  size: number;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;
// Longer than any client id (128 bytes) or address: a longer filter matches nothing anyway.
const MAX_FILTER_CHARS = 200;

function boundedInteger(text: string | null, fallback: number, min: number, max: number): number {
  const value = text === null ? Number.NaN : Number(text);
  if (!Number.isSafeInteger(value)) return fallback;
  return Math.min(Math.max(value, min), max);
}

/** Reads `sort`, `dir` (asc|desc), `filter`, `page` and `size` from a query string; bad values fall back. */
export function parsePeerQuery(params: URLSearchParams): PeerQuery {
  const sort = params.get('sort') ?? '';
  const dir = params.get('dir');
  return {
    sort: SORT_KEYS.has(sort) ? (sort as SortKey) : SortKey.CLIENT,
    desc: dir === null ? false : dir === 'desc',
    filter: (params.get('filter') ?? '').slice(0, MAX_FILTER_CHARS).toLowerCase(),
    page: boundedInteger(params.get('page'), 0, 0, Number.MAX_SAFE_INTEGER),
    size: boundedInteger(params.get('size'), DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
  };
}

/** A key naming a query, so viewers asking the same share one sort. */
export function queryKey(query: PeerQuery): string {
  return `${query.sort}\u0000${query.desc}\u0000${query.page}\u0000${query.size}\u0000${query.filter}`;
}

/** One row of the peer table. Strings from peers are as they came: the page escapes them. */
export interface PeerRow {
  id: string;
  clientId: string;
  address: string;
  connected: boolean;
  /** Smoothed RTT and its variation in ms; null before the first sample. */
  srtt: number | null;
  rttvar: number | null;
  /**
   * Recent RTT samples in ms, oldest first. In `/events`, left out of a row that was in the
   * stream's previous update when its session has had no new sample since (the viewer keeps
   * the one it has: at rest a session gets one sample per 6 ping intervals, the page one update a
   * second); always there in `/api/snapshot`.
   */
  rtt?: number[];
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  queueDepth: number;
  queueBytes: number;
  transfers: TransferView[];
  /** Wall-clock ms of the last inbound byte. */
  lastSeen: number;
}

/**
 * The sessions one view matches, in its order, as of when it was taken (with many sessions an
 * order by a changing column is taken less often than pages are cut from it).
 */
export interface PeerOrder {
  /** Sessions in all. */
  total: number;
  sort: SortKey;
  desc: boolean;
  filter: string;
  /** The matching sessions, in order. */
  peers: Peer[];
  /** Monotonic ms (`performance.now()`) when taken. */
  at: number;
}

/** Which sessions one page shows, in order. */
export interface PageOrder {
  /** Sessions in all. */
  total: number;
  /** Sessions the filter matched. */
  matched: number;
  page: number;
  pages: number;
  size: number;
  sort: SortKey;
  desc: boolean;
  filter: string;
  peers: Peer[];
}

/** One page of the peer table. */
export type PeerPage = Omit<PageOrder, 'peers'> & { rows: PeerRow[] };

/** What a row adds from the monitor (its RTT history is added by who sends it). */
export interface RowDetails {
  transfers(peerId: string): TransferView[];
}

/**
 * Columns read from what a session holds until it connects, disconnects or ends (its client id,
 * its address, whether it is connected): an order by one of them stays right until then.
 */
export const STATIC_SORTS: ReadonlySet<SortKey> = new Set([
  SortKey.CLIENT,
  SortKey.ADDRESS,
  SortKey.STATE,
]);

type SortValue = number | string;

// The fixed columns are read from the peer itself; the others need its stats (one object per
// session). A peer without an RTT sample yet counts as the slowest.
const VALUE: Record<SortKey, (peer: Peer) => SortValue> = {
  client: (p) => p.clientId,
  address: (p) => p.remoteAddress,
  state: (p) => (p.connected ? 1 : 0),
  rtt: (p) => p.stats().rtt?.srtt ?? Number.MAX_VALUE,
  messagesIn: (p) => p.stats().messagesIn,
  messagesOut: (p) => p.stats().messagesOut,
  bytesIn: (p) => p.stats().bytesIn,
  bytesOut: (p) => p.stats().bytesOut,
  queue: (p) => p.stats().queueDepth,
  transfers: (p) => p.stats().transfers,
  lastSeen: (p) => p.stats().lastSeen,
};

function compare(x: SortValue, y: SortValue): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

function matches(peer: Peer, filter: string): boolean {
  return (
    peer.clientId.toLowerCase().includes(filter) ||
    peer.remoteAddress.toLowerCase().includes(filter) ||
    peer.id.includes(filter)
  );
}

/** A key naming a view's order (its page and size aside): views with the same key share it. */
export function orderKey(query: PeerQuery): string {
  return `${query.sort}\u0000${query.desc}\u0000${query.filter}`;
}

/**
 * The sessions `query` matches, sorted by its column (ties by session id, so a page is stable
 * between updates). Each session's value is read once.
 */
export function orderPeers(peers: readonly Peer[], query: PeerQuery, at: number): PeerOrder {
  const value = VALUE[query.sort];
  const sign = query.desc ? -1 : 1;
  const keyed: { peer: Peer; id: string; value: SortValue }[] = [];
  for (const peer of peers) {
    if (query.filter === '' || matches(peer, query.filter)) {
      keyed.push({ peer, id: peer.id, value: value(peer) });
    }
  }
  keyed.sort((a, b) => sign * compare(a.value, b.value) || compare(a.id, b.id));
  return {
    total: peers.length,
    sort: query.sort,
    desc: query.desc,
    filter: query.filter,
    peers: keyed.map((k) => k.peer),
    at,
  };
}

/** The page `query` asks for, cut from its order (past the end: the last page). */
export function pageOrder(order: PeerOrder, query: PeerQuery): PageOrder {
  const matched = order.peers.length;
  const pages = Math.max(1, Math.ceil(matched / query.size));
  const page = Math.min(query.page, pages - 1);
  return {
    total: order.total,
    matched,
    page,
    pages,
    size: query.size,
    sort: order.sort,
    desc: order.desc,
    filter: order.filter,
    peers: order.peers.slice(page * query.size, (page + 1) * query.size),
  };
}

/** A page's rows, and beside each its session and the number of RTT samples it had then. */
export interface PageRows {
  page: PeerPage;
  /** The session of each row. */
  peers: Peer[];
  /**
   * `stats().rtt.samples` of each row's session (0 before the first): a row's RTT history
   * changed since a stream last sent it when this did.
   */
  rttSamples: number[];
}

/**
 * The page's rows from each session's stats now (sessions that ended since the order was taken
 * are left out), without their RTT history. Only these rows carry transfers.
 */
export function peerPage(order: PageOrder, details: RowDetails): PageRows {
  const { peers, ...meta } = order;
  const rows: PeerRow[] = [];
  const shown: Peer[] = [];
  const rttSamples: number[] = [];
  for (const peer of peers) {
    if (peer.closed) continue;
    const s = peer.stats();
    const rtt = s.rtt;
    rows.push({
      id: s.id,
      clientId: s.clientId,
      address: s.remoteAddress,
      connected: s.connected,
      srtt: rtt === undefined ? null : round(rtt.srtt),
      rttvar: rtt === undefined ? null : round(rtt.rttvar),
      messagesIn: s.messagesIn,
      messagesOut: s.messagesOut,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      queueDepth: s.queueDepth,
      queueBytes: s.queueBytes,
      transfers: details.transfers(s.id),
      lastSeen: s.lastSeen,
    });
    shown.push(peer);
    rttSamples.push(rtt === undefined ? 0 : rtt.samples);
  }
  return { page: { ...meta, rows }, peers: shown, rttSamples };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
