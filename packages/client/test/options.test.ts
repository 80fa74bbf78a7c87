import { DEFAULT_BACKOFF, MIN_MAX_FRAME } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { type ClientOptions, resolveClientOptions } from '../src/options.js';

const base: ClientOptions = { port: 7070 };
const resolve = (extra: Partial<ClientOptions>) =>
  resolveClientOptions({ ...base, ...extra } as ClientOptions);

describe('options', () => {
  it('options - fills in the documented defaults', () => {
    const resolved = resolveClientOptions({ port: 7070 });
    expect(resolved).toMatchObject({
      host: '127.0.0.1',
      port: 7070,
      tls: undefined,
      clientId: undefined,
      pingIntervalMs: 5000,
      deadAfterMs: 15_000,
      connectTimeoutMs: 10_000,
      backoff: DEFAULT_BACKOFF,
      retries: Number.POSITIVE_INFINITY,
      maxRetryTime: Number.POSITIVE_INFINITY,
      healthyAfterMs: 1000,
      maxQueuedMessages: 10_000,
      maxQueuedBytes: 64 * 1024 * 1024,
      overflow: 'reject',
      maxInFlightBytes: 8 * 1024 * 1024,
      maxFrame: 1024 * 1024,
    });
    expect(typeof resolved.now()).toBe('number');
    const r = resolved.random();
    expect(r >= 0 && r < 1).toBe(true);
  });

  it('options - keeps valid values and maps tls true to Node defaults', () => {
    const now = () => 42;
    const random = () => 0.25;
    const resolved = resolve({
      host: 'example.test',
      port: 0,
      tls: true,
      retries: 0,
      overflow: 'wait',
      backoff: { minDelayMs: 10, maxDelayMs: 40 },
      now,
      random,
    });
    expect(resolved.tls).toEqual({});
    expect(resolved.port).toBe(0);
    expect(resolved.retries).toBe(0);
    expect(resolved.overflow).toBe('wait');
    expect(resolved.backoff).toEqual({ ...DEFAULT_BACKOFF, minDelayMs: 10, maxDelayMs: 40 });
    expect(resolved.now).toBe(now);
    expect(resolved.random).toBe(random);
    expect(resolve({ tls: false }).tls).toBeUndefined();
  });

  it('options - a bad port throws a TypeError', () => {
    for (const port of [-1, 65_536, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '80']) {
      expect(() => resolve({ port: port as number }), String(port)).toThrow(TypeError);
    }
    expect(() => resolveClientOptions({} as ClientOptions)).toThrow(TypeError);
    expect(() => resolve({ port: 65_535 })).not.toThrow();
  });

  it('options - deadAfterMs must exceed pingIntervalMs', () => {
    expect(() => resolve({ pingIntervalMs: 1000, deadAfterMs: 1000 })).toThrow(TypeError);
    expect(() => resolve({ pingIntervalMs: 1000, deadAfterMs: 999 })).toThrow(TypeError);
    expect(() => resolve({ pingIntervalMs: 20_000 })).toThrow(TypeError);
    expect(() => resolve({ pingIntervalMs: 1000, deadAfterMs: 1001 })).not.toThrow();
  });

  it('options - an unknown overflow policy throws a TypeError', () => {
    for (const overflow of ['drop-newest', 'REJECT', '']) {
      expect(() => resolve({ overflow: overflow as 'reject' }), overflow).toThrow(TypeError);
    }
    for (const overflow of ['reject', 'drop-oldest', 'wait'] as const) {
      expect(resolve({ overflow }).overflow).toBe(overflow);
    }
  });

  it('options - negative or NaN retries throw a TypeError', () => {
    expect(() => resolve({ retries: -1 })).toThrow(TypeError);
    expect(() => resolve({ retries: Number.NaN })).toThrow(TypeError);
    expect(resolve({ retries: 0 }).retries).toBe(0);
    expect(resolve({ retries: Number.POSITIVE_INFINITY }).retries).toBe(Number.POSITIVE_INFINITY);
  });

  it('options - bad backoff settings throw a TypeError', () => {
    const bad = [
      { minDelayMs: -1 },
      { minDelayMs: Number.NaN },
      { minDelayMs: 100, maxDelayMs: 50 },
      { maxDelayMs: Number.POSITIVE_INFINITY },
      { factor: 0.5 },
      { factor: Number.POSITIVE_INFINITY },
      { jitter: -0.1 },
      { jitter: 1.5 },
    ];
    for (const backoff of bad) {
      expect(() => resolve({ backoff }), JSON.stringify(backoff)).toThrow(TypeError);
    }
  });

  it('options - non-positive times and sizes throw a TypeError', () => {
    const bad: Partial<ClientOptions>[] = [
      { pingIntervalMs: 0 },
      { pingIntervalMs: Number.POSITIVE_INFINITY },
      { deadAfterMs: -5 },
      { connectTimeoutMs: 0 },
      { healthyAfterMs: Number.NaN },
      { maxRetryTime: 0 },
      { maxQueuedMessages: 0 },
      { maxQueuedBytes: -1 },
      { maxInFlightBytes: Number.POSITIVE_INFINITY },
      { maxFrame: 0 },
    ];
    for (const options of bad) {
      expect(() => resolve(options), JSON.stringify(options)).toThrow(TypeError);
    }
    expect(resolve({ maxRetryTime: Number.POSITIVE_INFINITY }).maxRetryTime).toBe(
      Number.POSITIVE_INFINITY,
    );
  });

  it('options - maxFrame outside the protocol range of 16,386 bytes to 16 MiB throws a TypeError', () => {
    // PROTOCOL.md section 7: each side announces a maxFrame from 16,386 (a full control frame)
    // to 16 MiB.
    expect(() => resolve({ maxFrame: MIN_MAX_FRAME - 1 })).toThrow(TypeError);
    expect(() => resolve({ maxFrame: 16 * 1024 * 1024 + 1 })).toThrow(TypeError);
    expect(() => resolve({ maxFrame: 1000.5 })).toThrow(TypeError);
    expect(() => resolve({ maxFrame: MIN_MAX_FRAME })).not.toThrow();
    expect(() => resolve({ maxFrame: 16 * 1024 * 1024 })).not.toThrow();
  });

  it('options - a clientId the server would refuse throws a TypeError', () => {
    // PROTOCOL.md: 1 to 128 bytes of UTF-8; no lone surrogate in any string field.
    for (const clientId of ['', 'é'.repeat(65), 'a\ud800b', '\udc00']) {
      expect(() => resolve({ clientId }), JSON.stringify(clientId)).toThrow(TypeError);
    }
    expect(resolve({ clientId: 'x'.repeat(128) }).clientId).toBe('x'.repeat(128));
    expect(resolve({ clientId: 'é'.repeat(64) }).clientId).toBe('é'.repeat(64));
  });

  it('options - store: sync defaults to batch; a missing dir or an unknown sync policy throws a TypeError', () => {
    expect(resolveClientOptions({ port: 7070 }).store).toBeUndefined();
    expect(resolve({ store: { dir: 'x' } }).store).toEqual({ dir: 'x', sync: 'batch' });
    expect(resolve({ store: { dir: 'x', sync: 'never' } }).store).toEqual({
      dir: 'x',
      sync: 'never',
    });
    expect(() => resolve({ store: { dir: '' } })).toThrow(TypeError);
    expect(() => resolve({ store: {} as never })).toThrow(/store.dir/);
    expect(() => resolve({ store: { dir: 'x', sync: 'always' as never } })).toThrow(/store.sync/);
    expect(() => resolve({ store: 'dir' as never })).toThrow(TypeError);
  });

  it('options - url: ws:// or wss://, and then no port is needed', () => {
    expect(resolveClientOptions({ url: 'ws://example.com/tether' }).url).toBe(
      'ws://example.com/tether',
    );
    expect(resolveClientOptions({ url: 'wss://example.com:8443/t?x=1' }).port).toBe(0);
    for (const url of ['http://example.com/', 'tcp://x', 'not a url', 'ws://x/#frag', 42]) {
      expect(() => resolveClientOptions({ url: url as string })).toThrow(TypeError);
    }
    expect(() => resolveClientOptions({})).toThrow(/port/);
  });
});
