// What a cell's repetitions say: the order systems take in each repetition, ratios of systems
// within each repetition (both ran within seconds of each other, so a disturbance of the machine
// falls on both) with their median, and the flags of a cell whose runs disagree by more than 2x.
import { type Flag, median, type Ratio } from './common.js';

/** Peer systems (not Tether, not the raw limits). */
export const PEERS: readonly string[] = ['ws', 'socket.io', 'mqtt-qos0', 'mqtt-qos1', 'nats'];

/** The systems whose ratios the report is about. */
export const SUBJECTS: readonly string[] = [
  'tether',
  'tether-tls',
  'tether-watched',
  'tether-twin',
  'tether-cluster',
  'tether-ws',
  'tether-publish',
];

/** Runs (or ratios) further apart than this flag their cell. */
export const DISAGREEMENT = 2;

export interface Repetition {
  /** The systems in the order they ran. */
  order: string[];
  /** The cell's metric for each system that ran. */
  values: Record<string, number>;
}

/** The systems in the order of repetition `n`: rotated by n, so each takes every position. */
export function rotated<T>(items: readonly T[], n: number): T[] {
  if (items.length === 0) return [];
  const k = n % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** The practical limit a system is compared with: raw-tls for tether-tls, else raw-net. */
export function limitOf(system: string): string | undefined {
  if (system === 'raw-net') return undefined;
  // A reference itself, of the traffic it sends: against raw-net it would say nothing new.
  if (system === 'raw-net-heartbeat') return undefined;
  if (system === 'tether-tls') return 'raw-tls';
  return 'raw-net';
}

/** Whom `system` is compared with, of the systems present: its limit, the best peer, and for
 *  tether every peer, for tether-tls, tether-watched, tether-twin and tether-cluster tether (what
 *  TLS, what a watched dashboard, what sessions in Redis behind HAProxy cost; tether-twin, the
 *  same code, shows how far two identical systems measure apart in the same run), for tether-ws
 *  ws and tether (what WebSocket costs), for tether-publish nats and tether (publish() against
 *  nats.js's publish(), and what a promise per message costs); at rest, every Tether system
 *  with raw-net-heartbeat, the floor of its heartbeat traffic. */
export function comparisonsOf(system: string, present: readonly string[]): string[] {
  const against: string[] = [];
  const limit = limitOf(system);
  if (limit !== undefined && present.includes(limit)) against.push(limit);
  if (present.some((s) => PEERS.includes(s))) against.push('best peer');
  if (system === 'tether') against.push(...PEERS.filter((p) => present.includes(p)));
  // Idle: Tether against the plainest ping and echo at its heartbeat rates (the traffic's floor).
  if (system.startsWith('tether') && present.includes('raw-net-heartbeat')) {
    against.push('raw-net-heartbeat');
  }
  if (system === 'tether-ws' && present.includes('ws')) against.push('ws');
  if (system === 'tether-publish' && present.includes('nats')) against.push('nats');
  const variants = [
    'tether-tls',
    'tether-watched',
    'tether-twin',
    'tether-cluster',
    'tether-ws',
    'tether-publish',
  ];
  if (variants.includes(system) && present.includes('tether')) {
    against.push('tether');
  }
  return against;
}

/** The best peer's value in one repetition: the highest, or the lowest when lower is better. */
function bestPeer(values: Record<string, number>, higherIsBetter: boolean): number | undefined {
  const peers = Object.entries(values)
    .filter(([s]) => PEERS.includes(s))
    .map(([, v]) => v);
  if (!peers.length) return undefined;
  return higherIsBetter ? Math.max(...peers) : Math.min(...peers);
}

/**
 * Every comparison of every system, taken in each repetition where both ran. A ratio is always
 * system / against: for throughput above 1 is faster, for latency below 1 is faster.
 */
export function ratiosOf(repetitions: readonly Repetition[], higherIsBetter: boolean): Ratio[] {
  const present = [...new Set(repetitions.flatMap((r) => Object.keys(r.values)))];
  const ratios: Ratio[] = [];
  for (const system of present) {
    for (const against of comparisonsOf(system, present)) {
      const perRepetition: number[] = [];
      for (const r of repetitions) {
        const mine = r.values[system];
        const theirs =
          against === 'best peer' ? bestPeer(r.values, higherIsBetter) : r.values[against];
        if (mine !== undefined && theirs !== undefined && theirs > 0) {
          perRepetition.push(mine / theirs);
        }
      }
      if (perRepetition.length) {
        ratios.push({ system, against, perRepetition, median: median(perRepetition) });
      }
    }
  }
  return ratios;
}

/** max / min of positive values (Infinity when one is 0, 1 for fewer than two). */
export function spreadOf(values: readonly number[]): number {
  if (values.length < 2) return 1;
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min > 0 ? max / min : Number.POSITIVE_INFINITY;
}

/** Systems whose own runs, and Tether ratios whose repetitions, disagree by more than 2x. */
export function flagsOf(repetitions: readonly Repetition[], ratios: readonly Ratio[]): Flag[] {
  const flags: Flag[] = [];
  const add = (what: string, values: number[]) => {
    const spread = spreadOf(values);
    if (spread > DISAGREEMENT) {
      flags.push({ what, min: Math.min(...values), max: Math.max(...values), spread });
    }
  };
  const present = [...new Set(repetitions.flatMap((r) => Object.keys(r.values)))];
  for (const system of present) {
    add(
      system,
      repetitions.flatMap((r) => (r.values[system] === undefined ? [] : [r.values[system]])),
    );
  }
  for (const r of ratios) {
    if (SUBJECTS.includes(r.system)) add(`${r.system} vs ${r.against}`, r.perRepetition);
  }
  return flags;
}
