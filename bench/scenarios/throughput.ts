// throughput: one client sends as fast as the system's flow control allows; the server counts.
// A run ends at a final barrier: the server answers 'DONE' once it has counted every message.
import { barrier, median, parseBarrier, type Row, type WorkerArgs } from '../lib/common.js';
import type { ClientSide } from '../systems/types.js';

export const THROUGHPUT_SIZES = [16, 128, 1024, 16 * 1024, 1024 * 1024];

export async function throughputClient(c: ClientSide, args: WorkerArgs): Promise<Row[]> {
  const sizes =
    (args.params?.sizes as number[] | undefined) ?? (args.smoke ? [128] : THROUGHPUT_SIZES);
  const runs = args.smoke ? 1 : 5;
  const warmups = args.quick ? 1 : 2;
  const runMs = args.smoke ? 100 : args.quick ? 60 : 500;
  let done: ((count: number) => void) | undefined;
  c.onMessage((d) => {
    const b = parseBarrier(d);
    if (b?.kind === 'DONE') done?.(b.count);
  });
  let runId = 0;
  const runOnce = async (payload: Buffer, n: number): Promise<number> => {
    const counted = new Promise<number>((resolve) => {
      done = resolve;
    });
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const wait = c.send(payload);
      if (wait !== undefined) await wait;
    }
    c.send(barrier('BARR', n, ++runId));
    const count = await counted;
    const seconds = (performance.now() - start) / 1000;
    if (count !== n) throw new Error(`receiver counted ${count} of ${n} messages`);
    return seconds;
  };
  const rows: Row[] = [];
  for (const size of sizes) {
    const payload = Buffer.alloc(size, 0x61);
    // Calibrate the count so a run lasts about runMs (this is also the first warm-up).
    let n = Math.max(4, Math.min(2000, Math.floor((4 * 1024 * 1024) / size)));
    for (;;) {
      const s = await runOnce(payload, n);
      if (s * 1000 >= runMs / 4 || n > 50_000_000) {
        n = Math.max(4, Math.round((n * runMs) / (s * 1000)));
        break;
      }
      n *= 4;
    }
    for (let i = 0; i < warmups; i++) await runOnce(payload, n);
    const rates: number[] = [];
    for (let i = 0; i < runs; i++) rates.push(n / (await runOnce(payload, n)));
    const mps = median(rates);
    rows.push({
      system: args.system,
      scenario: 'throughput',
      payloadBytes: size,
      msgsPerSec: mps,
      mbPerSec: (mps * size) / 1e6,
      p50Us: null,
      p99Us: null,
      p999Us: null,
      runs,
      min: Math.min(...rates),
      max: Math.max(...rates),
      extra: { messagesPerRun: n },
    });
  }
  return rows;
}
