// The dashboard-cost cell's attribution (bench/lib/profile-share.ts): the dashboard's share of
// a server's CPU is the share of profiler samples whose stack holds a dashboard frame. It must
// count work done inside the dashboard's frames, and only that: a share that stays near zero
// whatever the dashboard does would say "2 % holds" of any dashboard.
import { join } from 'node:path';
import { TetherServer } from '@tether/server';
import { afterEach, expect, it } from 'vitest';
import {
  attribute,
  type CpuProfile,
  dashboardFrames,
  Profiler,
  shareOf,
} from '../../bench/lib/profile-share.js';
import { Metrics } from '../../packages/server/src/dashboard/metrics.js';

const root = join(import.meta.dirname, '..', '..');
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Keeps the thread busy for `ms` of wall time (the sampler counts wall time). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

it('profile share - counts a sample for the part when any frame of its stack is the part; (idle) out of the total, GC and (program) apart', () => {
  const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({
    id,
    callFrame: { functionName, url, lineNumber: 9 },
    children,
  });
  const profile: CpuProfile = {
    nodes: [
      frame(1, '(root)', '', [2, 3, 4, 5, 9]),
      frame(2, '(idle)', ''),
      frame(3, '(garbage collector)', ''),
      frame(4, '(program)', ''),
      // part -> server code -> Buffer: the part's, under its innermost frame of the part.
      frame(5, 'update', 'file:///app/dashboard/live-stream.js', [6]),
      frame(6, 'write', 'file:///app/socket.js', [7]),
      frame(7, 'from', 'node:buffer'),
      // prom-client under the server's code.
      frame(9, 'emit', 'node:events', [10, 11]),
      frame(10, 'escape', 'file:///app/node_modules/.pnpm/x/node_modules/prom-client/lib/r.js'),
      frame(11, 'parserOnHeadersComplete', 'node:_http_common'),
    ],
    samples: [2, 2, 2, 2, 3, 4, 5, 6, 7, 7, 9, 10, 11],
  };
  const counts = attribute(profile, dashboardFrames('/app/dashboard/'));
  expect(counts).toEqual({
    samples: 13,
    idle: 4,
    gc: 1,
    program: 1,
    part: 5,
    http: 1,
    byFunction: { 'update live-stream.js:10': 4, 'escape r.js:10': 1 },
  });
  // 5 of the 9 samples not idle.
  const share = shareOf(counts, counts.part);
  expect(share.busy).toBe(9);
  expect(share.percent).toBeCloseTo((5 / 9) * 100, 9);
  expect(share.sePercent).toBeCloseTo(Math.sqrt((5 / 9) * (4 / 9) * (1 / 9)) * 100, 9);
  // Another directory's frames are not the part's.
  expect(attribute(profile, dashboardFrames('file:///other/dashboard/')).part).toBe(1);
});

it('profile share - work injected into the dashboard (a /metrics scrape made 20 ms slower) shows in the share; without it the share stays small', async () => {
  const server = new TetherServer({ port: 0, dashboard: { port: 0 } });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  await server.listen();
  const url = `http://127.0.0.1:${server.dashboardAddress?.port}/metrics`;
  const isDashboard = dashboardFrames(join(root, 'packages', 'server', 'src', 'dashboard', '/'));
  const profiler = new Profiler();
  // 10 scrapes beside 200 ms of the process's own work, profiled.
  const run = async () => {
    await profiler.start(200);
    for (let i = 0; i < 10; i++) {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      await response.text();
      spin(20);
    }
    return attribute(await profiler.stop(), isDashboard);
  };
  await run(); // compiled, connections pooled
  const plain = await run();
  // The scrape's formatting (Metrics.text, called from the dashboard's request handler) spins
  // 20 ms first: the spin's own frame is not the dashboard's, the handler below it is.
  const text = Metrics.prototype.text;
  Metrics.prototype.text = function (this: Metrics) {
    spin(20);
    return text.call(this);
  };
  cleanups.push(() => {
    Metrics.prototype.text = text;
  });
  const slowed = await run();
  const plainShare = shareOf(plain, plain.part).percent;
  const slowedShare = shareOf(slowed, slowed.part).percent;
  // 200 ms of the 400+ ms not idle: about half (the fetch client's work is in the total too).
  expect(slowedShare).toBeGreaterThan(35);
  expect(plainShare).toBeLessThan(15);
  expect(slowedShare - plainShare).toBeGreaterThan(25);
  const top = Object.entries(slowed.byFunction).sort((a, b) => b[1] - a[1])[0]?.[0];
  expect(top).toMatch(/dashboard\.ts:\d+$/);
}, 30_000);
