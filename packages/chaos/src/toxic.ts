/** Kinds of toxics; attribute names follow Toxiproxy's where Toxiproxy has the toxic. */
export const ToxicType = {
  LATENCY: 'latency',
  BANDWIDTH: 'bandwidth',
  SLICER: 'slicer',
  LIMIT_DATA: 'limit_data',
  TIMEOUT: 'timeout',
  BLACKHOLE: 'blackhole',
  HALF_OPEN: 'half_open',
  RESET_PEER: 'reset_peer',
  SLOW_CLOSE: 'slow_close',
  DROP: 'drop',
} as const;
export type ToxicType = (typeof ToxicType)[keyof typeof ToxicType];

/**
 * Which way a toxic acts: upstream is client -> target, downstream is target -> client, both is
 * one independent copy of the toxic on each.
 */
export const Direction = {
  UPSTREAM: 'upstream',
  DOWNSTREAM: 'downstream',
  BOTH: 'both',
} as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** One way data flows through a link. */
export type Flow = 'upstream' | 'downstream';

/** Fields every toxic definition has. */
export interface ToxicOptions {
  direction: Direction;
  /**
   * Probability in [0, 1] that the toxic applies to a given link, drawn from the seeded PRNG once
   * per link, when the link opens or the toxic is added. Default 1 (every link).
   */
  toxicity?: number;
  /** Id to use instead of a generated one (`latency-1`, ...); must be unique in the proxy. */
  name?: string;
}

/** Delays every chunk by `latency` ms plus a uniform ±`jitter` ms; order is kept. */
export interface LatencyToxic extends ToxicOptions {
  type: 'latency';
  latency: number;
  jitter?: number;
}

/** Passes at most `rate` KB/s (1 KB = 1000 bytes, as in Toxiproxy). */
export interface BandwidthToxic extends ToxicOptions {
  type: 'bandwidth';
  rate: number;
}

/**
 * Cuts data into pieces of `average_size` ± `size_variation` bytes, written `delay` microseconds
 * apart (separate writes on a no-delay socket).
 */
export interface SlicerToxic extends ToxicOptions {
  type: 'slicer';
  average_size: number;
  size_variation?: number;
  delay?: number;
}

/** Lets exactly `bytes` bytes through in this direction, then closes the link. */
export interface LimitDataToxic extends ToxicOptions {
  type: 'limit_data';
  bytes: number;
}

/** Stops all data; closes the link `timeout` ms later, or never when `timeout` is 0. */
export interface TimeoutToxic extends ToxicOptions {
  type: 'timeout';
  timeout?: number;
}

/** Silently drops all data and end-of-stream; the proxy keeps both sockets open. */
export interface BlackholeToxic extends ToxicOptions {
  type: 'blackhole';
}

/** A black hole in one direction only (never 'both'): the other direction keeps flowing. */
export interface HalfOpenToxic extends ToxicOptions {
  type: 'half_open';
  direction: 'upstream' | 'downstream';
}

/** Data flows for `timeout` ms after the toxic applies, then both sockets get a TCP RST. */
export interface ResetPeerToxic extends ToxicOptions {
  type: 'reset_peer';
  timeout?: number;
}

/** Holds end-of-stream (FIN) for `delay` ms before passing it on. */
export interface SlowCloseToxic extends ToxicOptions {
  type: 'slow_close';
  delay: number;
}

/**
 * Discards what is read in this direction while it is active, on a link that stays open: a faulty
 * middlebox or proxy that loses a stretch of traffic while both TCP connections live on. Each chunk
 * (a read from the socket, or a piece from a toxic ahead of it) is dropped whole, with probability
 * `probability`; end-of-stream always passes. Active from `after` ms after the toxic applies, for
 * `duration` ms (0: until removed).
 */
export interface DropToxic extends ToxicOptions {
  type: 'drop';
  /** Chance in [0, 1] that each chunk read while active is dropped, seeded. Default 1 (all). */
  probability?: number;
  /** Milliseconds from when the toxic applies to when it starts dropping. Default 0. */
  after?: number;
  /** Milliseconds it drops for, then lets everything through; 0 (default) until removed. */
  duration?: number;
}

/** What `addToxic()` and `parseToxic()` take and give. */
export type ToxicDefinition =
  | LatencyToxic
  | BandwidthToxic
  | SlicerToxic
  | LimitDataToxic
  | TimeoutToxic
  | BlackholeToxic
  | HalfOpenToxic
  | ResetPeerToxic
  | SlowCloseToxic
  | DropToxic;

type Resolved<D> = Readonly<Required<Omit<D, 'name'>> & { id: string }>;

