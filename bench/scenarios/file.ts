// file: one large file end to end. Tether: sendFile() (chunks with CRC32, SHA-256 verified, temp
// file, fsync, rename) into the server's uploadDir. raw-net, raw-tls: the bytes piped over a socket
// into a file, fsynced; the client checks the stored copy's SHA-256 after the clock stops. The
// runner (runner/file-cells.ts) decides the repetitions.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, utimesSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { TetherClient } from '@tether/client';
import type { WorkerArgs } from '../lib/common.js';
import { type SpanResult, startSpan } from '../lib/span.js';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The name of run `run`'s stored copy in the raw receiver's folder. */
const rawName = (run: number) => `raw-${run}.bin`;

/**
 * The raw receiver: a 12-byte head (u64 size, u32 run), then the bytes into a file; answers one
 * byte once the file is fsynced. With `tlsOptions`, over TLS (raw-tls).
 */
export async function startRawFileServer(
  uploadDir: string,
  tlsOptions?: { cert: string; key: string },
): Promise<{ port: number; close: () => Promise<void> }> {
  const receive = (socket: net.Socket) => {
    let head = Buffer.alloc(0);
    let out: ReturnType<typeof createWriteStream> | undefined;
    let path = '';
    let size = 0;
    let got = 0;
    socket.on('data', (data: Buffer) => {
      let chunk = data;
      if (!out) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 12) return;
        size = Number(head.readBigUInt64BE(0));
        path = join(uploadDir, rawName(head.readUInt32BE(8)));
        out = createWriteStream(path, { highWaterMark: 1024 * 1024 });
        chunk = head.subarray(12);
      }
      got += chunk.length;
      const file = out;
      if (!file.write(chunk)) {
        socket.pause();
        file.once('drain', () => socket.resume());
      }
      if (got >= size) {
        file.end(async () => {
          const fh = await open(path, 'r+');
          await fh.sync();
          await fh.close();
          socket.end(Buffer.from([1]));
        });
      }
    });
    socket.on('error', () => {});
  };
  const server = tlsOptions
    ? tls.createServer({ ...tlsOptions, minVersion: 'TLSv1.2' }, receive)
    : net.createServer(receive);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function rawSend(
  port: number,
  path: string,
  size: number,
  run: number,
  ca: string | undefined,
): Promise<SpanResult> {
  const span = startSpan();
  const socket = ca
    ? tls.connect({ host: '127.0.0.1', port, ca, minVersion: 'TLSv1.2' })
    : net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => socket.once(ca ? 'secureConnect' : 'connect', resolve));
  const head = Buffer.alloc(12);
  head.writeBigUInt64BE(BigInt(size));
  head.writeUInt32BE(run, 8);
  socket.write(head);
  createReadStream(path, { highWaterMark: 256 * 1024 }).pipe(socket, { end: false });
  let result: SpanResult | undefined;
  await new Promise<void>((resolve) => {
    socket.on('data', () => {
      result ??= span.end();
    });
    socket.on('end', resolve);
  });
  socket.destroy();
  if (!result) throw new Error('raw file: no answer from the receiver');
  return result;
}

/**
 * Deletes a stored copy once it is checked, for every system. Each run then writes into page-cache
 * pages the previous run freed; kept, the copies pile up (6 x 256 MiB per system) and every run
 * takes fresh pages, which on a VM costs the host a page fault per page. Which system ran second
 * (and got the first one's pages once its folder was deleted) then decided a good part of the
 * ratio: tether,raw-net gave 0.38-0.40x where raw-net,tether gave 0.67-0.84x for the same code.
 */
async function forget(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** The file to send: its path, size and SHA-256 (hex). */
export interface SourceFile {
  path: string;
  size: number;
  sha256: string;
}

export interface FileOps {
  /** Sends the file once as run `run` (a fresh transfer), checks the stored copy, deletes it. */
  send(params: { run: number; file: SourceFile }): Promise<SpanResult>;
  close(): Promise<void>;
}

export async function fileOps(args: WorkerArgs): Promise<FileOps> {
  const port = args.port as number;
  const uploadDir = args.uploadDir as string;
  const check = async (stored: string, file: SourceFile) => {
    const digest = await sha256File(stored).catch(() => 'missing');
    await forget(stored);
    if (digest !== file.sha256) throw new Error(`${args.system} file: SHA-256 mismatch`);
  };
  if (args.system === 'raw-net' || args.system === 'raw-tls') {
    const ca = args.system === 'raw-tls' ? args.tls?.cert : undefined;
    return {
      async send({ run, file }) {
        const result = await rawSend(port, file.path, file.size, run, ca);
        await check(join(uploadDir, rawName(run)), file);
        return result;
      },
      close: async () => {},
    };
  }
  const client = new TetherClient({
    host: '127.0.0.1',
    port,
    ...(args.tls ? { tls: { ca: args.tls.cert } } : {}),
  });
  client.on('error', () => {});
  await client.connect();
  return {
    async send({ run, file }) {
      // A new mtime gives a new transfer id, so each run is a fresh transfer, not a resume.
      const t = new Date(Date.now() + run * 1000);
      utimesSync(file.path, t, t);
      const span = startSpan();
      await client.sendFile(file.path, { name: `run-${run}.bin` }).done;
      const result = span.end();
      await check(join(uploadDir, `run-${run}.bin`), file);
      return result;
    },
    close: () => client.close(),
  };
}
