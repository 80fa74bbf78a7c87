// The cluster-resume cell: `tether-cluster` only (scenarios/cluster-resume.ts). One run of
// `kills` kills; every client moved is one sample.
import { extraRow, type Row } from '../lib/common.js';
import { measureResume } from '../scenarios/cluster-resume.js';
import { type Context, failedRow } from './context.js';
import { loadBetween, loadSnapshot } from './load.js';

function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

export async function runClusterResumeCell(ctx: Context): Promise<void> {
  const { options } = ctx;
  const clients = options.quick ? 150 : 300;
  const kills = options.quick ? 3 : 6;
  ctx.log(`# cluster-resume: tether-cluster, ${clients} clients, ${kills} kills`);
  const execArgv = [
    '--import',
    'tsx',
    ...(options.fromSource ? ['--conditions=@tether/source'] : []),
  ];
  const before = await loadSnapshot();
  let row: Row;
  try {
    const f = await measureResume(clients, kills, execArgv, ctx.log);
    row = extraRow('tether-cluster', 'cluster-resume', 0, {
      clients,
      kills: f.kills,
      moved: f.moved,
      resumeP50Ms: percentile(f.resumeMs, 0.5),
      resumeP99Ms: percentile(f.resumeMs, 0.99),
      resumeMaxMs: percentile(f.resumeMs, 1),
      detectP50Ms: percentile(f.detectMs, 0.5),
      detectP99Ms: percentile(f.detectMs, 0.99),
      afterDetectP50Ms: percentile(f.afterDetectMs, 0.5),
      afterDetectP99Ms: percentile(f.afterDetectMs, 0.99),
      notBack: f.notBack,
      sessionsLost: f.sessionsLost,
    });
  } catch (error) {
    row = failedRow(ctx, 'tether-cluster', 'cluster-resume', 0, error);
  }
  const after = await loadSnapshot();
  ctx.rows.push(row);
  ctx.cells.push({
    scenario: 'cluster-resume',
    payloadBytes: 0,
    metric: null,
    systems: ['tether-cluster'],
    repetitions: [],
    ratios: [],
    load: loadBetween(before, after),
    flags: [],
  });
}
