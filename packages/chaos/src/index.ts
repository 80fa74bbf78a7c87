export type { ChaosProxyEvents, ForwardInfo } from './events.js';
export type { LinkInfo } from './link.js';
export { parseToxic } from './parse-toxic.js';
export { deriveSeed, mulberry32, type Random } from './prng.js';
export type { ChaosProxyOptions, ChaosProxyStats } from './proxy.js';
export { ChaosProxy } from './proxy.js';
export type {
  BandwidthToxic,
  BlackholeToxic,
  DropToxic,
  Flow,
  HalfOpenToxic,
  LatencyToxic,
  LimitDataToxic,
  ResetPeerToxic,
  SlicerToxic,
  SlowCloseToxic,
  TimeoutToxic,
  Toxic,
  ToxicDefinition,
  ToxicOptions,
} from './toxic.js';
export { Direction, ToxicType } from './toxic.js';
