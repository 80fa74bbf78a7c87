// The command line of `pnpm bench` and what it selects.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_SCENARIOS,
  DEFAULT_SYSTEMS,
  SCENARIOS,
  type ScenarioName,
  SYSTEMS,
  type SystemName,
} from '../lib/common.js';
import { NATS_SERVER } from '../systems/nats.js';

export interface Options {
  /** `--smoke`: tether and raw-net, throughput at 128 B, 3 short repetitions (a test runs it). */
  smoke: boolean;
  /** `--quick` (and `--smoke`): shorter runs, the same tables. */
  quick: boolean;
  /** `--profile`: --cpu-prof every worker into <out>/profiles/. */
  profile: boolean;
  /** `--source`: Tether from its TypeScript sources through tsx, not its built packages. */
  fromSource: boolean;
  outDir: string;
  systems: SystemName[];
  scenarios: ScenarioName[];
  /** `--sizes 128,1024`: throughput payloads (default: runner/message-cells.ts). */
  sizes: number[] | undefined;
  /** `--rounds N`: dashboard-cost's rounds of paired windows in each part (default: its plan). */
  rounds: number | undefined;
  /**
   * `--attribution perf`: dashboard-cost's profiled windows sample the server's CPU with
   * `perf record` (lib/perf-share.ts) instead of V8's wall-time sampler (`v8`, the default).
   */
  attribution: 'v8' | 'perf';
  /** What the report must say about how this run was made. */
  notes: string[];
}

export function parseOptions(argv: string[], benchDir: string): Options {
  const flag = (name: string) => argv.includes(name);
  const option = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = <T extends string>(name: string, known: readonly T[]): T[] | undefined => {
    const value = option(name);
    if (value === undefined) return undefined;
    const items = value.split(',');
    const unknown = items.filter((x) => !known.includes(x as T));
    if (unknown.length) {
      throw new Error(
        `${name}: unknown ${unknown.join(', ')} (expected some of ${known.join(', ')})`,
      );
    }
    return items as T[];
  };
  const smoke = flag('--smoke');
  const notes: string[] = [];
  const fromSource = flag('--source');
  if (fromSource) {
    notes.push(
      'Tether ran from its TypeScript sources through tsx (--source), not from its built packages: slower than as installed.',
    );
  }
  let systems =
    list('--systems', SYSTEMS) ?? (smoke ? ['tether', 'raw-net'] : [...DEFAULT_SYSTEMS]);
  if (!existsSync(NATS_SERVER) && systems.includes('nats')) {
    notes.push(`nats-server is not installed (${NATS_SERVER}): the nats system was skipped.`);
    systems = systems.filter((s) => s !== 'nats');
  }
  const sizes = option('--sizes')?.split(',').map(Number);
  if (sizes?.some((s) => !Number.isInteger(s) || s <= 12)) {
    // 12 bytes is a barrier's length (lib/common.ts): a payload must not look like one.
    throw new Error('--sizes: integers above 12 expected');
  }
  const rounds = option('--rounds') === undefined ? undefined : Number(option('--rounds'));
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0)) {
    throw new Error('--rounds: a positive integer expected');
  }
  const attribution = option('--attribution') ?? 'v8';
  if (attribution !== 'v8' && attribution !== 'perf') {
    throw new Error('--attribution: v8 or perf expected');
  }
  return {
    smoke,
    quick: smoke || flag('--quick'),
    profile: flag('--profile'),
    fromSource,
    outDir: option('--out') ?? join(benchDir, 'results'),
    systems,
    scenarios: list('--scenarios', SCENARIOS) ?? (smoke ? ['throughput'] : [...DEFAULT_SCENARIOS]),
    sizes,
    rounds,
    attribution,
    notes,
  };
}
