import type { RttStats } from '@tether/protocol';
import type { Peer } from '../peer.js';
import type { DisconnectInfo, TetherServer } from '../server.js';
import type { TransferUpdate } from '../transfer-watch.js';
import { RttHistogram } from './rtt-histogram.js';

/** Kinds of {@link LogEntry}. */
export const LogKind = {
  CONNECT: 'connect',
  RESUME: 'resume',
  DISCONNECT: 'disconnect',
  EVICT: 'evict',
  EXPIRE: 'expire',
  TRANSFER: 'transfer',
} as const;
export type LogKind = (typeof LogKind)[keyof typeof LogKind];

/** One line of the dashboard's event log. Strings from peers are as they came: escape them. */
export interface LogEntry {
  /** Increases by one per entry: a stream asks for what came after the last it saw. */
  seq: number;
  /** Wall-clock time, ms since epoch. */
  time: number;
  kind: LogKind;
  /** Session id. */
  peer: string;
  clientId: string;
  address: string;
  /** Error code (disconnects, evictions, failed transfers) or the transfer state. */
  code: string;
  /** Reason, file name, or what a resume followed; cut to DETAIL_CHARS. */
  detail: string;
}

/** A transfer in progress as the page shows it. */
export interface TransferView {
  id: string;
  direction: string;
  name: string;
  size: number;
  bytes: number;
}

/** Settings of {@link Monitor}. */
export interface MonitorOptions {
  /** Log entries kept. */
  logSize: number;
}

// A reason can be a peer's whole ERROR message (up to the control-frame cap): the log keeps
// this much of it.
const DETAIL_CHARS = 200;

function cut(text: string): string {
  return text.length > DETAIL_CHARS ? `${text.slice(0, DETAIL_CHARS)}…` : text;
}

/**
 * What the dashboard remembers beyond the server's own stats, from the server's public events
 * only: totals that outlive sessions, kept as running counters (so neither the page nor a scrape
 * walks the sessions for them), the event log, the histogram of every RTT sample and each
 * session's transfers in progress (a session's recent RTT samples are the server's:
 * `peer.rttHistory()`). Memory is bounded by the log size and, per live session, its transfers
 * and its place in the set of connected ones; everything of a session goes when it expires.
 */
export class Monitor {
  readonly #options: MonitorOptions;
  readonly #log: LogEntry[] = [];
  #seq = 0;
  readonly #transfers = new Map<string, Map<string, TransferView>>();
  #transfersActive = 0;
  /** Why each session's last connection ended, for the line of its resume. */
  readonly #lastDrop = new Map<string, string>();
  /** Sessions with a connection up, by id. */
  readonly #up = new Set<string>();
  #membership = 0;
  /** Every RTT sample of every session. */
  readonly rttHistogram: RttHistogram = new RttHistogram();
  /** Counters over the server's life. */
  opened = 0;
  resumed = 0;
  expired = 0;
  /** Connection closes by error code (evictions included, as EVICTED). */
  readonly closes: Map<string, number> = new Map();
  /** Transfers ended, by `${direction} ${state}`. */
  readonly transfersEnded: Map<string, number> = new Map();
  /** Committed file bytes by direction. */
  fileBytesIn = 0;
  fileBytesOut = 0;
  /** Bytes of sessions that expired (live ones are summed from their stats). */
  retiredBytesIn = 0;
  retiredBytesOut = 0;
  readonly #unsubscribe: () => void;

