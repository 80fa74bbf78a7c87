// nats.js against nats-server (Debian's package); the receiving application is a subscriber in
// the server worker. Publishes are fire-and-forget.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { sleep } from '../lib/common.js';
import { type ClientOptions, type ServerOptions, type System, Window } from './types.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error('nats-server did not start');
}

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export const nats: System = {
  async startServer(options: ServerOptions) {
    const port = await freePort();
    const conf = join(tmpdir(), `tether-bench-nats-${process.pid}.conf`);
    writeFileSync(
      conf,
      `listen: 127.0.0.1:${port}\nmax_payload: 4MB\nmax_connections: 30000\nmax_pending: 256MB\n`,
    );
    const child: ChildProcess = spawn(NATS_SERVER, ['-c', conf], { stdio: 'ignore' });
    process.on('exit', () => child.kill('SIGKILL'));
    await waitForPort(port);
    const nc = await connect({ servers: `127.0.0.1:${port}` });
    const reply = (d: Buffer) => nc.publish('bench.out', d);
    nc.subscribe('bench.in', {
      callback: (_err, msg) => options.handler(toBuffer(msg.data), reply),
    });
    await nc.flush();
    return {
      port,
      memoryPid: child.pid as number,
      helpers: [{ name: 'nats-server', pid: child.pid as number }],
      close: async () => {
        child.kill('SIGTERM');
        await nc.close().catch(() => {});
      },
    };
  },
  async connect(options: ClientOptions) {
    const nc = await connect({ servers: `127.0.0.1:${options.port}` });
    const window = new Window();
    const dead: ((reason: string) => void)[] = [];
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'staleConnection') {
          for (const cb of dead) cb(s.type);
        }
      }
    })().catch(() => {});
    return {
      send(data) {
        nc.publish('bench.in', data);
        return window.due(data.length) ? window.push(nc.flush()) : undefined;
      },
      async flush() {
        await nc.flush();
        await window.drain();
      },
      onMessage(cb) {
        nc.subscribe('bench.out', { callback: (_err, msg) => cb(toBuffer(msg.data)) });
      },
      onDead(cb) {
        dead.push(cb);
      },
      close: () => nc.close(),
    };
  },
};
