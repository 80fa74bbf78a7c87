import { afterEach, describe, expect, it, vi } from 'vitest';
import { mulberry32 } from '../src/index.js';
import { createStage, type StageContext } from '../src/stages.js';
import { type DropToxic, resolveToxic } from '../src/toxic.js';
import { connectClient, startProxy, startServer, until } from './helpers.js';

/** Sets a flag when the promise settles: "did this socket see its end yet?" */
function watch(promise: Promise<void>): { readonly done: boolean } {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
}

/** 100 records of 8 bytes: index (u32) and a marker, so a received stream can be read back. */
function records(count: number): Buffer {
  const buffer = Buffer.alloc(count * 8);
  for (let i = 0; i < count; i++) {
    buffer.writeUInt32BE(i, i * 8);
    buffer.write('rec|', i * 8 + 4, 'latin1');
  }
  return buffer;
}

describe('drop', () => {
  it('drop - bytes read while active never arrive, bytes after it do, the link stays open', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    const client = await connectClient(proxy.port);
    client.socket.write('before|');
    const peer = await sink.peer(0);
    await until(() => peer.received().length === 7);
    const clientEnded = watch(client.ended);
    const peerEnded = watch(peer.ended);

    const id = proxy.addToxic({ type: 'drop', direction: 'both' });
    expect(id).toBe('drop-1');
    client.socket.write('lost-up|');
    peer.socket.write('lost-down|');
    // The proxy read them and threw them away: nothing is held (a delay would hold them), nothing
    // was forwarded, and both connections are still open.
    await until(() => {
      const dropped = proxy.links[0]?.dropped;
      return dropped?.upstream === 8 && dropped.downstream === 10;
    });
    expect(proxy.links[0]?.held).toEqual({ upstream: 0, downstream: 0 });
    expect(proxy.stats().dropped).toEqual({ upstream: 8, downstream: 10 });
    expect(peer.received().toString()).toBe('before|');
    expect(client.received().length).toBe(0);
    expect(clientEnded.done || peerEnded.done).toBe(false);
    expect(client.socket.destroyed || peer.socket.destroyed).toBe(false);

    expect(proxy.removeToxic(id)).toBe(true);
    // Same connections: what is sent now arrives, and the FIN after it proves nothing else is
    // on its way.
    client.socket.end('after');
    peer.socket.end('back');
    await Promise.all([peer.ended, client.ended]);
    expect(peer.received().toString()).toBe('before|after');
    expect(client.received().toString()).toBe('back');
    expect(client.errors).toEqual([]);
    expect(peer.errors).toEqual([]);
    expect(proxy.stats()).toMatchObject({
      connections: 1,
      bytes: { upstream: 12, downstream: 4 },
      dropped: { upstream: 8, downstream: 10 },
    });
  });

  it('drop - end-of-stream passes while data is dropped (unlike blackhole)', async () => {
    const sink = await startServer('sink');
    const proxy = await startProxy(sink.port);
    proxy.addToxic({ type: 'drop', direction: 'upstream' });
    const client = await connectClient(proxy.port);
    client.socket.end('gone');
    const peer = await sink.peer(0);
    await peer.ended;
    expect(peer.received().length).toBe(0);
    expect(proxy.links[0]?.dropped.upstream).toBe(4);
    // The other direction still flows after the half-close.
    peer.socket.end('reply');
    await client.ended;
    expect(client.received().toString()).toBe('reply');
  });

  it('drop - probability drops whole pieces after a slicer, the same ones for the same seed', async () => {
    const sink = await startServer('sink');
    const data = records(100);
    const run = async (seed: number): Promise<Buffer> => {
      const proxy = await startProxy(sink.port, { seed });
      proxy.addToxic({ type: 'slicer', direction: 'upstream', average_size: 8 });
      proxy.addToxic({ type: 'drop', direction: 'upstream', probability: 0.5 });
      const client = await connectClient(proxy.port);
      const index = sink.peers.length;
      client.socket.end(data);
      const peer = await sink.peer(index);
      await peer.ended;
      const received = peer.received();
      const info = proxy.stats();
      expect(received.length + info.dropped.upstream).toBe(data.length);
      await proxy.stop();
      return received;
    };
    const first = await run(11);
    // Whole 8-byte records, in order, about half of them.
    expect(first.length % 8).toBe(0);
    const indexes: number[] = [];
    for (let at = 0; at < first.length; at += 8) {
      expect(first.toString('latin1', at + 4, at + 8)).toBe('rec|');
      indexes.push(first.readUInt32BE(at));
    }
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(new Set(indexes).size).toBe(indexes.length);
    expect(indexes.length).toBeGreaterThan(20);
    expect(indexes.length).toBeLessThan(80);
    expect((await run(11)).equals(first)).toBe(true);
    expect((await run(12)).equals(first)).toBe(false);
  });
});

describe('drop - timing (fake timers, one stage)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function stage(definition: Omit<DropToxic, 'type' | 'direction'>, random = mulberry32(1)) {
    const out: string[] = [];
    let dropped = 0;
    const ctx: StageContext = {
      out: { push: (chunk) => out.push(chunk.toString()), end: () => out.push('<end>') },
      random,
      drop: (bytes) => {
        dropped += bytes;
      },
      closeAfterEnd: () => out.push('<closeAfterEnd>'),
      close: () => out.push('<close>'),
      reset: () => out.push('<reset>'),
    };
    const toxic = resolveToxic({ type: 'drop', direction: 'upstream', ...definition }, 'd');
    return { stage: createStage(toxic, ctx), out, dropped: () => dropped };
  }

  it('drop - active from `after` for `duration` ms, then passes everything', () => {
    vi.useFakeTimers();
    const { stage: s, out, dropped } = stage({ after: 100, duration: 200 });
    s.push(Buffer.from('a'));
    vi.advanceTimersByTime(99);
    s.push(Buffer.from('b'));
    vi.advanceTimersByTime(1);
    s.push(Buffer.from('xx'));
    vi.advanceTimersByTime(199);
    s.push(Buffer.from('yyy'));
    s.end();
    vi.advanceTimersByTime(1);
    s.push(Buffer.from('c'));
    expect(out).toEqual(['a', 'b', '<end>', 'c']);
    expect(dropped()).toBe(5);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drop - duration alone starts at once; 0 drops until removed; removal stops the timers', () => {
    vi.useFakeTimers();
    const timed = stage({ duration: 50 });
    timed.stage.push(Buffer.from('x'));
    vi.advanceTimersByTime(50);
    timed.stage.push(Buffer.from('a'));
    expect(timed.out).toEqual(['a']);

    const forever = stage({});
    vi.advanceTimersByTime(60_000);
    forever.stage.push(Buffer.from('xyz'));
    expect(forever.out).toEqual([]);
    expect(forever.dropped()).toBe(3);

    const removed = stage({ after: 10, duration: 10 });
    expect(vi.getTimerCount()).toBe(1);
    removed.stage.flush();
    removed.stage.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drop - probability 0 passes everything, 1 drops everything without drawing', () => {
    const never = (): number => {
      throw new Error('drew a number');
    };
    const none = stage({ probability: 0 }, never);
    const all = stage({ probability: 1 }, never);
    for (const s of [none, all]) for (let i = 0; i < 20; i++) s.stage.push(Buffer.from('z'));
    expect(none.out.length).toBe(20);
    expect(all.dropped()).toBe(20);
  });
});
