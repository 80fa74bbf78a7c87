// rtt, client side: closed loop (one 128 B message in flight, echoed by the server) and open loop
// (a fixed rate, latency measured from each message's intended send time: no coordinated
// omission). The runner (runner/message-cells.ts) decides the counts and repetitions.
import * as hdr from 'hdr-histogram-js';
import { sleep } from '../lib/common.js';
import { startSpan } from '../lib/span.js';
import type { ClientSide } from '../systems/types.js';

export const RTT_PAYLOAD = 128;

export interface RttResult {
  p50: number;
  p99: number;
  p999: number;
  /** Round trips in the run. */
  count: number;
  /** This process's CPU over the run, µs. */
  cpuUs: number;
}

export interface RttOps {
  /** `count` round trips, one at a time. */
  closed(params: { count: number }): Promise<RttResult>;
  /** `rate` messages per second for `seconds`; waits (5 s at most) for every echo. */
  open(params: { rate: number; seconds: number }): Promise<RttResult>;
}

function histogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export function rttOps(c: ClientSide, listen: (cb: (data: Buffer) => void) => void): RttOps {
  const payload = Buffer.alloc(RTT_PAYLOAD, 0x62);
  return {
    async closed({ count }) {
      const h = histogram();
      // Echoes arrive in order on every system here, so a FIFO of send times matches them.
      let sentAt = 0;
      let onEcho: ((latencyUs: number) => void) | undefined;
      listen(() => onEcho?.((performance.now() - sentAt) * 1000));
      const span = startSpan();
      for (let i = 0; i < count; i++) {
        const latency = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no echo within 5 s (closed loop, message ${i})`)),
            5000,
          );
          onEcho = (us) => {
            clearTimeout(timer);
            onEcho = undefined;
            resolve(us);
          };
          sentAt = performance.now();
          c.send(payload);
        });
        h.recordValue(Math.max(1, Math.round(latency)));
      }
      const { cpuUs } = span.end();
      return {
        p50: h.getValueAtPercentile(50),
        p99: h.getValueAtPercentile(99),
        p999: h.getValueAtPercentile(99.9),
        count,
        cpuUs,
      };
    },
    async open({ rate, seconds }) {
      const h = histogram();
      const total = Math.round(rate * seconds);
      const sentAt: number[] = [];
      let head = 0;
      let received = 0;
      const all = new Promise<void>((resolve) => {
        listen(() => {
          const t = sentAt[head++];
          if (t === undefined) return;
          h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
          if (++received === total) resolve();
        });
      });
      const span = startSpan();
      const start = performance.now();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
        for (; sent < due; sent++) {
          // The intended time, not the actual one: a stall delays sends but counts against latency.
          sentAt.push(start + (sent * 1000) / rate);
          c.send(payload);
        }
        await sleep(1);
      }
      await Promise.race([all, sleep(5000)]);
      const { cpuUs } = span.end();
      if (received < total) throw new Error(`open loop: ${received} of ${total} echoes within 5 s`);
      return {
        p50: h.getValueAtPercentile(50),
        p99: h.getValueAtPercentile(99),
        p999: h.getValueAtPercentile(99.9),
        count: total,
        cpuUs,
      };
    },
  };
}
