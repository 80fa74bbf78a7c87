import * as net from 'node:net';
import { ErrorCode, TetherClient } from '@tether/client';
import { encodeError, PREFACE } from '@tether/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, tether } from './spawn.js';

// What a peer must never get onto our terminal raw: controls (C0, DEL, C1), bidi controls,
// invisible format characters and line separators (the newlines between lines aside).
const RAW_UNSAFE = /(?!\n)[\p{Cc}\p{Cf}\u2028\u2029]/u;

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

const clients: TetherClient[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  for (const server of servers.splice(0)) server.close();
  await killAll();
});

// Spawned processes compile the CLI through tsx: allow for a loaded machine.
describe('cli - strings from peers are printed escaped', { timeout: 30_000 }, () => {
  it('serve - client ids and message text cannot forge or reorder lines', async () => {
    const server = tether(['serve', '--port', '0', '--secret', 'right']);
    const [, port] = await server.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    const clientId = 'x\x1b[2J\nconnect forged 127.0.0.1:1\u202e\x9b';
    const client = new TetherClient({ port: Number(port), secret: 'right', clientId });
    clients.push(client);
    await client.connect();
    await client.send('hi\u202egnp.exe\u2066\u200b\x85');
    await server.waitFor(/^message /m);
    const out = server.stdout();
    expect(out).not.toMatch(RAW_UNSAFE);
    const id = '"x\\x1b[2J\\nconnect forged 127.0.0.1:1\\u202e\\x9b"';
    expect(out).toMatch(
      new RegExp(`^connect [0-9a-f]{8} ${escapeRegExp(id)} 127\\.0\\.0\\.1:\\d+$`, 'm'),
    );
    expect(out).toContain(`from ${id}: "hi\\u202egnp.exe\\u2066\\u200b\\x85"`);
    expect(lines(out).filter((line) => line.startsWith('connect'))).toHaveLength(1);
  });

  it('serve - failed authentications from one address: 5 error lines, then a count', async () => {
    const server = tether(['serve', '--port', '0', '--secret', 'right']);
    const [, port] = await server.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    const attempts = Array.from({ length: 12 }, (_, i) => {
      const client = new TetherClient({
        port: Number(port),
        secret: 'wrong',
        clientId: `bad-${i}`,
      });
      clients.push(client);
      return client.connect().then(
        () => 'connected',
        (error: { code?: string }) => error.code,
      );
    });
    expect(await Promise.all(attempts)).toEqual(attempts.map(() => ErrorCode.AUTH_FAILED));
    // A good client after them: its message line comes after their error lines.
    const good = new TetherClient({ port: Number(port), secret: 'right', clientId: 'good' });
    clients.push(good);
    await good.connect();
    await good.send('after the flood');
    await server.waitFor(/^message good:1 from good: "after the flood"$/m);
    const errorLines = lines(server.stdout()).filter((line) => line.startsWith('error '));
    expect(errorLines).toHaveLength(5);
    for (const line of errorLines) {
      expect(line).toMatch(/^error 127\.0\.0\.1:\d+: AUTH_FAILED authentication failed$/);
    }
    // The window's summary comes when it ends (10 s) or, as here, when the server stops.
    await server.kill();
    expect(server.stdout()).toMatch(
      /^error 127\.0\.0\.1: 7 more errors suppressed in the last 10\.0 s$/m,
    );
  });

  it('send - a server cannot forge lines through its error messages', async () => {
    // A hostile server: answers every connection with an ERROR whose message holds a newline,
    // an escape sequence and a bidi override.
    const hostile = net.createServer((socket) => {
      socket.on('error', () => {});
      const message = 'bad\nforged line\x1b[31m\u202e';
      socket.end(Buffer.concat([PREFACE, encodeError({ code: ErrorCode.AUTH_FAILED, message })]));
    });
    servers.push(hostile);
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    const { port } = hostile.address() as net.AddressInfo;
    const send = tether(['send', `127.0.0.1:${port}`, 'hi', '--timeout', '5s']);
    expect(await send.exited).toBe(1);
    const out = send.stdout();
    expect(out).not.toMatch(RAW_UNSAFE);
    expect(out).toContain('bad\\nforged line\\x1b[31m\\u202e');
    expect(lines(out).some((line) => line.startsWith('forged'))).toBe(false);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
