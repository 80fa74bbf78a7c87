import { describe, expect, it } from 'vitest';
import { HeartbeatMonitor, type HeartbeatOptions } from '../src/index.js';

const P = 5000;
const D = 15_000;
const HOUR = 3_600_000;
const options: HeartbeatOptions = { pingIntervalMs: P, deadAfterMs: D };

/** Drives the monitor the way the I/O layer does: each check runs exactly at the wakeAt asked. */
function runUntilDead(
  hb: HeartbeatMonitor,
  from: number,
  limit: number,
): { pings: number[]; deadAt: number | undefined } {
  const pings: number[] = [];
  let t = from;
  while (t <= limit) {
    const d = hb.check(t, t);
    if (d.dead) return { pings, deadAt: t };
    if (d.ping) pings.push(t);
    expect(d.wakeAt).toBeGreaterThan(t);
    t = d.wakeAt;
  }
  return { pings, deadAt: undefined };
}

describe('heartbeat', () => {
  it('heartbeat - constructor rejects deadAfterMs <= pingIntervalMs and other bad options', () => {
    expect(() => new HeartbeatMonitor({ pingIntervalMs: 5000, deadAfterMs: 5000 }, 0)).toThrow(
      TypeError,
    );
    expect(() => new HeartbeatMonitor({ pingIntervalMs: 5000, deadAfterMs: 4000 }, 0)).toThrow(
      TypeError,
    );
    expect(() => new HeartbeatMonitor({ pingIntervalMs: 0, deadAfterMs: 4000 }, 0)).toThrow(
      TypeError,
    );
    expect(
      () => new HeartbeatMonitor({ pingIntervalMs: Number.NaN, deadAfterMs: 4000 }, 0),
    ).toThrow(TypeError);
    expect(
      () =>
        new HeartbeatMonitor({ pingIntervalMs: 1000, deadAfterMs: Number.POSITIVE_INFINITY }, 0),
    ).toThrow(TypeError);
    expect(() => new HeartbeatMonitor({ ...options, probeTimeoutMs: D + 1 }, 0)).toThrow(TypeError);
    expect(() => new HeartbeatMonitor({ ...options, probeTimeoutMs: 0 }, 0)).toThrow(TypeError);
    expect(
      () =>
        new HeartbeatMonitor({ pingIntervalMs: 5000, deadAfterMs: 5000, probeTimeoutMs: 1000 }, 0),
    ).toThrow(/deadAfterMs/);
    expect(
      () => new HeartbeatMonitor({ pingIntervalMs: 5000, deadAfterMs: 5001 }, 0),
    ).not.toThrow();
  });

  it('heartbeat - defaults: probeTimeoutMs = deadAfter - pingInterval, lateTolerance = interval / 2', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.probeTimeoutMs).toBe(10_000);
    expect(hb.lateToleranceMs).toBe(2500);
    const custom = new HeartbeatMonitor(
      { ...options, probeTimeoutMs: 3000, lateToleranceMs: 100 },
      0,
    );
    expect(custom.probeTimeoutMs).toBe(3000);
    expect(custom.lateToleranceMs).toBe(100);
  });

  it('heartbeat - pings after pingInterval of inbound silence, not before', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.check(0)).toEqual({ ping: false, dead: false, late: false, silentMs: 0, wakeAt: P });
    expect(hb.check(4999)).toMatchObject({ ping: false, dead: false, silentMs: 4999, wakeAt: P });
    expect(hb.check(5000)).toEqual({
      ping: true,
      dead: false,
      late: false,
      silentMs: 5000,
      wakeAt: 10_000,
    });
  });

  it('heartbeat - pings at most once per interval', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.check(5000).ping).toBe(true);
    for (let t = 5001; t < 10_000; t += 499) {
      const d = hb.check(t);
      expect(d.ping).toBe(false);
      expect(d.wakeAt).toBe(10_000);
    }
    expect(hb.check(10_000).ping).toBe(true);
    expect(hb.check(10_001).ping).toBe(false);
  });

  it('heartbeat - an explicit ping postpones the timer ping', () => {
    const hb = new HeartbeatMonitor(options, 0);
    hb.pinged(4000);
    expect(hb.check(5000)).toMatchObject({ ping: false, wakeAt: 9000 });
    expect(hb.check(9000).ping).toBe(true);
  });

  it('heartbeat - inbound bytes reset the silence', () => {
    const hb = new HeartbeatMonitor(options, 0);
    hb.inbound(3000);
    expect(hb.check(5000)).toMatchObject({ ping: false, silentMs: 2000, wakeAt: 8000 });
    expect(hb.check(8000)).toMatchObject({ ping: true, silentMs: 5000 });
    hb.inbound(8100);
    expect(hb.check(17_999)).toMatchObject({ dead: false, silentMs: 9899 });
    // An older timestamp never moves the clock back.
    hb.inbound(100);
    expect(hb.check(18_000)).toMatchObject({ dead: false, silentMs: 9900 });
  });

  it('heartbeat - dead exactly at deadAfter of silence, not 1 ms before', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.check(14_999)).toMatchObject({ dead: false, silentMs: 14_999, wakeAt: 15_000 });
    expect(hb.check(15_000)).toEqual({
      ping: false,
      dead: true,
      late: false,
      silentMs: 15_000,
      wakeAt: 15_000,
    });
  });

  it('heartbeat - driven by wakeAt with no answer: pings at 5 s and 10 s, dead at 15 s', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(runUntilDead(hb, 0, 100_000)).toEqual({ pings: [5000, 10_000], deadAt: 15_000 });
  });

  it('heartbeat - steady outbound without ACK progress is dead at deadAfter despite inbound bytes', () => {
    const hb = new HeartbeatMonitor(options, 0);
    const pings: number[] = [];
    let deadAt: number | undefined;
    for (let t = 0; t <= 30_000 && deadAt === undefined; t += 100) {
      hb.outboundPending(t); // another DATA written
      hb.inbound(t); // the peer's own traffic keeps arriving
      const d = hb.check(t);
      if (d.ping) pings.push(t);
      if (d.dead) deadAt = t;
      else expect(d.silentMs).toBe(t);
    }
    expect(deadAt).toBe(D);
    // The stalled ACK clock also asks for probes, on the interval.
    expect(pings).toEqual([5000, 10_000]);
  });

  it('heartbeat - ACK progress keeps a sending link alive', () => {
    const hb = new HeartbeatMonitor(options, 0);
    for (let t = 0; t <= 60_000; t += 100) {
      hb.outboundPending(t);
      hb.inbound(t);
      if (t % 1000 === 0) hb.ackProgress(t, true);
      const d = hb.check(t);
      expect(d.dead).toBe(false);
      expect(d.ping).toBe(false);
      expect(d.silentMs).toBe(t % 1000);
    }
  });

  it('heartbeat - ackProgress with nothing pending stops the ACK clock; new data restarts it', () => {
    const hb = new HeartbeatMonitor(options, 0);
    hb.outboundPending(1000);
    hb.inbound(6000);
    expect(hb.check(6000)).toMatchObject({ silentMs: 5000, ping: true });
    hb.ackProgress(6500, false);
    hb.inbound(6500);
    expect(hb.check(7000)).toMatchObject({ silentMs: 500, ping: false });
    hb.outboundPending(8000);
    hb.outboundPending(9000); // the clock runs from the first unacknowledged write
    hb.inbound(22_000);
    expect(hb.check(22_999)).toMatchObject({ dead: false, silentMs: 14_999 });
    expect(hb.check(23_000)).toMatchObject({ dead: true, silentMs: 15_000 });
  });

  it('heartbeat - file data awaiting progress is silence, however lively the link', () => {
    // A transfer whose FILE_STATUS was lost inside a live link: PINGs are answered, nothing moves.
    const hb = new HeartbeatMonitor(options, 0);
    hb.transferAwaiting(1000);
    hb.transferAwaiting(4000); // more chunks: the clock runs from the first that waits
    for (let t = 1000; t < 16_000; t += 500) {
      hb.inbound(t);
      expect(hb.check(t)).toMatchObject({ dead: false, silentMs: t - 1000 });
    }
    expect(hb.check(16_000)).toMatchObject({ dead: true, silentMs: D });
  });

  it('heartbeat - transfer progress restarts the transfer clock; with nothing awaiting it stops', () => {
    const hb = new HeartbeatMonitor(options, 0);
    hb.transferAwaiting(0);
    hb.inbound(14_000);
    hb.transferProgress(14_000, true);
    expect(hb.check(28_999)).toMatchObject({ dead: false, silentMs: 14_999 });
    hb.inbound(29_000);
    hb.transferProgress(29_000, false);
    hb.inbound(60_000);
    expect(hb.check(60_000)).toMatchObject({ dead: false, silentMs: 0 });
    // The earlier of the two clocks decides.
    hb.outboundPending(61_000);
    hb.transferAwaiting(62_000);
    hb.inbound(75_000);
    expect(hb.check(76_000)).toMatchObject({ dead: true, silentMs: D });
  });

  it('heartbeat - a late check gives awaiting file data the probe timeout too', () => {
    const hb = new HeartbeatMonitor(options, 0);
    hb.transferAwaiting(0);
    const late = hb.check(HOUR, 5000);
    expect(late).toMatchObject({ late: true, dead: false, ping: true });
    hb.inbound(HOUR + 1);
    expect(hb.check(HOUR + D - P - 1)).toMatchObject({ dead: false });
    expect(hb.check(HOUR + D - P)).toMatchObject({ dead: true });
  });

  it('heartbeat - wakeAt is the earlier of the next ping and the dead deadline', () => {
    const hb = new HeartbeatMonitor(options, 0);
    hb.outboundPending(2000);
    hb.inbound(4000);
    // Evidence is the ACK clock (2000): ping due 7000, dead at 17000.
    expect(hb.check(4000)).toMatchObject({ silentMs: 2000, wakeAt: 7000 });
    expect(hb.check(7000)).toMatchObject({ ping: true, wakeAt: 12_000 });
    expect(hb.check(12_000)).toMatchObject({ ping: true, wakeAt: 17_000 });
    expect(hb.check(17_000)).toMatchObject({ dead: true });
  });

  it('heartbeat - nextCheckAt is the wakeAt a check would return, and only moves later until the check', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.nextCheckAt()).toBe(P);
    let last = hb.nextCheckAt();
    const later = (): void => {
      const next = hb.nextCheckAt();
      expect(next).toBeGreaterThanOrEqual(last);
      last = next;
    };
    hb.inbound(3000); // ping due 8000
    later();
    expect(last).toBe(8000);
    hb.outboundPending(4000); // the ACK clock (4000) is later than the last inbound byte
    later();
    hb.inbound(6000); // evidence: the ACK clock, 4000
    later();
    expect(last).toBe(9000);
    hb.ackProgress(6500, false);
    later();
    expect(last).toBe(11_000);
    hb.transferAwaiting(7000); // later than the last inbound byte: no change
    later();
    expect(last).toBe(11_000);
    hb.pinged(10_000); // the next PING waits a whole interval after this one
    later();
    expect(last).toBe(15_000);
    // A check before it finds nothing to do and asks for the same time.
    expect(hb.check(11_000)).toMatchObject({ ping: false, dead: false, wakeAt: last });
    // Dead deadline first: evidence 6000 (the last inbound byte), dead at 21,000.
    hb.pinged(20_000);
    expect(hb.nextCheckAt()).toBe(21_000);
    expect(hb.check(21_000)).toMatchObject({ dead: true });
  });

  it('heartbeat - a check within lateTolerance of its due time is not late', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.check(7500, 5000)).toMatchObject({ late: false, ping: true, silentMs: 7500 });
    const hb2 = new HeartbeatMonitor(options, 0);
    expect(hb2.check(7501, 5000)).toMatchObject({ late: true, ping: true });
  });

  it('heartbeat - a late check after a 1 hour sleep probes instead of declaring dead', () => {
    const hb = new HeartbeatMonitor(options, 0);
    expect(hb.check(5000)).toMatchObject({ ping: true, wakeAt: 10_000 });
    const now = 10_000 + HOUR;
    const d = hb.check(now, 10_000);
    expect(d).toEqual({ ping: true, dead: false, late: true, silentMs: P, wakeAt: now + P });
  });

  it('heartbeat - after a late check with no answer the link is dead probeTimeoutMs later', () => {
    const hb = new HeartbeatMonitor(options, 0);
    const now = 10_000 + HOUR;
    expect(hb.check(now, 10_000)).toMatchObject({ late: true, dead: false, ping: true });
    const after = runUntilDead(hb, now + P, now + HOUR);
    expect(after.deadAt).toBe(now + hb.probeTimeoutMs);
    expect(after.pings).toEqual([now + P]);
    const hb2 = new HeartbeatMonitor(options, 0);
    hb2.check(now, 10_000);
    expect(hb2.check(now + 9999).dead).toBe(false);
    expect(hb2.check(now + 10_000).dead).toBe(true);
  });

  it('heartbeat - a custom probeTimeoutMs sets the deadline after a late check', () => {
    const hb = new HeartbeatMonitor({ ...options, probeTimeoutMs: 3000 }, 0);
    const now = HOUR;
    expect(hb.check(now, 5000)).toEqual({
      ping: true,
      dead: false,
      late: true,
      silentMs: D - 3000,
      wakeAt: now + 3000,
    });
    expect(hb.check(now + 2999).dead).toBe(false);
    expect(hb.check(now + 3000)).toMatchObject({ dead: true, silentMs: D });
  });

  it('heartbeat - a late check probes even when the silence alone would not call for a ping', () => {
    // probeTimeoutMs = deadAfterMs: after the late check the silence clock restarts at now.
    const hb = new HeartbeatMonitor({ ...options, probeTimeoutMs: D }, 0);
    hb.inbound(1000);
    const now = 1000 + HOUR;
    expect(hb.check(now, 6000)).toEqual({
      ping: true,
      dead: false,
      late: true,
      silentMs: 0,
      wakeAt: now + P,
    });
    expect(hb.check(now + D - 1).dead).toBe(false);
    expect(hb.check(now + D).dead).toBe(true);
  });

  it('heartbeat - an inbound byte right after a late check keeps the link alive', () => {
    const hb = new HeartbeatMonitor(options, 0);
    const now = 10_000 + HOUR;
    hb.check(now, 10_000);
    hb.inbound(now + 1);
    expect(hb.check(now + 10_000)).toMatchObject({ dead: false, silentMs: 9999 });
    expect(hb.check(now + 15_000)).toMatchObject({ dead: false, silentMs: 14_999 });
    expect(hb.check(now + 15_001)).toMatchObject({ dead: true });
  });

  it('heartbeat - a late check with data pending needs ACK progress within the probe timeout', () => {
    const stalled = new HeartbeatMonitor(options, 0);
    stalled.outboundPending(1000);
    const now = 20_000 + HOUR;
    expect(stalled.check(now, 5000)).toMatchObject({ late: true, dead: false, ping: true });
    stalled.inbound(now + 1); // the peer talks but never acknowledges our data
    expect(stalled.check(now + 9999).dead).toBe(false);
    expect(stalled.check(now + 10_000).dead).toBe(true);

    const progressing = new HeartbeatMonitor(options, 0);
    progressing.outboundPending(1000);
    progressing.check(now, 5000);
    progressing.inbound(now + 1);
    progressing.ackProgress(now + 1, false);
    expect(progressing.check(now + 10_000)).toMatchObject({ dead: false, silentMs: 9999 });
  });
});
