import { type DataFrame, FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { type Positions, RedisSessionLog } from '../src/redis/redis-session-log.js';

function frame(seq: number): DataFrame {
  return { type: FrameType.DATA, flags: 0, seq, requestId: 0, payload: Buffer.from(`m${seq}`) };
}

/** A store whose writes the test answers one by one. */
function harness(durable: Positions = { ack: 0, mark: 0, in: 0 }, maxHeldBytes?: number) {
  const writes: { positions: Positions; resolve(): void; reject(error: Error): void }[] = [];
  const delivered: number[] = [];
  const pauses: boolean[] = [];
  const log = new RedisSessionLog(
    {
      write: (positions) =>
        new Promise<void>((resolve, reject) => writes.push({ positions, resolve, reject })),
      deliver: (f) => delivered.push(f.seq),
      backpressure: (paused) => pauses.push(paused),
    },
    durable,
    maxHeldBytes,
  );
  return { log, writes, delivered, pauses };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('RedisSessionLog', () => {
  it('RedisSessionLog - a message reaches the application only once its mark is written, the ACK only once `in` is', async () => {
    const { log, writes, delivered } = harness();
    log.hold(frame(1));
    log.hold(frame(2));
    log.delivered(2);
    let acked = false;
    void log.commit()?.then(() => {
      acked = true;
    });
    expect(delivered).toEqual([]);
    expect(writes.map((w) => w.positions)).toEqual([{ ack: 0, mark: 2, in: 0 }]);
    writes[0]?.resolve();
    await tick();
    expect(delivered).toEqual([1, 2]);
    expect(acked).toBe(false);
    expect(writes[1]?.positions).toEqual({ ack: 0, mark: 2, in: 2 });
    writes[1]?.resolve();
    await tick();
    expect(acked).toBe(true);
    expect(log.settled).toBe(true);
  });

  it('RedisSessionLog - the frames of a burst that arrive during a write go in the next write, one per burst', async () => {
    const { log, writes, delivered } = harness();
    log.hold(frame(1));
    log.delivered(1);
    void log.commit();
    for (let seq = 2; seq <= 50; seq++) log.hold(frame(seq));
    log.delivered(50);
    void log.commit();
    expect(writes.length).toBe(1);
    writes[0]?.resolve();
    await tick();
    // Message 1 reached the application; the next write records it and marks 2..50 at once.
    expect(delivered).toEqual([1]);
    expect(writes[1]?.positions).toEqual({ ack: 0, mark: 50, in: 1 });
    writes[1]?.resolve();
    await tick();
    expect(delivered.length).toBe(50);
    expect(writes.length).toBe(3);
  });

  it('RedisSessionLog - messages a crashed owner may have delivered go to the application at once, in order', () => {
    // Loaded after a crash: in 10, mark 14 (11..14 may have reached the old owner's application).
    const { log, writes, delivered } = harness({ ack: 0, mark: 14, in: 10 });
    for (let seq = 11; seq <= 14; seq++) log.hold(frame(seq));
    expect(delivered).toEqual([11, 12, 13, 14]);
    log.hold(frame(15));
    expect(delivered).toEqual([11, 12, 13, 14]);
    log.delivered(15);
    void log.commit();
    expect(writes[0]?.positions).toEqual({ ack: 0, mark: 15, in: 14 });
  });

  it('RedisSessionLog - a failed write keeps the held frames and rejects the commit; a retry writes them', async () => {
    const { log, writes, delivered } = harness();
    log.hold(frame(1));
    log.delivered(1);
    const failed = log.commit();
    writes[0]?.reject(new Error('away'));
    await expect(failed).rejects.toThrow('away');
    expect(delivered).toEqual([]);
    expect(log.settled).toBe(false);
    log.retry();
    expect(writes[1]?.positions).toEqual({ ack: 0, mark: 1, in: 0 });
    writes[1]?.resolve();
    await tick();
    expect(delivered).toEqual([1]);
  });

  it('RedisSessionLog - once stopped (the session moved), held frames never reach the application', async () => {
    const { log, writes, delivered } = harness();
    log.hold(frame(1));
    log.delivered(1);
    const pending = log.commit();
    log.stop(new Error('taken'));
    await expect(pending).rejects.toThrow('taken');
    writes[0]?.resolve();
    await tick();
    expect(delivered).toEqual([]);
    await expect(log.commit()).rejects.toThrow('taken');
  });

  it('RedisSessionLog - acknowledgements are written with the next write; nothing waits when all is durable', async () => {
    const { log, writes } = harness({ ack: 3, mark: 0, in: 0 });
    log.acked(2);
    expect(log.commit()).toBeUndefined();
    log.acked(7);
    void log.commit();
    expect(writes[0]?.positions).toEqual({ ack: 7, mark: 0, in: 0 });
  });

  it('RedisSessionLog - past maxHeldBytes of frames waiting for the store the client is not read, until they fall to half', async () => {
    // Each payload is 2 or 3 bytes ("m1" .. "m10"); the cap is 10 bytes.
    const { log, writes, pauses } = harness(undefined, 10);
    for (let seq = 1; seq <= 5; seq++) log.hold(frame(seq));
    expect(pauses).toEqual([]);
    log.hold(frame(6));
    expect(log.heldBytes).toBe(12);
    expect(pauses).toEqual([true]);
    log.hold(frame(7));
    expect(pauses).toEqual([true]);
    log.delivered(7);
    void log.commit();
    writes[0]?.resolve();
    await tick();
    expect(log.heldBytes).toBe(0);
    expect(pauses).toEqual([true, false]);
  });
});
