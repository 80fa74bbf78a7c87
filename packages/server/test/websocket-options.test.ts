import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { resolveWebSocketOptions } from '../src/websocket-options.js';

describe('websocket options', () => {
  it('websocket options - defaults: /tether, same origin only, the socket address', () => {
    const resolved = resolveWebSocketOptions({});
    expect(resolved).toMatchObject({ port: 0, path: '/tether', trustForwardedFor: false });
    expect(resolved.allowOrigin('http://app.example:8080', 'app.example:8080')).toBe(true);
    expect(resolved.allowOrigin('https://app.example', 'app.example')).toBe(true);
    expect(resolved.allowOrigin('https://evil.example', 'app.example')).toBe(false);
    expect(resolved.allowOrigin('null', 'app.example')).toBe(false);
    expect(resolved.allowOrigin('http://app.example', undefined)).toBe(false);
  });

  it('websocket options - origins as a list (any case), any, or a function', () => {
    const listed = resolveWebSocketOptions({ origins: ['https://App.example'] });
    expect(listed.allowOrigin('https://app.example', 'x')).toBe(true);
    expect(listed.allowOrigin('http://app.example', 'x')).toBe(false);
    expect(resolveWebSocketOptions({ origins: '*' }).allowOrigin('https://any.example', 'x')).toBe(
      true,
    );
    const decided = resolveWebSocketOptions({ origins: (o) => o.endsWith('.trusted.example') });
    expect(decided.allowOrigin('https://a.trusted.example', 'x')).toBe(true);
    expect(decided.allowOrigin('https://a.example', 'x')).toBe(false);
  });

  it('websocket options - a bad option throws a TypeError naming it', () => {
    const server = http.createServer();
    expect(() => resolveWebSocketOptions({ port: 80, server })).toThrow(/port or server/);
    expect(() => resolveWebSocketOptions({ path: 'tether' })).toThrow(/webSocket.path/);
    expect(() => resolveWebSocketOptions({ port: 70_000 })).toThrow(/webSocket.port/);
    expect(() => resolveWebSocketOptions({ origins: 'https://a' as never })).toThrow(
      /webSocket.origins/,
    );
    expect(() => resolveWebSocketOptions(null as never)).toThrow(TypeError);
  });
});
