import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TetherClient, TetherError } from '@tether/client';
import { type DemoContext, type FileState, type MessageCounts, sha256 } from './demo-context.js';
import type { DemoClient } from './demo-stack.js';
import { makePng } from './png.js';
import { errorText, escapeText } from './safe-text.js';
import { formatBytes, formatMs, progressBar } from './term.js';

// Messages are spread over this long, so they run through every fault.
const SEND_SPAN_MS = 12_000;
const SEND_TICK_MS = 50;
// After the faults, what is still in flight must land within this long...
const SETTLE_TIMEOUT_MS = 15_000;
// ...and the whole run stays under this budget, whatever the machine's load.
const BUDGET_MS = 45_000;

/** The files to send, written to the run's directory: an image made now, random bytes, text. */
export async function makeFiles(demo: DemoContext): Promise<FileState[]> {
  const sources: [string, Buffer][] = [
    ['pixels.png', makePng(640, 480, demo.seed)],
    ['random.bin', randomBytes(3 * 1024 * 1024)],
    [
      'notes.txt',
      Buffer.from(
        Array.from({ length: 4000 }, (_, i) => `line ${i}: the quick brown fox jumps\n`).join(''),
      ),
    ],
  ];
  const files: FileState[] = [];
  for (const [name, data] of sources) {
    const path = join(demo.dir, name);
    await writeFile(path, data);
    files.push({
      name,
      path,
      size: data.length,
      sha256: sha256(data),
      progress: undefined,
      result: undefined,
      error: undefined,
      stored: undefined,
      cuts: 0,
    });
  }
  return files;
}

/**
 * Sends `msg 0` .. `msg N-1`, spread evenly over the run so they meet every fault, without
 * waiting for each other; `counts` follows them as they are acknowledged. Resolves when the last
 * one was handed to the client.
 */
export async function sendMessages(
  demo: DemoContext,
  client: TetherClient,
  counts: MessageCounts,
): Promise<void> {
  const { total } = demo;
  const perTick = Math.ceil(total / (SEND_SPAN_MS / SEND_TICK_MS));
  while (counts.sent < total) {
    for (let i = 0; i < perTick && counts.sent < total; i++) {
      const index = counts.sent++;
      client.send(`msg ${index}`).then(
        () => {
          counts.acked++;
          counts.ackedIndices.push(index);
        },
        (error: TetherError) => {
          counts.failed++;
          demo.log(`client: send ${index} failed: ${escapeText(error.code)}`);
        },
      );
    }
    await sleep(SEND_TICK_MS);
  }
}

/**
 * Starts every file's transfer at once; each one's progress, result or error lands in its
 * {@link FileState}. The promises settle when the transfers end.
 */
export function sendFiles(
  demo: DemoContext,
  client: TetherClient,
  files: FileState[],
): Promise<void>[] {
  const transfers = files.map((f) => {
    const transfer = client.sendFile(f.path);
    transfer.on('progress', (p) => {
      f.progress = p;
    });
    return transfer.done.then(
      (result) => {
        f.result = result;
        const resent = Math.max(0, result.bytesSent - result.size);
        const cuts =
          f.cuts > 0 ? `, survived ${f.cuts} link drops (${formatBytes(resent)} re-sent)` : '';
        demo.log(
          `client: ${f.name} verified in ${formatMs(result.durationMs)}${cuts} sha256 ${result.sha256}`,
        );
      },
      (error: TetherError) => {
        f.error = error;
        demo.log(`client: ${f.name} failed: ${errorText(error)}`);
      },
    );
  });
  demo.log(
    `client: sending ${files.length} files (${files.map((f) => `${f.name} ${formatBytes(f.size)}`).join(', ')})`,
  );
  return transfers;
}

/**
 * Shows the run's status: redrawn below the log on a terminal (state, RTT, counts, a progress
 * bar per file), a status line a second otherwise. `finish` stops it, leaving the last drawing.
 */
export function showStatus(
  demo: DemoContext,
  observed: DemoClient,
  counts: MessageCounts,
  received: number[],
  files: FileState[],
): { finish(): void } {
  const { out, total } = demo;
  const { client } = observed;
  const status = (): string =>
    `state ${client.state}  rtt last ${formatMs(observed.rtt?.last)} srtt ${formatMs(observed.rtt?.srtt)} (${observed.heartbeats} heartbeats)  sent ${counts.sent}  acked ${counts.acked}  delivered ${received.length}/${total}  reconnects ${client.stats().reconnects}`;
  const bars = (): string[] =>
    files.map((f) => {
      const p = f.progress;
      const state = f.result
        ? 'verified'
        : f.error
          ? `failed ${escapeText(f.error.code)}`
          : undefined;
      return `  ${f.name.padEnd(11)} ${state ?? progressBar(p?.bytesCommitted ?? 0, f.size, p?.rateBytesPerSec ?? 0, p?.etaMs)}`;
    });
  const ticker = setInterval(
    () => {
      if (out.live) out.region(['', status(), ...bars()]);
      else
        demo.log(
          `status: ${status()}  files ${files.map((f) => `${f.name} ${Math.floor(((f.progress?.bytesCommitted ?? 0) / f.size) * 100)}%`).join(', ')}`,
        );
    },
    out.live ? 100 : 1000,
  );
  demo.defer(async () => clearInterval(ticker));
  return {
    finish() {
      clearInterval(ticker);
      if (out.live) out.region(['', status(), ...bars()]);
      out.done();
    },
  };
}

/**
 * After the faults: waits until every message is acknowledged (or failed) and every file verified
 * and stored (or failed), within the settle timeout and the run's budget.
 */
export async function settle(
  demo: DemoContext,
  counts: MessageCounts,
  sending: Promise<void>,
  files: FileState[],
  transfers: Promise<void>[],
): Promise<void> {
  await sending;
  const settleUntil = Math.min(
    performance.now() + SETTLE_TIMEOUT_MS,
    Math.max(demo.start + BUDGET_MS, performance.now() + 3000),
  );
  while (
    (counts.acked + counts.failed < demo.total ||
      files.some((f) => !f.result && !f.error) ||
      files.some((f) => f.result && !f.stored)) &&
    performance.now() < settleUntil
  ) {
    await sleep(50);
  }
  await Promise.race([Promise.all(transfers), sleep(100)]);
}
