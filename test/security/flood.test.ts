import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TetherClient } from '@tether/client';
import {
  crc32,
  ErrorCode,
  encodeAck,
  encodeData,
  encodeFileCancel,
  encodeFileChunk,
  encodeFileOffer,
  encodePing,
  encodePong,
  FrameType,
} from '@tether/protocol';
import type { DisconnectInfo } from '@tether/server';
import { describe, expect, it } from 'vitest';
import { cleanupList, ofType, startServer, Wire } from './helpers.js';

const defer = cleanupList();

const MiB = 1024 * 1024;
const EVICT_AFTER_MS = 1000;
const FLOOD_MS = 2500;
// Far below what an unbounded reply queue reaches in the flood (hundreds of MiB), far above what
// the bounded one costs (a MiB of replies per flooder plus allocator noise).
const RSS_GROWTH_LIMIT = 96 * MiB;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const transferId = '00112233445566778899aabbccddeeff';
const chunkData = Buffer.alloc(1024, 7);

/** One frame of each kind a client may send in an open session, as a flood would repeat it. */
const floods: { name: string; frame: (i: number) => Buffer; replies: boolean }[] = [
  { name: 'PING', frame: (i) => encodePing(i), replies: true },
  // Refused at once (the server takes no files): a FILE_FAILED per offer.
  {
    name: 'FILE_OFFER',
    frame: () => encodeFileOffer({ id: transferId, name: 'x.bin', size: 10 }),
    replies: true,
  },
  // One ACK per read burst: a few bytes of reply per 64 KiB read.
  { name: 'DATA', frame: (i) => encodeData(i + 1, Buffer.alloc(16, 1)), replies: false },
  { name: 'PONG', frame: (i) => encodePong(i), replies: false },
  { name: 'ACK', frame: () => encodeAck(0), replies: false },
  {
    name: 'FILE_CHUNK',
    frame: () => encodeFileChunk(transferId, 0, crc32(chunkData), chunkData),
    replies: false,
  },
  {
    name: 'FILE_CANCEL',
    frame: () => encodeFileCancel({ id: transferId, reason: 'x' }),
    replies: false,
  },
];

function rss(): number {
  return process.memoryUsage().rss;
}

/**
 * Writes `frame` (numbered) as fast as the socket takes it, never reading, for `ms` or until the
 * socket closes. Respects its own socket's backpressure, so only the server holds the flood.
 */
async function flood(w: Wire, frame: (i: number) => Buffer, ms: number): Promise<number> {
  w.socket.pause();
  let i = 0;
  let sent = 0;
  const end = performance.now() + ms;
  while (!w.closed && performance.now() < end) {
    const burst: Buffer[] = [];
    for (let n = 0; n < 512; n++) burst.push(frame(i++));
    const bytes = Buffer.concat(burst);
    sent += bytes.length;
    if (!w.socket.write(bytes)) {
      await Promise.race([event(w.socket, 'drain'), event(w.socket, 'close'), delayUntil(end)]);
    }
  }
  return sent;
}

// Unlike events.once, does not reject when the socket reports an error (a reset is expected).
function event(emitter: NodeJS.EventEmitter, name: string): Promise<void> {
  return new Promise((resolve) => emitter.once(name, () => resolve()));
}

function delayUntil(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())).unref());
}

describe('security - floods from a peer that never reads', () => {
  for (const { name, frame, replies } of floods) {
    it(`flood - ${name}: the server's memory stays bounded and other clients are served`, async () => {
      const { server, port } = await startServer(defer, {
        pingIntervalMs: 250,
        evictAfterMs: EVICT_AFTER_MS,
      });
      const ended: { clientId: string; code: string }[] = [];
      server.on('disconnect', (peer, info: DisconnectInfo) =>
        ended.push({ clientId: peer.clientId, code: info.code }),
      );
      // A well-behaved client keeps exchanging messages all along.
      const good = new TetherClient({
        port,
        clientId: 'good',
        pingIntervalMs: 250,
        deadAfterMs: 1000,
      });
      defer(() => good.close());
      await good.connect();
      server.on('message', (message, peer) => {
        if (peer.clientId === 'good') void peer.send(message.data).catch(() => {});
      });
      let echoes = 0;
      good.on('message', () => echoes++);

      gc();
      const before = rss();
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss());
      }, 50);
      defer(() => clearInterval(sampler));

      const w = await Wire.connect(port, defer);
      w.hello({ clientId: `flood-${name}` });
      await w.next(ofType(FrameType.WELCOME));
      const started = performance.now();
      const flooding = flood(w, frame, FLOOD_MS);
      let goodSent = 0;
      const goodLoop = (async () => {
        while (performance.now() - started < FLOOD_MS) {
          await good.send(`m${goodSent++}`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      const sent = await flooding;
      await goodLoop;
      clearInterval(sampler);
      const growth = peak - before;
      console.log(
        `[flood] ${name}: sent ${(sent / MiB).toFixed(1)} MiB, server process RSS +${(growth / MiB).toFixed(1)} MiB at peak, ` +
          `good client ${goodSent} sent, ${echoes} echoes, ended: ${JSON.stringify(ended)}`,
      );
      expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
      // The good client lost nothing and never dropped its link.
      await expect.poll(() => echoes).toBe(goodSent);
      expect(good.stats().reconnects).toBe(0);
      if (replies) {
        // It asked for replies it never read: cut as a slow consumer, its session ended.
        expect(ended).toContainEqual({ clientId: `flood-${name}`, code: ErrorCode.SLOW_CONSUMER });
        expect(server.peers.map((p) => p.clientId)).toEqual(['good']);
      }
    });
  }
});
