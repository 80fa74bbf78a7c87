// `pnpm bench [--quick] [--smoke] [--out DIR] [--systems a,b] [--scenarios x,y] [--sizes n,m]
// [--profile] [--source] [--rounds N]`: Tether side by side with raw sockets and peer systems.
// Every system runs its server and its client in separate processes (bench/worker.ts), driven
// from here one operation at a time (bench/runner/), so the systems of a cell take turns within
// each repetition. Results go to stdout (markdown) and to DIR/latest.md and DIR/latest.json (default
// bench/results). Schema and method: bench/README.md.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './lib/common.js';
import { runBundleCell } from './runner/bundle-cell.js';
import { runClusterResumeCell } from './runner/cluster-resume-cell.js';
import { type Context, createContext } from './runner/context.js';
import { runDashboardCostCells } from './runner/dashboard-cost-cells.js';
import { runFileCells } from './runner/file-cells.js';
import { runIdleCells } from './runner/idle-cells.js';
import { loadBetween, loadSnapshot } from './runner/load.js';
import { runMessageCells } from './runner/message-cells.js';
import { parseOptions } from './runner/options.js';
import { runRecoveryCell } from './runner/recovery-cell.js';
import { writeResults } from './runner/results.js';

/** Recovery mostly waits on timers, so it runs alongside idle-connections when both are chosen. */
async function recoveryAndIdle(ctx: Context): Promise<void> {
  const { scenarios, quick } = ctx.options;
  const idle = scenarios.includes('idle-connections');
  if (scenarios.includes('recovery')) {
    const recovery = runRecoveryCell(ctx, idle);
    if (!idle) return recovery;
    // Let the recovery workers start (many processes compiling at once) before idle measures.
    await sleep(quick ? 7000 : 10_000);
    await runIdleCells(ctx);
    return recovery;
  }
  if (idle) await runIdleCells(ctx);
}

async function main(): Promise<void> {
  const benchDir = dirname(fileURLToPath(import.meta.url));
  const ctx = createContext(parseOptions(process.argv.slice(2), benchDir), benchDir);
  const { scenarios } = ctx.options;
  const started = await loadSnapshot();
  if (scenarios.includes('throughput') || scenarios.includes('rtt')) await runMessageCells(ctx);
  if (scenarios.includes('file')) await runFileCells(ctx);
  await recoveryAndIdle(ctx);
  if (scenarios.includes('cluster-resume') && ctx.options.systems.includes('tether-cluster')) {
    await runClusterResumeCell(ctx);
  }
  if (scenarios.includes('dashboard-cost')) await runDashboardCostCells(ctx);
  if (scenarios.includes('bundle')) await runBundleCell(ctx);
  const ended = await loadSnapshot();
  const seconds = Math.round((ended.time - started.time) / 1000);
  process.stdout.write(writeResults(ctx, seconds, loadBetween(started, ended)));
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  },
);
