// throughput, client side: one client sends as fast as the system's flow control allows; the
// server counts. A run ends at a final barrier: the server answers 'DONE' once it has counted
// every message. The runner (runner/message-cells.ts) decides the sizes, counts and repetitions.
import { barrier, parseBarrier } from '../lib/common.js';
import { type SpanResult, startSpan } from '../lib/span.js';
import type { ClientSide } from '../systems/types.js';

export const THROUGHPUT_SIZES = [16, 128, 1024, 16 * 1024, 1024 * 1024];

export interface ThroughputOps {
  /** The message count for which one run lasts about `runMs` (its runs are also a warm-up). */
  calibrate(params: { size: number; runMs: number }): Promise<{ count: number }>;
  /** One run of `count` messages of `size` bytes, timed from the first send to 'DONE'. */
  run(params: { size: number; count: number }): Promise<SpanResult>;
}

export function throughputOps(
  c: ClientSide,
  listen: (cb: (data: Buffer) => void) => void,
): ThroughputOps {
  let runId = 0;
  const payloads = new Map<number, Buffer>();
  const payloadOf = (size: number): Buffer => {
    let p = payloads.get(size);
    if (!p) {
      p = Buffer.alloc(size, 0x61);
      payloads.set(size, p);
    }
    return p;
  };
  const runOnce = async (payload: Buffer, n: number): Promise<SpanResult> => {
    const id = ++runId;
    const counted = new Promise<number>((resolve) => {
      listen((d) => {
        const b = parseBarrier(d);
        if (b?.kind === 'DONE' && b.run === id) resolve(b.count);
      });
    });
    const span = startSpan();
    for (let i = 0; i < n; i++) {
      const wait = c.send(payload);
      if (wait !== undefined) await wait;
    }
    c.send(barrier('BARR', n, id));
    const count = await counted;
    const result = span.end();
    if (count !== n) throw new Error(`receiver counted ${count} of ${n} messages`);
    return result;
  };
  return {
    async calibrate({ size, runMs }) {
      const payload = payloadOf(size);
      const scaled = (n: number, seconds: number) =>
        Math.max(4, Math.round((n * runMs) / (seconds * 1000)));
      let n = Math.max(4, Math.min(2000, Math.floor((4 * 1024 * 1024) / size)));
      for (;;) {
        const { seconds } = await runOnce(payload, n);
        if (seconds * 1000 >= runMs / 4 || n > 50_000_000) {
          n = scaled(n, seconds);
          break;
        }
        n *= 4;
      }
      // Then runs at the estimate until one lasts long enough (3 at most). The first, short runs
      // are slow (code not yet optimized), and a disturbance only ever slows a run, so the
      // highest estimate is kept: one slow run had cut a count 40x (runs of 12 ms, not 500).
      for (let i = 0; i < 3; i++) {
        const { seconds } = await runOnce(payload, n);
        const long = seconds * 1000 >= runMs * 0.7;
        n = Math.max(n, scaled(n, seconds));
        if (long) break;
      }
      return { count: n };
    },
    run({ size, count }) {
      return runOnce(payloadOf(size), count);
    },
  };
}