  constructor(server: TetherServer, options: MonitorOptions) {
    this.#options = options;
    const onConnection = (peer: Peer, info: { resumed: boolean }): void =>
      this.#connected(peer, info);
    const onDisconnect = (peer: Peer, info: DisconnectInfo): void => this.#disconnected(peer, info);
    const onEvict = (peer: Peer, info: DisconnectInfo): void => {
      this.#add(LogKind.EVICT, peer, info.code, `silent for ${Math.round(info.silentMs ?? 0)} ms`);
    };
    const onExpire = (peer: Peer, reason: string): void => this.#expired(peer, reason);
    const onRtt = (peer: Peer, rtt: RttStats): void => this.#rttSample(peer, rtt);
    const onTransfer = (peer: Peer, update: TransferUpdate): void => this.#transfer(peer, update);
    server.on('connection', onConnection);
    server.on('disconnect', onDisconnect);
    server.on('evict', onEvict);
    server.on('expire', onExpire);
    server.on('rtt', onRtt);
    server.on('transfer', onTransfer);
    this.#unsubscribe = () => {
      server.off('connection', onConnection);
      server.off('disconnect', onDisconnect);
      server.off('evict', onEvict);
      server.off('expire', onExpire);
      server.off('rtt', onRtt);
      server.off('transfer', onTransfer);
    };
  }

  /** Stops listening to the server. */
  close(): void {
    this.#unsubscribe();
  }

  /** Log entries after `seq`, oldest first (at most the log's size). */
  logSince(seq: number): LogEntry[] {
    const log = this.#log;
    let start = log.length;
    while (start > 0 && (log[start - 1] as LogEntry).seq > seq) start--;
    return log.slice(start);
  }

  /** Sequence number of the newest entry (0 before any). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Sessions with a connection up. */
  get connected(): number {
    return this.#up.size;
  }

  /**
   * Changes whenever a session opens, expires, connects, disconnects or resumes (from another
   * address, maybe): an order of the sessions by client id, address or state, or one filtered on
   * them, still holds while it stays the same.
   */
  get membership(): number {
    return this.#membership;
  }

  /** Transfers in progress of a session. */
  transfers(peerId: string): TransferView[] {
    const own = this.#transfers.get(peerId);
    return own === undefined ? [] : [...own.values()];
  }

  /** Bytes in and out of sessions that expired (add the live sessions' own for totals). */
  retiredBytes(): { bytesIn: number; bytesOut: number } {
    return { bytesIn: this.retiredBytesIn, bytesOut: this.retiredBytesOut };
  }

  /** File transfers accepted and not finished, all sessions. */
  activeTransfers(): number {
    return this.#transfersActive;
  }

  #connected(peer: Peer, info: { resumed: boolean }): void {
    this.#membership++;
    this.#up.add(peer.id);
    if (info.resumed) {
      this.resumed++;
      const after = this.#lastDrop.get(peer.id);
      this.#lastDrop.delete(peer.id);
      this.#add(LogKind.RESUME, peer, '', after === undefined ? '' : `after ${after}`);
    } else {
      this.opened++;
      this.#add(LogKind.CONNECT, peer, '', '');
    }
  }

  #disconnected(peer: Peer, info: DisconnectInfo): void {
    this.#membership++;
    this.#up.delete(peer.id);
    this.closes.set(info.code, (this.closes.get(info.code) ?? 0) + 1);
    this.#lastDrop.set(peer.id, cut(`${info.code}: ${info.reason}`));
    // An eviction has its own line.
    if (info.code !== 'EVICTED') this.#add(LogKind.DISCONNECT, peer, info.code, info.reason);
  }

  #expired(peer: Peer, reason: string): void {
    this.#membership++;
    this.#up.delete(peer.id);
    this.expired++;
    const stats = peer.stats();
    this.retiredBytesIn += stats.bytesIn;
    this.retiredBytesOut += stats.bytesOut;
    this.#transfersActive -= this.#transfers.get(peer.id)?.size ?? 0;
    this.#transfers.delete(peer.id);
    this.#lastDrop.delete(peer.id);
    this.#add(LogKind.EXPIRE, peer, '', reason);
  }

  #rttSample(peer: Peer, rtt: RttStats): void {
    // A late PONG of a session that already expired is not counted.
    if (peer.closed) return;
    this.rttHistogram.observe(rtt.last);
  }

  #transfer(peer: Peer, update: TransferUpdate): void {
    let own = this.#transfers.get(peer.id);
    const known = own?.get(update.id);
    const delta = update.bytes - (known?.bytes ?? update.bytes);
    if (delta > 0) {
      if (update.direction === 'in') this.fileBytesIn += delta;
      else this.fileBytesOut += delta;
    }
    if (update.state === 'started' || update.state === 'progress') {
      if (own === undefined) {
        if (peer.closed) return;
        own = new Map();
        this.#transfers.set(peer.id, own);
      }
      const { id, direction, name, size, bytes } = update;
      if (known === undefined) this.#transfersActive++;
      own.set(id, { id, direction, name, size, bytes });
      if (update.state === 'started' && known === undefined) {
        this.#add(LogKind.TRANSFER, peer, update.state, `${direction} ${name}`);
      }
      return;
    }
    if (own?.delete(update.id)) this.#transfersActive--;
    if (own?.size === 0) this.#transfers.delete(peer.id);
    const key = `${update.direction} ${update.state}`;
    this.transfersEnded.set(key, (this.transfersEnded.get(key) ?? 0) + 1);
    const code = update.code === undefined ? update.state : `${update.state} ${update.code}`;
    this.#add(LogKind.TRANSFER, peer, code, `${update.direction} ${update.name}`);
  }

  #add(kind: LogKind, peer: Peer, code: string, detail: string): void {
    const entry: LogEntry = {
      seq: ++this.#seq,
      time: Date.now(),
      kind,
      peer: peer.id,
      clientId: peer.clientId,
      address: peer.remoteAddress,
      code,
      detail: cut(detail),
    };
    this.#log.push(entry);
    if (this.#log.length > this.#options.logSize) this.#log.shift();
  }
}
