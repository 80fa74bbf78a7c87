import type { MemoryTransport } from '@tether/core';
import {
  ErrorCode,
  encodeHello,
  encodePing,
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

  it('with the default deadlines, a client that pinged for a while and falls silent is pinged and evicted to the millisecond', async () => {
    // The server's heartbeat checks, moved later by every PING, wait in one-second slots and are
    // asked where they stand as their slot comes up: a check is still due, to the millisecond,
    // once the PINGs stop, whatever slot it falls in.
    time = new FakeTime();
    const server = time.server({ sessionTtlMs: 120_000 });
    const { memoryTransportPair } = await import('@tether/core');
    const [mine, theirs] = memoryTransportPair(time.scheduler);
    const pingsAt: number[] = [];
    const decoder = new FrameDecoder();
    mine.on('data', (chunk: Uint8Array) =>
      decoder.push(chunk, (frame) => {
        if (frame.type === FrameType.PING) pingsAt.push(time.now);
      }),
    );
    server.accept(theirs, { remoteAddress: 'memory:pinging' });
    mine.write(PREFACE);
    mine.write(
      encodeHello({
        versions: [PROTOCOL_VERSION],
        clientId: 'pinging',
        delivered: 0,
        acked: 0,
        maxFrame: 1 << 20,
      }),
    );
    await time.settle();
    const welcomedAt = time.now;
    const evicted = new Promise<{ at: number; info: DisconnectInfo }>((resolve) =>
      server.on('evict', (_peer, info) => resolve({ at: time.now, info })),
    );
    // A PING every 4,321 ms (off the slots' grid) for 30 s, then nothing.
    let lastPingAt = welcomedAt;
    for (let i = 0; i < 7; i++) {
      await time.advance(4321, 1000);
      mine.write(encodePing(i));
      lastPingAt = time.now;
      await time.settle();
    }
    await time.advance(20_000, 250);
    const { at, info } = await time.wait(evicted);
    expect(info.code).toBe(ErrorCode.EVICTED);
    expect(at).toBe(lastPingAt + 15_000);
    expect(info.silentMs).toBe(15_000);
    // While the client pinged, only the RTT PINGs (the first 1.5 intervals after the WELCOME,
    // then every 6 intervals): 7.5 s, 37.5 s. Silent from 30,247 ms, the client would be pinged
    // at 37,747 ms, but the RTT PING at 37.5 s is a PING too: the next waits an interval after it.
    expect(lastPingAt - welcomedAt).toBe(7 * 4321);
    expect(pingsAt.map((t) => t - welcomedAt)).toEqual([7500, 37_500, 45_000]);
  });

  it('on an idle link the client pings every interval and the server once per 6 intervals (RTT)', async () => {
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
    await time.advance(1200, 1);
    // The server pings first after 1.5 intervals of silence (150 ms, when a silent client would
    // be pinged anyway), then once per 6 intervals (750 ms): only for its RTT samples.
    expect(pings.server).toEqual([150, 750]);
    // The client pings after each interval of inbound silence; the server's PING at 150 ms is
    // inbound traffic too, so the client's next one waits until 250 ms (at 750 ms both are due
    // in the same millisecond and both go).
    expect(pings.client).toEqual([100, 250, 350, 450, 550, 650, 750, 850, 950, 1050, 1150]);
    expect(client.stats().rtt?.samples).toBe(pings.client.length);
    expect(peers[0]?.stats().rtt?.samples).toBe(2);
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
