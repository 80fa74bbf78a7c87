import type { Peer, PeerStats } from '../peer.js';
import type { TetherServer } from '../server.js';
import type { Monitor } from './monitor.js';

/** One session in a survey. */
export interface SurveyEntry {
  peer: Peer;
  stats: PeerStats;
}

/** Sums over every session, expired ones included where they are counters. */
export interface SessionSums {
  bytesIn: number;
  bytesOut: number;
  outboxMessages: number;
  outboxBytes: number;
  connected: number;
}

/** Every session's stats at one moment, and their sums. */
export interface Survey {
  /** Monotonic ms (`performance.now()`) when taken. */
  at: number;
  entries: SurveyEntry[];
  sums: SessionSums;
}

/**
 * Share of one core the passes over all sessions may take: a pass that costs 3 ms (about 10,000
 * sessions) is taken at most every 6 s, one that costs 0.05 ms (a few hundred) at every ask.
 */
export const SURVEY_CPU_SHARE = 0.0005;

/**
 * Passes over every session (the table's sort, the totals of bytes and queues, the metrics'
 * sums) are the dashboard's one cost that grows with the number of clients. They are taken on
 * demand, shared by the live page and `/metrics`, and never more often than keeps their CPU
 * time within {@link SURVEY_CPU_SHARE}: with many sessions the table's order and the sums
 * refresh less often than the page (whose visible rows and counters stay live).
 */
export class Surveyor {
  readonly #server: TetherServer;
  readonly #monitor: Monitor;
  readonly #share: number;
  readonly #now: () => number;
  #last: Survey | undefined;
  #costMs = 0;

  constructor(
    server: TetherServer,
    monitor: Monitor,
    options: { share?: number; now?: () => number } = {},
  ) {
    this.#server = server;
    this.#monitor = monitor;
    this.#share = options.share ?? SURVEY_CPU_SHARE;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The last survey if it is younger than `maxAgeMs` and the CPU budget allows no new one. */
  take(maxAgeMs: number): Survey {
    const now = this.#now();
    const last = this.#last;
    if (last !== undefined && now - last.at < Math.max(maxAgeMs, this.#costMs / this.#share)) {
      return last;
    }
    const retired = this.#monitor.retiredBytes();
    const sums: SessionSums = {
      bytesIn: retired.bytesIn,
      bytesOut: retired.bytesOut,
      outboxMessages: 0,
      outboxBytes: 0,
      connected: 0,
    };
    const entries: SurveyEntry[] = [];
    for (const peer of this.#server.peers) {
      const stats = peer.stats();
      entries.push({ peer, stats });
      sums.bytesIn += stats.bytesIn;
      sums.bytesOut += stats.bytesOut;
      sums.outboxMessages += stats.queueDepth;
      sums.outboxBytes += stats.queueBytes;
      if (stats.connected) sums.connected++;
    }
    const survey: Survey = { at: now, entries, sums };
    this.#last = survey;
    this.#costMs = this.#now() - now;
    return survey;
  }

  /** Counts the cost of work done on a survey (sorting it for a page) toward its budget. */
  charge(ms: number): void {
    this.#costMs += ms;
  }
}