/** A toxic installed in a proxy: its id and every attribute, defaults filled in. */
export type Toxic =
  | Resolved<LatencyToxic>
  | Resolved<BandwidthToxic>
  | Resolved<SlicerToxic>
  | Resolved<LimitDataToxic>
  | Resolved<TimeoutToxic>
  | Resolved<BlackholeToxic>
  | Resolved<HalfOpenToxic>
  | Resolved<ResetPeerToxic>
  | Resolved<SlowCloseToxic>
  | Resolved<DropToxic>;

interface AttributeRule {
  /** Undefined means required. */
  default?: number;
  integer?: boolean;
  /** Smallest allowed value (default 0). */
  min?: number;
  /** Largest allowed value (default none). */
  max?: number;
}

/** Attributes each type accepts; every one is a finite number >= its minimum. */
const ATTRIBUTES: Record<ToxicType, Record<string, AttributeRule>> = {
  latency: { latency: {}, jitter: { default: 0 } },
  bandwidth: { rate: { min: Number.MIN_VALUE } },
  slicer: {
    average_size: { integer: true, min: 1 },
    size_variation: { integer: true, default: 0 },
    delay: { default: 0 },
  },
  limit_data: { bytes: { integer: true } },
  timeout: { timeout: { default: 0 } },
  blackhole: {},
  half_open: {},
  reset_peer: { timeout: { default: 0 } },
  slow_close: { delay: {} },
  drop: { probability: { default: 1, max: 1 }, after: { default: 0 }, duration: { default: 0 } },
};

const COMMON_KEYS = new Set(['type', 'direction', 'toxicity', 'name']);

/** True for a known toxic type name. */
export function isToxicType(value: unknown): value is ToxicType {
  return typeof value === 'string' && Object.hasOwn(ATTRIBUTES, value);
}

/** True for 'upstream', 'downstream' or 'both'. */
export function isDirection(value: unknown): value is Direction {
  return value === 'upstream' || value === 'downstream' || value === 'both';
}

/**
 * Checks a definition and fills in defaults. Throws a TypeError that says what was expected for an
 * unknown type, a bad direction or toxicity, a missing, unknown or out-of-range attribute.
 */
export function resolveToxic(definition: ToxicDefinition, id: string): Toxic {
  if (typeof definition !== 'object' || definition === null) {
    throw new TypeError(`toxic must be an object, got ${String(definition)}`);
  }
  const input = definition as unknown as Record<string, unknown>;
  const type = input.type;
  if (!isToxicType(type)) {
    throw new TypeError(
      `toxic type must be one of ${Object.keys(ATTRIBUTES).join(', ')}, got ${String(type)}`,
    );
  }
  const direction = input.direction;
  if (!isDirection(direction)) {
    throw new TypeError(
      `${type}: direction must be upstream, downstream or both, got ${String(direction)}`,
    );
  }
  if (type === 'half_open' && direction === 'both') {
    throw new TypeError('half_open: direction must be upstream or downstream, not both');
  }
  const toxicity = input.toxicity ?? 1;
  if (typeof toxicity !== 'number' || !(toxicity >= 0 && toxicity <= 1)) {
    throw new TypeError(`${type}: toxicity must be a number from 0 to 1, got ${String(toxicity)}`);
  }
  const rules = ATTRIBUTES[type];
  for (const key of Object.keys(input)) {
    if (!COMMON_KEYS.has(key) && !Object.hasOwn(rules, key) && input[key] !== undefined) {
      const known = Object.keys(rules);
      throw new TypeError(
        `${type}: unknown attribute ${key} (${type} takes ${known.length > 0 ? known.join(', ') : 'no attributes'})`,
      );
    }
  }
  const resolved: Record<string, unknown> = { id, type, direction, toxicity };
  for (const [key, rule] of Object.entries(rules)) {
    const value = input[key] ?? rule.default;
    if (value === undefined) throw new TypeError(`${type}: attribute ${key} is required`);
    const min = rule.min ?? 0;
    const max = rule.max ?? Number.POSITIVE_INFINITY;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      value >= min &&
      value <= max &&
      (!rule.integer || Number.isInteger(value));
    if (!ok) {
      const what = rule.integer ? 'an integer' : 'a finite number';
      const range =
        rule.max !== undefined
          ? `from ${min} to ${max}`
          : min === Number.MIN_VALUE
            ? '> 0'
            : `>= ${min}`;
      throw new TypeError(`${type}: ${key} must be ${what} ${range}, got ${String(value)}`);
    }
    resolved[key] = value;
  }
  if (type === 'slicer') {
    const average = resolved.average_size as number;
    const variation = resolved.size_variation as number;
    if (variation >= average) {
      throw new TypeError(
        `slicer: size_variation must be smaller than average_size (${average}), got ${variation}`,
      );
    }
  }
  return resolved as unknown as Toxic;
}
