// The recovery cell: every system at once, one run each, through a @tether/chaos proxy
// (scenarios/recovery.ts). It is mostly waiting on each system's own timers.
import { IDLE_ONLY, type Row } from '../lib/common.js';
import { type Context, failedRow } from './context.js';
import { loadBetween, loadSnapshot } from './load.js';
import { SystemPair } from './system-pair.js';

export async function runRecoveryCell(ctx: Context, alongsideIdle: boolean): Promise<void> {
  const { options } = ctx;
  const systems = options.systems.filter((s) => !IDLE_ONLY.includes(s));
  const capMs = options.quick ? 16_000 : 100_000;
  const healCapMs = options.quick ? 12_000 : 20_000;
  ctx.notes.push(
    `recovery: one run per system (detection capped at ${capMs / 1000} s, first delivery at ${healCapMs / 1000} s); systems ran concurrently${alongsideIdle ? ', alongside idle-connections' : ''}.`,
  );
  ctx.log(`# recovery: ${systems.join(', ')} (concurrently, cap ${capMs / 1000} s)`);
  const before = await loadSnapshot();
  const rows = await Promise.all(
    systems.map(async (system): Promise<Row[]> => {
      let pair: SystemPair | undefined;
      try {
        pair = await SystemPair.start(ctx, system, 'recovery', { mode: 'echo' });
        return await pair.op<Row[]>('run', { capMs, healCapMs }, capMs + healCapMs + 60_000);
      } catch (error) {
        return [failedRow(ctx, system, 'recovery', 16, error)];
      } finally {
        await pair?.stop(ctx);
      }
    }),
  );
  const after = await loadSnapshot();
  ctx.rows.push(...rows.flat());
  ctx.cells.push({
    scenario: 'recovery',
    payloadBytes: 16,
    metric: null,
    systems: [...systems],
    repetitions: [],
    ratios: [],
    load: loadBetween(before, after),
    flags: [],
  });
}
