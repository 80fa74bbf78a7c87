import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, tether } from './spawn.js';

afterEach(killAll);

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// Each case starts a process that compiles the CLI through tsx (about a second of CPU each, and
// they all start at once): the default 5 s is too short on a loaded 2-core machine.
describe('cli - arguments', { timeout: 30_000 }, () => {
  it('cli - --help on every command exits 0', async () => {
    const commands = ['serve', 'send', 'send-file', 'ping', 'simulate', 'chaos-proxy', 'demo'];
    const runs = [tether(['--help']), ...commands.map((c) => tether([c, '--help']))];
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes).toEqual(runs.map(() => 0));
    expect(runs[0]?.stdout()).toContain('Usage: tether <command>');
    for (const [i, command] of commands.entries()) {
      expect(runs[i + 1]?.stdout()).toContain(`tether ${command}`);
    }
  });

  it('cli - bad arguments give one line on stderr and exit 2', async () => {
    const cases = [
      ['nope'],
      ['serve', '--bogus'],
      ['serve', '--port', '70000'],
      ['send'],
      ['send', '127.0.0.1:1'],
      ['ping', 'localhost'],
      ['simulate', '127.0.0.1:1', '--rate', 'fast'],
      ['simulate', '127.0.0.1:1', '--duration', '-3s'],
      ['send-file', '127.0.0.1:1', '/no/such/file'],
      ['chaos-proxy', '--target', '127.0.0.1:1', '--toxic', 'latency:sideways'],
      ['chaos-proxy'],
    ];
    const runs = cases.map((args) => tether(args));
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes).toEqual(cases.map(() => 2));
    for (const run of runs) {
      expect(run.stderr().trim().split('\n')).toHaveLength(1);
      expect(run.stderr()).toMatch(/^tether/);
    }
  });
});

describe('cli - serve with send, send-file, ping, simulate and chaos-proxy', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tether-cli-'));
  });
  afterAll(async () => {
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('cli - end to end through child processes', { timeout: 35_000 }, async () => {
    const uploads = join(dir, 'uploads');
    const server = tether(['serve', '--port', '0', '--upload-dir', uploads]);
    const [, port] = await server.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    const target = `127.0.0.1:${port}`;

    // send: delivered, and the server prints it
    const send = tether(['send', target, 'hello from the cli', 'second']);
    expect(await send.exited).toBe(0);
    expect(send.stdout()).toMatch(/delivered \S+:1 /);
    await server.waitFor(/message \S+ from \S+: "second"/);

    // send-file through a chaos proxy that slices and delays, with the hashes checked
    const proxy = tether([
      'chaos-proxy',
      '--listen',
      '127.0.0.1:0',
      '--target',
      target,
      '--toxic',
      'slicer:both:average_size=2000,size_variation=1000',
      '--toxic',
      'latency:downstream:latency=5',
    ]);
    const [, proxyPort] = await proxy.waitFor(/listening on 127\.0\.0\.1:(\d+) ->/);
    const files = [
      { name: 'one.bin', data: randomBytes(700_000) },
      { name: 'two.txt', data: Buffer.from('tether '.repeat(10_000)) },
    ];
    for (const file of files) await writeFile(join(dir, file.name), file.data);
    const sendFile = tether([
      'send-file',
      `127.0.0.1:${proxyPort}`,
      ...files.map((f) => join(dir, f.name)),
    ]);
    expect(await sendFile.exited).toBe(0);
    for (const file of files) {
      const hash = sha256(file.data);
      expect(sendFile.stdout()).toContain(`verified ${file.name} ${file.data.length} bytes`);
      expect(sendFile.stdout()).toContain(`sha256 ${hash}`);
      await server.waitFor(
        new RegExp(`file "${file.name}" ${file.data.length} bytes .* sha256 ${hash}`),
      );
      expect(sha256(await readFile(join(uploads, file.name)))).toBe(hash);
    }

    // ping: request/echo round trips
    const ping = tether(['ping', target, '--count', '3', '--interval', '50ms']);
    expect(await ping.exited).toBe(0);
    expect(ping.stdout()).toMatch(/seq=3 time=[\d.]+ ms/);
    expect(ping.stdout()).toContain('3 requests transmitted, 3 received, 0% packet loss');
    expect(ping.stdout()).toMatch(/rtt min\/avg\/max\/mdev = [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ ms/);

    // simulate: a few clients for a few seconds
    const simulate = tether([
      'simulate',
      target,
      '--clients',
      '5',
      '--rate',
      '40',
      '--duration',
      '3s',
    ]);
    expect(await simulate.exited).toBe(0);
    const out = simulate.stdout();
    expect(out).toMatch(/clients 5\/5/);
    expect(out).toMatch(/sent\s+(\d+)/);
    const sent = Number(/sent\s+(\d+)/.exec(out.slice(out.indexOf('--- simulate summary')))?.[1]);
    expect(sent).toBeGreaterThan(400);
    expect(out).toContain(`delivered    ${sent} `);
    expect(out).toMatch(/errors\s+0/);
    expect(out).toContain('result       PASS');
    await server.waitFor(/connect \S+ sim-5 /);

    // ping a port nobody listens on: no reply, exit 1
    await proxy.kill();
    const lost = tether(['ping', `127.0.0.1:${proxyPort}`, '--count', '1', '--timeout', '300ms']);
    setTimeout(() => lost.child.kill('SIGINT'), 1500);
    expect(await lost.exited).toBe(1);

    await server.kill();
    expect(server.stdout()).toContain('shutting down');
  });
});
