import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Peer } from '../peer.js';
import type { TetherServer } from '../server.js';
import type { LogEntry, Monitor } from './monitor.js';
import {
  type PageRows,
  type PeerPage,
  type PeerQuery,
  pageOrder,
  peerPage,
  queryKey,
} from './peer-view.js';
import type { SessionSums, Surveyor } from './survey.js';
import { UpdateJson } from './update-json.js';

/** The server's figures at one moment, as the page's header shows them. */
export interface Totals {
  connections: number;
  sessions: number;
  /** Sessions with a connection up. */
  connected: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  evictions: number;
  opened: number;
  resumed: number;
  expired: number;
  handshakeFailures: number;
  refusedConnections: number;
  transfersActive: number;
  outboxMessages: number;
  /**
   * Wall-clock ms of the pass over all sessions that `bytesIn`, `bytesOut` and `outboxMessages`
   * come from (with many sessions it is taken less often than updates are sent).
   */
  sampledAt: number;
  /** The server is listening for clients. */
  listening: boolean;
  draining: boolean;
}

/** One update of the live page (and the body of `/api/snapshot`). */
export interface Update {
  /** Wall-clock ms. */
  time: number;
  totals: Totals;
  peers: PeerPage;
  /** Log entries since the viewer's last update, oldest first. */
  log: LogEntry[];
}

/** The totals: counters from the server and the monitor now, sums from the last pass. */
function totals(server: TetherServer, monitor: Monitor, sums: SessionSums): Totals {
  const stats = server.stats();
  return {
    connections: stats.connections,
    sessions: stats.sessions,
    connected: monitor.connected,
    messagesIn: stats.messagesIn,
    messagesOut: stats.messagesOut,
    bytesIn: sums.bytesIn,
    bytesOut: sums.bytesOut,
    evictions: stats.evictions,
    opened: monitor.opened,
    resumed: monitor.resumed,
    expired: monitor.expired,
    handshakeFailures: stats.handshakeFailures,
    refusedConnections: stats.refusedConnections,
    transfersActive: monitor.activeTransfers(),
    outboxMessages: sums.outboxMessages,
    sampledAt: Date.now() - (performance.now() - sums.at),
    listening: server.listening,
    draining: server.draining,
  };
}

// A viewer gets the last this many log entries when it connects.
const FIRST_LOG_ENTRIES = 100;
// A viewer that reads less than it is sent skips updates instead of piling them up here.
const MAX_STREAM_BACKLOG = 1024 * 1024;

interface Stream {
  response: ServerResponse;
  /** The response's socket: updates are written to it directly (see `open`). */
  socket: Socket;
  query: PeerQuery;
  /** Newest log entry sent. */
  since: number;
  /** The rows of the last update sent: session id -> its RTT samples then (`rtt.samples`). */
  sent: Map<string, number>;
}

/** What the streams of one update share: the pages asked for, the RTT histories read. */
interface Round {
  pages: Map<string, PageRows>;
  histories: Map<Peer, number[]>;
}

function newRound(): Round {
  return { pages: new Map(), histories: new Map() };
}

/**
 * The live page's Server-Sent Events streams: one `data:` line of JSON (an {@link Update}) per
 * interval while any viewer is connected, no timer otherwise. An update reads the server's and
 * the monitor's counters and the stats of the rows on its page; the sums and the order come from
 * the {@link Surveyor}. Viewers asking for the same page share it. A row carries its RTT history
 * only when the stream has not sent it since the session's last sample: at rest (one sample per
 * 6 ping intervals) most rows of an update leave it out, and it was most of an update's bytes.
 */
