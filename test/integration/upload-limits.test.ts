import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ErrorCode,
  encodeFileAccept,
  encodeFileOffer,
  type Frame,
  FrameType,
} from '@tether/protocol';
import { TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import { ofType, RawClient } from '../helpers/raw-client.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(options: ConstructorParameters<typeof TetherServer>[0] = {}) {
  const uploadDir = await mkdtemp(join(tmpdir(), 'tether-uploads-'));
  cleanups.push(() => rm(uploadDir, { recursive: true, force: true }));
  const server = new TetherServer({ uploadDir, ...options });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  const { port } = await server.listen();
  return { server, port };
}

/** A raw client through the handshake, as `clientId` (identity `client:<clientId>`). */
async function session(port: number, clientId: string): Promise<RawClient> {
  const client = await RawClient.connect(port);
  cleanups.push(() => client.destroy());
  client.hello({ clientId });
  await client.next(ofType(FrameType.WELCOME));
  return client;
}

function id(n: number): string {
  return n.toString(16).padStart(32, '0');
}

function isAnswer(frame: Frame, transfer: string): boolean {
  return (
    (frame.type === FrameType.FILE_ACCEPT ||
      frame.type === FrameType.FILE_FAILED ||
      frame.type === FrameType.FILE_COMPLETE) &&
    frame.body.id === transfer
  );
}

/** The answer (FILE_ACCEPT / FILE_FAILED / FILE_COMPLETE) number `skip` (from 0) for `transfer`. */
async function answer(client: RawClient, transfer: string, skip = 0): Promise<Frame> {
  const nth = (frame: Frame): frame is Frame =>
    client.frames.filter((f) => isAnswer(f, transfer)).indexOf(frame) === skip;
  return client.next(nth);
}

function code(frame: Frame): string | undefined {
  return frame.type === FrameType.FILE_FAILED ? frame.body.code : undefined;
}

describe('server - upload limits', () => {
  it('two sessions of one identity offering one transfer: the later one takes it over, the earlier is told TRANSFER_TAKEN_OVER', async () => {
    const { port } = await startServer();
    const first = await session(port, 'twin');
    const second = await session(port, 'twin');
    first.socket.write(encodeFileOffer({ id: id(1), name: 'f.bin', size: 1000 }));
    expect((await answer(first, id(1))).type).toBe(FrameType.FILE_ACCEPT);
    second.socket.write(encodeFileOffer({ id: id(1), name: 'f.bin', size: 1000 }));
    expect((await answer(second, id(1))).type).toBe(FrameType.FILE_ACCEPT);
    expect(code(await answer(first, id(1), 1))).toBe(ErrorCode.TRANSFER_TAKEN_OVER);
  });

  it('maxIncomingTransfersPerPeer caps one session; maxIncomingTransfers caps the server', async () => {
    const { port } = await startServer({ maxIncomingTransfersPerPeer: 2, maxIncomingTransfers: 3 });
    const one = await session(port, 'one');
    for (let n = 1; n <= 3; n++) {
      one.socket.write(encodeFileOffer({ id: id(n), name: `f${n}.bin`, size: 10 }));
    }
    expect((await answer(one, id(2))).type).toBe(FrameType.FILE_ACCEPT);
    expect(code(await answer(one, id(3)))).toBe(ErrorCode.TOO_MANY_TRANSFERS);
    const two = await session(port, 'two');
    two.socket.write(encodeFileOffer({ id: id(4), name: 'g.bin', size: 10 }));
    two.socket.write(encodeFileOffer({ id: id(5), name: 'h.bin', size: 10 }));
    expect((await answer(two, id(4))).type).toBe(FrameType.FILE_ACCEPT);
    expect(code(await answer(two, id(5)))).toBe(ErrorCode.TOO_MANY_TRANSFERS);
  });

  it('a FILE_ACCEPT for a transfer the server never offered fails the connection with UNEXPECTED_FRAME', async () => {
    const { port } = await startServer();
    const client = await session(port, 'rogue');
    client.socket.write(encodeFileAccept({ id: id(7), offset: 0 }));
    const error = await client.next(ofType(FrameType.ERROR));
    expect(error.body.code).toBe(ErrorCode.UNEXPECTED_FRAME);
    await client.waitClosed();
  });

  it('bad upload limits fail at once', () => {
    for (const options of [
      { maxIncomingTransfersPerPeer: 0 },
      { maxIncomingTransfers: -1 },
      { maxIncomingTransfers: 1.5 },
      { fileIdleMs: 0 },
      { emptyPartialTtlMs: -5 },
    ]) {
      expect(() => new TetherServer(options), JSON.stringify(options)).toThrow(TypeError);
    }
  });
});
