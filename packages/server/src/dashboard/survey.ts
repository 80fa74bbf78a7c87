import type { TetherServer } from '../server.js';
import type { Monitor } from './monitor.js';
import { orderKey, orderPeers, type PeerOrder, type PeerQuery, STATIC_SORTS } from './peer-view.js';

/** Sums over every session of what only the sessions know, expired ones included for bytes. */
export interface SessionSums {
  bytesIn: number;
  bytesOut: number;
  outboxMessages: number;
  outboxBytes: number;
  /** Monotonic ms (`performance.now()`) of the pass they come from. */
  at: number;
}

/**
 * Share of one core the passes over all sessions may take, for the sums and for the orders
 * each: a pass that costs 2 ms (about 10,000 sessions) is taken at most every 20 s, one that
 * costs 0.02 ms (a few hundred sessions) at every ask. Separate, so neither waits for the other.
 */
export const SURVEY_CPU_SHARE = 0.0001;

// Orders kept for the views asked for (each open page asks for one); more are dropped, oldest
// asked first.
const MAX_ORDERS = 32;

/**
 * CPU time spent on passes, against {@link SURVEY_CPU_SHARE}: work may start while the time
 * spent stays within the share of the time gone by (no saving up while idle); what a pass costs
 * then puts the next one off by its cost divided by the share.
 */
class CpuBudget {
  readonly #share: number;
  /** ms of CPU the passes are ahead of their share (0 or less: a pass may start). */
  #debt = 0;
  #at: number;

  constructor(share: number, now: number) {
    this.#share = share;
    this.#at = now;
  }

  allows(now: number): boolean {
    this.#debt = Math.max(0, this.#debt - (now - this.#at) * this.#share);
    this.#at = now;
    return this.#debt === 0;
  }

  spend(ms: number): void {
    this.#debt += ms;
  }
}

/**
 * The process's CPU time in ms: what a pass is charged. Wall time would charge it for the time
 * its thread waited for a core too: on a loaded machine a pass of a few sessions descheduled for
 * 5 ms put the next one off by 50 s (new sessions missing from the page that long).
 */
function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

interface KeptOrder {
  query: PeerQuery;
  order: PeerOrder;
  /** `monitor.membership` when it was taken. */
  membership: number;
}

/**
 * The passes over every session, the dashboard's one cost that grows with the number of
 * clients: the sums of bytes and outboxes (for the page's totals and `/metrics`) and the
 * table's orders. They are taken on demand, shared by the live page and `/metrics`, and no more
 * often than keeps their CPU time within {@link SURVEY_CPU_SHARE}: with many sessions those
 * sums and the orders by a changing column refresh less often than the page (whose visible rows
 * and counters stay live). An order by client id, address or state, filtered or not, is kept
 * until a session opens, ends, connects or disconnects: at rest it costs nothing.
 */
export class Surveyor {
  readonly #server: TetherServer;
  readonly #monitor: Monitor;
  readonly #now: () => number;
  readonly #cpuTime: () => number;
  readonly #sumsBudget: CpuBudget;
  readonly #ordersBudget: CpuBudget;
  #sums: SessionSums | undefined;
  readonly #orders = new Map<string, KeptOrder>();

  constructor(
    server: TetherServer,
    monitor: Monitor,
    options: { share?: number; now?: () => number; cpuTime?: () => number } = {},
  ) {
    this.#server = server;
    this.#monitor = monitor;
    this.#now = options.now ?? (() => performance.now());
    this.#cpuTime = options.cpuTime ?? processCpuMs;
    const share = options.share ?? SURVEY_CPU_SHARE;
    this.#sumsBudget = new CpuBudget(share, this.#now());
    this.#ordersBudget = new CpuBudget(share, this.#now());
  }

  /** The last sums if younger than `maxAgeMs` or if the CPU share allows no new pass yet. */
  sums(maxAgeMs: number): SessionSums {
    const now = this.#now();
    const last = this.#sums;
    if (last !== undefined && (now - last.at < maxAgeMs || !this.#sumsBudget.allows(now))) {
      return last;
    }
    const retired = this.#monitor.retiredBytes();
    let bytesIn = retired.bytesIn;
    let bytesOut = retired.bytesOut;
    let outboxMessages = 0;
    let outboxBytes = 0;
    const cpuFrom = this.#cpuTime();
    for (const peer of this.#server.peers) {
      const stats = peer.stats();
      bytesIn += stats.bytesIn;
      bytesOut += stats.bytesOut;
      outboxMessages += stats.queueDepth;
      outboxBytes += stats.queueBytes;
    }
    const sums = { bytesIn, bytesOut, outboxMessages, outboxBytes, at: now };
    this.#sums = sums;
    this.#sumsBudget.spend(this.#cpuTime() - cpuFrom);
    return sums;
  }

  /**
   * The sessions `query` matches, in its order (its page is cut from it). A view not seen
   * before is ordered at once. Kept ones are ordered again when they may have changed (by a
   * changing column: older than `maxAgeMs`; by a fixed one: sessions changed) and the CPU share
   * allows, the one that waited longest first, so every view open gets its turn.
   */
  order(query: PeerQuery, maxAgeMs: number): PeerOrder {
    const key = orderKey(query);
    const kept = this.#orders.get(key);
    if (kept === undefined) return this.#reorder(key, query).order;
    // Most recently asked last: the first one is the one dropped.
    this.#orders.delete(key);
    this.#orders.set(key, kept);
    const now = this.#now();
    let due: [string, KeptOrder] | undefined;
    for (const entry of this.#orders) {
      const [, { query: q, order, membership }] = entry;
      const stale = STATIC_SORTS.has(q.sort)
        ? membership !== this.#monitor.membership
        : now - order.at >= maxAgeMs;
      if (stale && (due === undefined || order.at < due[1].order.at)) due = entry;
    }
    if (due !== undefined && this.#ordersBudget.allows(now)) this.#reorder(due[0], due[1].query);
    return (this.#orders.get(key) as KeptOrder).order;
  }

  #reorder(key: string, query: PeerQuery): KeptOrder {
    const now = this.#now();
    const cpuFrom = this.#cpuTime();
    const membership = this.#monitor.membership;
    const kept = { query, order: orderPeers(this.#server.peers, query, now), membership };
    this.#orders.set(key, kept);
    if (this.#orders.size > MAX_ORDERS) {
      this.#orders.delete(this.#orders.keys().next().value as string);
    }
    this.#ordersBudget.spend(this.#cpuTime() - cpuFrom);
    return kept;
  }
}
