// Codec micro-benchmark: encodeData and FrameDecoder.push for DATA frames of several payload sizes.
// Run with `pnpm bench:codec`. Each cell warms up, then times RUNS runs of about RUN_MS each and
// reports the median, min and max. MB/s counts wire bytes (header + seq + payload), 1 MB = 10^6 B.
import { cpus } from 'node:os';
import { encodeData, FrameDecoder } from '@tether/protocol';

const PAYLOADS = [16, 128, 1024, 64 * 1024];
const RUNS = 7;
const WARMUP_RUNS = 3;
const RUN_MS = 200;
// The decoder is fed slices of a pre-encoded stream, as a socket would deliver them.
const CHUNK = 64 * 1024;
const STREAM_BYTES = 8 * 1024 * 1024;

interface Cell {
  framesPerSec: number[];
  mbPerSec: number[];
}

// Keeps results observable so the JIT cannot drop the work.
let sink = 0;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Times `batch` (which does `perBatch` frames of `wireSize` bytes): sizes the repeat count so a
 * run lasts about RUN_MS, warms up, then measures RUNS runs.
 */
function measure(batch: () => void, perBatch: number, wireSize: number): Cell {
  let repeats = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < repeats; i++) batch();
    const elapsed = performance.now() - start;
    if (elapsed >= RUN_MS / 4) {
      repeats = Math.max(1, Math.round((repeats * RUN_MS) / elapsed));
      break;
    }
    repeats *= 2;
  }
  const cell: Cell = { framesPerSec: [], mbPerSec: [] };
  for (let run = 0; run < WARMUP_RUNS + RUNS; run++) {
    const start = performance.now();
    for (let i = 0; i < repeats; i++) batch();
    const seconds = (performance.now() - start) / 1000;
    if (run < WARMUP_RUNS) continue;
    const frames = repeats * perBatch;
    cell.framesPerSec.push(frames / seconds);
    cell.mbPerSec.push((frames * wireSize) / seconds / 1e6);
  }
  return cell;
}

function benchEncode(size: number): Cell {
  const payload = Buffer.alloc(size, 0x61);
  const perBatch = 1000;
  let seq = 1;
  return measure(
    () => {
      for (let i = 0; i < perBatch; i++) sink += encodeData(seq++, payload).length;
    },
    perBatch,
    encodeData(1, payload).length,
  );
}

function benchDecode(size: number): Cell {
  const payload = Buffer.alloc(size, 0x61);
  const frame = encodeData(1, payload);
  const count = Math.max(16, Math.floor(STREAM_BYTES / frame.length));
  const stream = Buffer.concat(Array.from({ length: count }, (_, i) => encodeData(i + 1, payload)));
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += CHUNK) chunks.push(stream.subarray(at, at + CHUNK));

  const decoder = new FrameDecoder({ expectPreface: false });
  let decoded = 0;
  const onFrame = (f: { type: number }) => {
    decoded++;
    sink += f.type;
  };
  const cell = measure(
    () => {
      for (const chunk of chunks) {
        const error = decoder.push(chunk, onFrame);
        if (error !== undefined) throw error;
      }
    },
    count,
    frame.length,
  );
  // The stream ends on a frame boundary, so each batch decoded exactly `count` frames.
  if (decoded % count !== 0 || decoder.bufferedBytes !== 0) throw new Error('decode miscounted');
  return cell;
}

const fmtCount = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
const fmtMb = (n: number) => n.toFixed(n >= 100 ? 0 : 1);

function row(op: string, size: number, cell: Cell): string {
  const f = cell.framesPerSec;
  const m = cell.mbPerSec;
  const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  return (
    `| ${op} | ${label} | ${fmtCount(median(f))} | ${fmtCount(Math.min(...f))} – ${fmtCount(Math.max(...f))}` +
    ` | ${fmtMb(median(m))} | ${fmtMb(Math.min(...m))} – ${fmtMb(Math.max(...m))} |`
  );
}

const started = performance.now();
console.log(
  `# codec bench — node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, ` +
    `${new Date().toISOString().slice(0, 10)}`,
);
console.log(
  `${RUNS} runs of ~${RUN_MS} ms after ${WARMUP_RUNS} warm-up runs; decode pushes ${CHUNK / 1024} KiB slices.\n`,
);
console.log(
  '| op | payload | frames/s (median) | frames/s (min – max) | MB/s (median) | MB/s (min – max) |',
);
console.log('|---|---|---|---|---|---|');
for (const size of PAYLOADS) console.log(row('encode', size, benchEncode(size)));
for (const size of PAYLOADS) console.log(row('decode', size, benchDecode(size)));
console.log(`\n(total ${((performance.now() - started) / 1000).toFixed(1)} s, sink ${sink % 10})`);
