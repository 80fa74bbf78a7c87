import type { ServerResponse } from 'node:http';
import type { PeerStats } from '../peer.js';
import type { TetherServer } from '../server.js';
import type { LogEntry, Monitor } from './monitor.js';
import { type PeerPage, type PeerQuery, peerPage, queryKey } from './peer-view.js';

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

/** Everything one update needs of the server, taken once for every viewer. */
export interface Snapshot {
  time: number;
  stats: PeerStats[];
  totals: Totals;
}

/** Takes the server's figures once: every viewer's page is cut from the same snapshot. */
export function takeSnapshot(server: TetherServer, monitor: Monitor): Snapshot {
  const serverStats = server.stats();
  const stats = server.peers.map((peer) => peer.stats());
  const retired = monitor.retiredBytes();
  let bytesIn = retired.bytesIn;
  let bytesOut = retired.bytesOut;
  let connected = 0;
  let outboxMessages = 0;
  for (const s of stats) {
    bytesIn += s.bytesIn;
    bytesOut += s.bytesOut;
    outboxMessages += s.queueDepth;
    if (s.connected) connected++;
  }
  return {
    time: Date.now(),
    stats,
    totals: {
      connections: serverStats.connections,
      sessions: serverStats.sessions,
      connected,
      messagesIn: serverStats.messagesIn,
      messagesOut: serverStats.messagesOut,
      bytesIn,
      bytesOut,
      evictions: serverStats.evictions,
      opened: monitor.opened,
      resumed: monitor.resumed,
      expired: monitor.expired,
      handshakeFailures: serverStats.handshakeFailures,
      refusedConnections: serverStats.refusedConnections,
      transfersActive: monitor.activeTransfers(),
      outboxMessages,
      listening: server.address !== undefined,
      draining: server.draining,
    },
  };
}

// A viewer gets the last this many log entries when it connects.
const FIRST_LOG_ENTRIES = 100;
// A viewer that reads less than it is sent skips updates instead of piling them up here.
const MAX_STREAM_BACKLOG = 1024 * 1024;

interface Stream {
  response: ServerResponse;
  query: PeerQuery;
  /** Newest log entry sent. */
  since: number;
}

/**
 * The live page's Server-Sent Events streams: one `data:` line of JSON (an {@link Update}) per
 * interval while any viewer is connected, no timer otherwise. Viewers asking for the same page
 * share its sort.
 */
export class LiveStreams {
  readonly #server: TetherServer;
  readonly #monitor: Monitor;
  readonly #intervalMs: number;
  readonly #maxStreams: number;
  readonly #streams = new Set<Stream>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    server: TetherServer,
    monitor: Monitor,
    options: { intervalMs: number; maxStreams: number },
  ) {
    this.#server = server;
    this.#monitor = monitor;
    this.#intervalMs = options.intervalMs;
    this.#maxStreams = options.maxStreams;
  }

  /** Viewers connected. */
  get size(): number {
    return this.#streams.size;
  }

  /** Starts a stream on `response`; false (nothing written) when the limit is reached. */
  open(response: ServerResponse, query: PeerQuery): boolean {
    if (this.#streams.size >= this.#maxStreams) return false;
    const stream: Stream = {
      response,
      query,
      since: Math.max(0, this.#monitor.lastSeq - FIRST_LOG_ENTRIES),
    };
    this.#streams.add(stream);
    response.on('close', () => {
      this.#streams.delete(stream);
      if (this.#streams.size === 0) this.#stop();
    });
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'X-Accel-Buffering': 'no',
    });
    this.#send(stream, takeSnapshot(this.#server, this.#monitor), new Map());
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    }
    return true;
  }

  /** One update for a single request (`/api/snapshot`). */
  once(query: PeerQuery): Update {
    const snapshot = takeSnapshot(this.#server, this.#monitor);
    return this.#update(
      snapshot,
      query,
      new Map(),
      Math.max(0, this.#monitor.lastSeq - FIRST_LOG_ENTRIES),
    );
  }

  /** Ends every stream. */
  close(): void {
    this.#stop();
    for (const stream of this.#streams) stream.response.end();
    this.#streams.clear();
  }

  #tick(): void {
    const snapshot = takeSnapshot(this.#server, this.#monitor);
    const pages = new Map<string, PeerPage>();
    for (const stream of this.#streams) this.#send(stream, snapshot, pages);
  }

  #send(stream: Stream, snapshot: Snapshot, pages: Map<string, PeerPage>): void {
    const response = stream.response;
    if (response.writableLength > MAX_STREAM_BACKLOG || response.destroyed) return;
    const update = this.#update(snapshot, stream.query, pages, stream.since);
    const last = update.log.at(-1);
    if (last !== undefined) stream.since = last.seq;
    response.write(`data: ${JSON.stringify(update)}\n\n`);
  }

  #update(
    snapshot: Snapshot,
    query: PeerQuery,
    pages: Map<string, PeerPage>,
    since: number,
  ): Update {
    const key = queryKey(query);
    let page = pages.get(key);
    if (page === undefined) {
      page = peerPage(snapshot.stats, query, this.#monitor);
      pages.set(key, page);
    }
    return {
      time: snapshot.time,
      totals: snapshot.totals,
      peers: page,
      log: this.#monitor.logSince(since),
    };
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
