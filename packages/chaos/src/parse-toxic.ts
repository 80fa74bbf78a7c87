import { resolveToxic, type ToxicDefinition } from './toxic.js';

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * Parses a command-line toxic spec, `type:direction[:key=value,key=value...]`:
 *
 * ```
 * latency:downstream:latency=100,jitter=20
 * blackhole:both
 * limit_data:upstream:bytes=1000
 * slicer:both:average_size=8,size_variation=4,delay=100
 * latency:both:latency=50,toxicity=0.5,name=slow
 * drop:downstream:after=5000,duration=1000
 * ```
 *
 * Values are numbers, except `name`. Throws a TypeError that names the problem for a malformed
 * spec, an unknown type, direction or attribute, or a value out of range.
 */
export function parseToxic(spec: string): ToxicDefinition {
  if (typeof spec !== 'string') {
    throw new TypeError(`toxic spec must be a string, got ${typeof spec}`);
  }
  const fail = (why: string): never => {
    throw new TypeError(
      `bad toxic spec ${JSON.stringify(spec)}: ${why} (expected type:direction[:key=value,...])`,
    );
  };
  const parts = spec.trim().split(':');
  if (parts.length < 2 || parts.length > 3) fail('wrong number of ":"-separated parts');
  const [type = '', direction = '', attributes] = parts;
  if (type === '') fail('missing type');
  if (direction === '') fail('missing direction');
  const definition: Record<string, unknown> = { type, direction };
  if (attributes !== undefined) {
    if (attributes.trim() === '') fail('empty attribute list');
    for (const pair of attributes.split(',')) {
      const eq = pair.indexOf('=');
      const key = pair.slice(0, eq).trim();
      const raw = pair.slice(eq + 1).trim();
      if (eq < 0 || key === '' || raw === '')
        fail(`attribute ${JSON.stringify(pair)} is not key=value`);
      if (Object.hasOwn(definition, key)) fail(`attribute ${key} given twice`);
      if (key === 'type' || key === 'direction') fail(`${key} cannot be an attribute`);
      if (key === 'name') {
        definition[key] = raw;
        continue;
      }
      if (!NUMBER.test(raw)) fail(`${key}=${raw} is not a number`);
      definition[key] = Number(raw);
    }
  }
  const result = definition as unknown as ToxicDefinition;
  try {
    resolveToxic(result, 'spec');
  } catch (error) {
    fail((error as Error).message);
  }
  return result;
}
