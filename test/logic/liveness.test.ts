import type { MemoryTransport } from '@tether/core';
import {
  ErrorCode,
  encodeHello,
  encodePing,
  encodePong,
  FrameDecoder,
  FrameType,
  PREFACE,
  PROTOCOL_VERSION,
} from '@tether/protocol';
import type { DisconnectInfo, Peer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeTime } from '../helpers/fake-time.js';

/** Times (from `start`) of the PINGs that arrive at `end`'s reader, as it decodes them. */
function tapPings(end: MemoryTransport, start: () => number): number[] {
  const decoder = new FrameDecoder({ expectPreface: false });
  const at: number[] = [];
  end.on('data', (chunk: Uint8Array) => {
    decoder.push(chunk, (frame) => {
      if (frame.type === FrameType.PING) at.push(time.now - start());
    });
  });
  return at;
}

/** The frame types of each chunk `end`'s reader gets (one chunk per write of the other end). */
function tapWrites(end: MemoryTransport): number[][] {
  const decoder = new FrameDecoder({ expectPreface: false });
  const writes: number[][] = [];
  end.on('data', (chunk: Uint8Array) => {
    const types: number[] = [];
    decoder.push(chunk, (frame) => types.push(frame.type));
    writes.push(types);
  });
  return writes;
}

let time: FakeTime;
afterEach(async () => {
  await time.close();
});

