import type { Peer, PeerStats } from '../peer.js';
import type { TransferView } from './monitor.js';
import type { SurveyEntry } from './survey.js';

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
  /** Recent RTT samples in ms, oldest first. */
  rtt: number[];
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

/** Which sessions one page shows, in order, as of the survey it was cut from. */
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

/** What a row adds from the monitor. */
export interface RowDetails {
  rttHistory(peerId: string): number[];
  transfers(peerId: string): TransferView[];
}

type Compare = (a: PeerStats, b: PeerStats) => number;

const byNumber =
  (value: (s: PeerStats) => number): Compare =>
  (a, b) =>
    value(a) - value(b);

const byText =
  (value: (s: PeerStats) => string): Compare =>
  (a, b) => {
    const x = value(a);
    const y = value(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };

// A peer without an RTT sample yet counts as the slowest.
const COMPARE: Record<SortKey, Compare> = {
  client: byText((s) => s.clientId),
  address: byText((s) => s.remoteAddress),
  state: byNumber((s) => (s.connected ? 1 : 0)),
  rtt: byNumber((s) => s.rtt?.srtt ?? Number.MAX_VALUE),
  messagesIn: byNumber((s) => s.messagesIn),
  messagesOut: byNumber((s) => s.messagesOut),
  bytesIn: byNumber((s) => s.bytesIn),
  bytesOut: byNumber((s) => s.bytesOut),
  queue: byNumber((s) => s.queueDepth),
  transfers: byNumber((s) => s.transfers),
  lastSeen: byNumber((s) => s.lastSeen),
};

function matches({ stats }: SurveyEntry, filter: string): boolean {
  return (
    stats.clientId.toLowerCase().includes(filter) ||
    stats.remoteAddress.toLowerCase().includes(filter) ||
    stats.id.includes(filter)
  );
}

/**
 * The sessions of the page `query` asks for: filtered, sorted (ties by session id, so a page is
 * stable between updates), cut to the page.
 */
export function pageOrder(all: readonly SurveyEntry[], query: PeerQuery): PageOrder {
  const matching = query.filter === '' ? [...all] : all.filter((e) => matches(e, query.filter));
  const compare = COMPARE[query.sort];
  const sign = query.desc ? -1 : 1;
  matching.sort(
    (a, b) =>
      sign * compare(a.stats, b.stats) ||
      (a.stats.id < b.stats.id ? -1 : a.stats.id > b.stats.id ? 1 : 0),
  );
  const pages = Math.max(1, Math.ceil(matching.length / query.size));
  const page = Math.min(query.page, pages - 1);
  return {
    total: all.length,
    matched: matching.length,
    page,
    pages,
    size: query.size,
    sort: query.sort,
    desc: query.desc,
    filter: query.filter,
    peers: matching.slice(page * query.size, (page + 1) * query.size).map((e) => e.peer),
  };
}

/**
 * The page's rows from each session's stats now (sessions that ended since the order was taken
 * are left out). Only these rows carry RTT history and transfers.
 */
export function peerPage(order: PageOrder, details: RowDetails): PeerPage {
  const { peers, ...meta } = order;
  const rows: PeerRow[] = [];
  for (const peer of peers) {
    if (peer.closed) continue;
    const s = peer.stats();
    rows.push({
      id: s.id,
      clientId: s.clientId,
      address: s.remoteAddress,
      connected: s.connected,
      srtt: s.rtt === undefined ? null : round(s.rtt.srtt),
      rttvar: s.rtt === undefined ? null : round(s.rtt.rttvar),
      rtt: details.rttHistory(s.id),
      messagesIn: s.messagesIn,
      messagesOut: s.messagesOut,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      queueDepth: s.queueDepth,
      queueBytes: s.queueBytes,
      transfers: details.transfers(s.id),
      lastSeen: s.lastSeen,
    });
  }
  return { ...meta, rows };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
