// rtt: closed loop (one 128 B message in flight, echoed by the server) and open loop (a fixed
// rate, latency measured from each message's intended send time: no coordinated omission).
import * as hdr from 'hdr-histogram-js';
import { median, type Row, sleep, type WorkerArgs } from '../lib/common.js';
import type { ClientSide } from '../systems/types.js';

export const RTT_PAYLOAD = 128;

function histogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
}

function summarize(
  system: string,
  scenario: string,
  runs: Percentiles[],
  extra: Row['extra'],
): Row {
  const p50s = runs.map((r) => r.p50);
  return {
    system,
    scenario,
    payloadBytes: RTT_PAYLOAD,
    msgsPerSec: null,
    mbPerSec: null,
    p50Us: median(p50s),
    p99Us: median(runs.map((r) => r.p99)),
    p999Us: median(runs.map((r) => r.p999)),
    runs: runs.length,
    min: Math.min(...p50s),
    max: Math.max(...p50s),
    ...(extra ? { extra } : {}),
  };
}

export async function rttClient(c: ClientSide, args: WorkerArgs): Promise<Row[]> {
  const runs = args.smoke ? 1 : 5;
  const perRun = args.smoke ? 300 : args.quick ? 1000 : 10_000;
  const payload = Buffer.alloc(RTT_PAYLOAD, 0x62);
  // Echoes arrive in order on every system here, so a FIFO of send times matches them.
  const sentAt: number[] = [];
  let head = 0;
  let onEcho: ((latencyUs: number) => void) | undefined;
  c.onMessage(() => {
    const t = sentAt[head++];
    if (t !== undefined) onEcho?.((performance.now() - t) * 1000);
  });
  const closed = async (count: number): Promise<Percentiles> => {
    const h = histogram();
    for (let i = 0; i < count; i++) {
      const latency = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no echo within 5 s (closed loop, message ${i})`)),
          5000,
        );
        onEcho = (us) => {
          clearTimeout(timer);
          resolve(us);
        };
        sentAt.push(performance.now());
        c.send(payload);
      });
      h.recordValue(Math.max(1, Math.round(latency)));
    }
    return {
      p50: h.getValueAtPercentile(50),
      p99: h.getValueAtPercentile(99),
      p999: h.getValueAtPercentile(99.9),
    };
  };
  await closed(Math.max(200, perRun / 2)); // warm-up
  const closedRuns: Percentiles[] = [];
  for (let i = 0; i < runs; i++) closedRuns.push(await closed(perRun));

  const rate = args.quick || args.smoke ? 2000 : 5000;
  const seconds = args.smoke ? 0.25 : args.quick ? 0.3 : 2;
  const open = async (warmup = false): Promise<Percentiles> => {
    const h = histogram();
    const total = Math.round(rate * (warmup ? Math.min(seconds, 0.2) : seconds));
    let received = 0;
    const all = new Promise<void>((resolve) => {
      onEcho = (latency) => {
        h.recordValue(Math.max(1, Math.round(latency)));
        if (++received === total) resolve();
      };
    });
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
    if (received < total) throw new Error(`open loop: ${received} of ${total} echoes within 5 s`);
    return {
      p50: h.getValueAtPercentile(50),
      p99: h.getValueAtPercentile(99),
      p999: h.getValueAtPercentile(99.9),
    };
  };
  await open(true); // warm-up
  const openRuns: Percentiles[] = [];
  for (let i = 0; i < runs; i++) openRuns.push(await open());
  return [
    summarize(args.system, 'rtt', closedRuns, { messagesPerRun: perRun }),
    summarize(args.system, 'rtt-open-loop', openRuns, { ratePerSec: rate, secondsPerRun: seconds }),
  ];
}