export class LiveStreams {
  readonly #server: TetherServer;
  readonly #monitor: Monitor;
  readonly #surveyor: Surveyor;
  readonly #intervalMs: number;
  readonly #maxStreams: number;
  readonly #streams = new Set<Stream>();
  readonly #json = new UpdateJson();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    server: TetherServer,
    monitor: Monitor,
    surveyor: Surveyor,
    options: { intervalMs: number; maxStreams: number },
  ) {
    this.#server = server;
    this.#monitor = monitor;
    this.#surveyor = surveyor;
    this.#intervalMs = options.intervalMs;
    this.#maxStreams = options.maxStreams;
  }

  /** Viewers connected. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * Starts a stream on `response`, which must have its socket (not queued behind another
   * response on its connection); false (nothing written) when the limit is reached.
   */
  open(response: ServerResponse & { socket: Socket }, query: PeerQuery): boolean {
    if (this.#streams.size >= this.#maxStreams) return false;
    const stream: Stream = {
      response,
      socket: response.socket,
      query,
      since: Math.max(0, this.#monitor.lastSeq - FIRST_LOG_ENTRIES),
      sent: new Map(),
    };
    this.#streams.add(stream);
    response.on('close', () => {
      this.#streams.delete(stream);
      if (this.#streams.size === 0) this.#stop();
    });
    // The body ends with the connection, not with chunked framing: an update is then one write
    // to the socket. Through `response.write` each one took a cork, a deferred uncork and a
    // writev of its chunk's framing, about a third of an update's time at rest (10,000 idle
    // sessions, CPU profile).
    response.removeHeader('Transfer-Encoding');
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'close',
      'X-Accel-Buffering': 'no',
    });
    response.flushHeaders();
    this.#send(stream, this.#surveyor.sums(this.#intervalMs), newRound());
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    }
    return true;
  }

  /** One update for a single request (`/api/snapshot`). */
  once(query: PeerQuery): Update {
    const sums = this.#surveyor.sums(this.#intervalMs);
    const since = Math.max(0, this.#monitor.lastSeq - FIRST_LOG_ENTRIES);
    const round = newRound();
    const { update, peers } = this.#update(sums, query, round, since);
    const rows = update.peers.rows.map((row, i) => ({
      ...row,
      rtt: this.#history(peers[i] as Peer, round),
    }));
    return { ...update, peers: { ...update.peers, rows } };
  }

  /** Ends every stream. */
  close(): void {
    this.#stop();
    for (const stream of this.#streams) stream.response.end();
    this.#streams.clear();
  }

  #tick(): void {
    const sums = this.#surveyor.sums(this.#intervalMs);
    const round = newRound();
    this.#json.round();
    for (const stream of this.#streams) this.#send(stream, sums, round);
  }

  #send(stream: Stream, sums: SessionSums, round: Round): void {
    const socket = stream.socket;
    if (socket.writableLength > MAX_STREAM_BACKLOG || socket.destroyed) return;
    const rows = this.#update(sums, stream.query, round, stream.since);
    const update = rows.update;
    const last = update.log.at(-1);
    if (last !== undefined) stream.since = last.seq;
    const histories = this.#historiesFor(stream, rows, round);
    socket.write(`data: ${this.#json.write(update, histories)}\n\n`);
  }

  /**
   * The RTT history each row carries on this stream: that of each session that has had a sample
   * since the stream last sent its row (or whose row was not in its last update), none
   * otherwise. Remembers what it sent, for the rows of this update only.
   */
  #historiesFor(stream: Stream, rows: PageRows, round: Round): (number[] | undefined)[] {
    const sent = new Map<string, number>();
    const out: (number[] | undefined)[] = [];
    const { page, peers, rttSamples } = rows;
    for (const [i, row] of page.rows.entries()) {
      const samples = rttSamples[i] as number;
      sent.set(row.id, samples);
      out.push(
        stream.sent.get(row.id) === samples ? undefined : this.#history(peers[i] as Peer, round),
      );
    }
    stream.sent = sent;
    return out;
  }

  // Read once per update for all the streams that send it.
  #history(peer: Peer, round: Round): number[] {
    let history = round.histories.get(peer);
    if (history === undefined) {
      history = peer.rttHistory();
      round.histories.set(peer, history);
    }
    return history;
  }

  // Viewers of one page share it within an update; its rows are read now.
  #update(
    sums: SessionSums,
    query: PeerQuery,
    round: Round,
    since: number,
  ): PageRows & { update: Update } {
    const pages = round.pages;
    const key = queryKey(query);
    let rows = pages.get(key);
    if (rows === undefined) {
      const order = this.#surveyor.order(query, this.#intervalMs);
      rows = peerPage(pageOrder(order, query), this.#monitor);
      pages.set(key, rows);
    }
    const update = {
      time: Date.now(),
      totals: totals(this.#server, this.#monitor, sums),
      peers: rows.page,
      log: this.#monitor.logSince(since),
    };
    return { ...rows, update };
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