describe('logic - liveness in fake time', () => {
  it('a silent peer is evicted at evictAfterMs of silence, to the millisecond; one that answers PINGs never is', async () => {
    time = new FakeTime();
    const server = time.server({ pingIntervalMs: 100, evictAfterMs: 400, sessionTtlMs: 10_000 });
    const evictions: { clientId: string; at: number; info: DisconnectInfo }[] = [];
    server.on('evict', (peer, info) =>
      evictions.push({ clientId: peer.clientId, at: time.now, info }),
    );

    // A live client: its heartbeat answers and pings.
    const live = time.client(server, { clientId: 'live', pingIntervalMs: 100, deadAfterMs: 400 });
    await time.wait(live.connect());

    // A silent one: HELLO, then nothing, whatever the server sends.
    const silent = time.client(server, { clientId: 'unused' });
    void silent;
    const { memoryTransportPair } = await import('@tether/core');
    const [mine, theirs] = memoryTransportPair(time.scheduler);
    mine.on('data', () => {});
    server.accept(theirs, { remoteAddress: 'memory:silent' });
    mine.write(PREFACE);
    mine.write(
      encodeHello({
        versions: [PROTOCOL_VERSION],
        clientId: 'silent',
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
      }),
    );
    await time.settle();
    const welcomedAt = time.now;
    expect(server.peers.map((p) => p.clientId).sort()).toEqual(['live', 'silent']);

    await time.advance(4000, 1);
    // The silent one, exactly once, at the deadline: its last byte was the HELLO.
    expect(evictions.map((e) => e.clientId)).toEqual(['silent']);
    expect(evictions[0]?.info.code).toBe(ErrorCode.EVICTED);
    expect(evictions[0]?.at).toBe(welcomedAt + 400);
    expect(evictions[0]?.info.silentMs).toBe(400);
    // The live one, ten deadlines later, is still connected on its first connection.
    expect(live.state).toBe('connected');
    expect(live.stats().reconnects).toBe(0);
  });

  it('on an idle link the client pings every interval; the server adds a PING for its RTT to a PONG, once per 6 intervals or more', async () => {
    time = new FakeTime();
    const server = time.server({ pingIntervalMs: 100, evictAfterMs: 1000 });
    const peers: Peer[] = [];
    let start = 0;
    server.on('connection', (peer) => {
      peers.push(peer);
      start = time.now;
    });
    const client = time.client(server, { pingIntervalMs: 100, deadAfterMs: 1000 });
    await time.wait(client.connect());
    const [clientEnd, serverEnd] = time.links[0] as [MemoryTransport, MemoryTransport];
    const pings = {
      client: tapPings(serverEnd, () => start),
      server: tapPings(clientEnd, () => start),
    };
    const serverWrites = tapWrites(clientEnd);
    await time.advance(1200, 1);
    // The server's RTT sample is due at 150 ms (1.5 intervals, when a silent client would be
    // pinged anyway) and waits for the PONG to the client's next PING (200 ms); the next is due
    // 6 intervals later (800 ms) and goes with the PONG after it (900 ms).
    expect(pings.server).toEqual([200, 900]);
    // Each in the same write as a PONG: one packet, not two.
    const withPing = serverWrites.filter((w) => w.includes(FrameType.PING));
    expect(withPing).toEqual([
      [FrameType.PONG, FrameType.PING],
      [FrameType.PONG, FrameType.PING],
    ]);
    // Every other write of the idle link is a lone PONG to one of the client's PINGs.
    expect(serverWrites.filter((w) => !w.includes(FrameType.PING)).flat()).toEqual(
      Array(pings.client.length - 2).fill(FrameType.PONG),
    );
    // The client pings after each interval of inbound silence: every 100 ms.
    expect(pings.client).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200]);
    expect(client.stats().rtt?.samples).toBe(pings.client.length);
    expect(peers[0]?.stats().rtt?.samples).toBe(2);
  });

  it('an RTT PING that finds nothing written within a ping interval goes alone', async () => {
    time = new FakeTime();
    const server = time.server({ pingIntervalMs: 100, evictAfterMs: 1000 });
    const { memoryTransportPair } = await import('@tether/core');
    const [mine, theirs] = memoryTransportPair(time.scheduler);
    // A client that pings every 140 ms (slower than the 100 ms it was told) and answers PINGs.
    const decoder = new FrameDecoder();
    const writes: { at: number; types: number[] }[] = [];
    mine.on('data', (chunk: Uint8Array) => {
      const types: number[] = [];
      decoder.push(chunk, (frame) => {
        types.push(frame.type);
        if (frame.type === FrameType.PING) mine.write(encodePong(frame.stamp));
      });
      writes.push({ at: time.now, types });
    });
    server.accept(theirs, { remoteAddress: 'memory:slow-pinger' });
    mine.write(PREFACE);
    mine.write(
      encodeHello({
        versions: [PROTOCOL_VERSION],
        clientId: 'slow-pinger',
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
      }),
    );
    await time.settle();
    const welcomedAt = time.now;
    writes.length = 0;
    for (let at = 140; at <= 980; at += 140) {
      await time.advance(welcomedAt + at - time.now, 1);
      mine.write(encodePing(at));
    }
    await time.advance(welcomedAt + 1000 - time.now, 1);
    const serverPings = writes.filter((w) => w.types.includes(FrameType.PING));
    // Due at 150 ms, nothing written until 250 ms: alone then. Due again at 850 ms, and the PONG
    // to the PING of 840 ms left before it; alone at 950 ms.
    expect(serverPings.map((w) => [w.at - welcomedAt, w.types])).toEqual([
      [250, [FrameType.PING]],
      [950, [FrameType.PING]],
    ]);
    expect(server.peers[0]?.stats().rtt?.samples).toBe(2);
    expect(server.peers[0]?.stats().connected).toBe(true);
  });

  it('a server whose client stops pinging pings it after 1.5 intervals, then evicts it', async () => {
    time = new FakeTime();
    const server = time.server({ pingIntervalMs: 100, evictAfterMs: 1000 });
    const { memoryTransportPair, MemoryTransport } = await import('@tether/core');
    void MemoryTransport;
    const [mine, theirs] = memoryTransportPair(time.scheduler);
    const pingsAt: number[] = [];
    const { FrameDecoder, FrameType } = await import('@tether/protocol');
    const decoder = new FrameDecoder();
    mine.on('data', (chunk: Uint8Array) =>
      decoder.push(chunk, (frame) => {
        if (frame.type === FrameType.PING) pingsAt.push(time.now);
      }),
    );
    server.accept(theirs, { remoteAddress: 'memory:quiet' });
    mine.write(PREFACE);
    mine.write(
      encodeHello({
        versions: [PROTOCOL_VERSION],
        clientId: 'quiet',
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
      }),
    );
    await time.settle();
    const welcomedAt = time.now;
    const evicted = new Promise<number>((resolve) => server.on('evict', () => resolve(time.now)));
    await time.advance(1100, 1);
    expect(await time.wait(evicted)).toBe(welcomedAt + 1000);
    // 150 ms of silence, then once per interval of the server's 150 ms schedule, never past
    // the deadline.
    expect(pingsAt.map((at) => at - welcomedAt)).toEqual([150, 300, 450, 600, 750, 900]);
  });
});
