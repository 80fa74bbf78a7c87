import { describe, expect, it } from 'vitest';
import { ChaosProxy, deriveSeed, mulberry32, parseToxic } from '../src/index.js';

describe('parseToxic', () => {
  it('parseToxic - accepts the documented examples', () => {
    expect(parseToxic('latency:downstream:latency=100,jitter=20')).toEqual({
      type: 'latency',
      direction: 'downstream',
      latency: 100,
      jitter: 20,
    });
    expect(parseToxic('blackhole:both')).toEqual({ type: 'blackhole', direction: 'both' });
    expect(parseToxic('limit_data:upstream:bytes=1000')).toEqual({
      type: 'limit_data',
      direction: 'upstream',
      bytes: 1000,
    });
    expect(parseToxic('slicer:both:average_size=8,size_variation=4,delay=100')).toEqual({
      type: 'slicer',
      direction: 'both',
      average_size: 8,
      size_variation: 4,
      delay: 100,
    });
    expect(parseToxic(' latency:both:latency=1.5, toxicity=0.25 ,name=slow ')).toEqual({
      type: 'latency',
      direction: 'both',
      latency: 1.5,
      toxicity: 0.25,
      name: 'slow',
    });
    expect(parseToxic('reset_peer:upstream')).toEqual({
      type: 'reset_peer',
      direction: 'upstream',
    });
    expect(parseToxic('drop:both')).toEqual({ type: 'drop', direction: 'both' });
    expect(parseToxic('drop:downstream:probability=0.2,after=5000,duration=1000')).toEqual({
      type: 'drop',
      direction: 'downstream',
      probability: 0.2,
      after: 5000,
      duration: 1000,
    });
  });

  it('parseToxic - rejects garbage with a TypeError', () => {
    const bad = [
      '',
      'latency',
      'latency:',
      ':both',
      'nonsense:both',
      'latency:sideways:latency=1',
      'latency:both',
      'latency:both:',
      'latency:both:latency',
      'latency:both:latency=',
      'latency:both:latency=abc',
      'latency:both:latency=-5',
      'latency:both:latency=1,latency=2',
      'latency:both:latency=1,jiter=2',
      'latency:both:latency=1:extra',
      'latency:both:latency=1,toxicity=2',
      'limit_data:upstream:bytes=1.5',
      'slicer:both:average_size=0',
      'slicer:both:average_size=4,size_variation=4',
      'bandwidth:both:rate=0',
      'half_open:both',
      'blackhole:both:timeout=1',
      'latency:both:type=blackhole,latency=1',
      'drop:both:probability=1.5',
      'drop:both:probability=-0.1',
      'drop:upstream:duration=-1',
      'drop:upstream:after=abc',
      'drop:upstream:bytes=10',
    ];
    for (const spec of bad) {
      expect(() => parseToxic(spec), spec).toThrow(TypeError);
    }
    expect(() => parseToxic('latency:both:jiter=2,latency=1')).toThrow(/unknown attribute jiter/);
    expect(() => parseToxic('nonsense:both')).toThrow(/toxic type must be one of latency/);
    expect(() => parseToxic('drop:both:probability=2')).toThrow(
      /probability must be a finite number from 0 to 1, got 2/,
    );
  });

  it('addToxic - validates like parseToxic and rejects duplicate names', () => {
    const proxy = new ChaosProxy({ target: { port: 1 }, seed: 1 });
    expect(() => proxy.addToxic({ type: 'latency', direction: 'both' } as never)).toThrow(
      /latency is required/,
    );
    expect(() => proxy.addToxic({ type: 'bandwidth', direction: 'up' } as never)).toThrow(
      /direction/,
    );
    expect(proxy.addToxic(parseToxic('blackhole:both:name=hole'))).toBe('hole');
    expect(() => proxy.addToxic({ type: 'blackhole', direction: 'both', name: 'hole' })).toThrow(
      /already exists/,
    );
    expect(proxy.addToxic({ type: 'timeout', direction: 'upstream' })).toBe('timeout-2');
    expect(proxy.toxics[1]).toEqual({
      id: 'timeout-2',
      type: 'timeout',
      direction: 'upstream',
      toxicity: 1,
      timeout: 0,
    });
    expect(proxy.addToxic({ type: 'drop', direction: 'both' })).toBe('drop-3');
    expect(proxy.toxics[2]).toEqual({
      id: 'drop-3',
      type: 'drop',
      direction: 'both',
      toxicity: 1,
      probability: 1,
      after: 0,
      duration: 0,
    });
  });
});

describe('prng', () => {
  it('prng - mulberry32 replays the same sequence for the same seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('prng - derived seeds differ per part and are stable', () => {
    expect(deriveSeed(1, 2, 3)).toBe(deriveSeed(1, 2, 3));
    expect(new Set([deriveSeed(1, 1, 1), deriveSeed(1, 1, 2), deriveSeed(1, 2, 1)]).size).toBe(3);
    const random = mulberry32(deriveSeed(7, 1));
    let sum = 0;
    for (let i = 0; i < 10_000; i++) sum += random();
    expect(sum / 10_000).toBeGreaterThan(0.45);
    expect(sum / 10_000).toBeLessThan(0.55);
  });
});
