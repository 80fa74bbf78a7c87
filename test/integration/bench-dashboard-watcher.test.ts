// The `tether-watched` bench system's watcher (bench/systems/dashboard-watcher.ts): it must really
// hold the live page's stream and scrape /metrics, and fail loudly when it cannot, since a
// dashboard nobody watches would make the benchmark's cost figure too low.
import { TetherServer } from '@tether/server';
import { afterEach, expect, it, vi } from 'vitest';
import {
  type DashboardWatcher,
  WatchError,
  WatchFailure,
  watchDashboard,
} from '../../bench/systems/dashboard-watcher.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startDashboard(dashboard: { intervalMs?: number; maxStreams?: number }) {
  const server = new TetherServer({ port: 0, dashboard: { port: 0, ...dashboard } });
  cleanups.push(() => server.close({ drainTimeoutMs: 0 }));
  await server.listen();
  return { server, port: server.dashboardAddress?.port as number };
}

async function watch(
  port: number,
  options: { scrapeEveryMs?: number; silenceMs?: number } = {},
): Promise<{ watcher: DashboardWatcher; failures: WatchError[] }> {
  const failures: WatchError[] = [];
  const watcher = await watchDashboard({
    port,
    ...options,
    onFailure: (error) => failures.push(error),
  });
  cleanups.push(() => watcher.close());
  return { watcher, failures };
}

it('dashboard watcher - reads the live page updates and scrapes /metrics until closed', async () => {
  const { server, port } = await startDashboard({ intervalMs: 50 });
  const { watcher, failures } = await watch(port, { scrapeEveryMs: 50 });
  expect(watcher.updates).toBeGreaterThanOrEqual(1);
  expect(watcher.scrapes).toBe(1);
  await vi.waitFor(
    () => {
      expect(watcher.updates).toBeGreaterThanOrEqual(4);
      expect(watcher.scrapes).toBeGreaterThanOrEqual(4);
    },
    { timeout: 5000, interval: 20 },
  );
  watcher.close();
  const { updates, scrapes } = watcher;
  // Closed: nothing more is read, and the dashboard going away is no failure.
  await server.close({ drainTimeoutMs: 0 });
  expect([watcher.updates, watcher.scrapes]).toEqual([updates, scrapes]);
  expect(failures).toEqual([]);
});

it('dashboard watcher - does not start when the dashboard refuses the stream', async () => {
  const { port } = await startDashboard({ maxStreams: 1 });
  await watch(port);
  const second = watchDashboard({ port, onFailure: () => {} });
  await expect(second).rejects.toBeInstanceOf(WatchError);
  await expect(second).rejects.toMatchObject({ code: WatchFailure.STREAM_REFUSED });
});

it('dashboard watcher - reports the dashboard going away as the stream ending', async () => {
  const { server, port } = await startDashboard({});
  const { failures } = await watch(port);
  await server.close({ drainTimeoutMs: 0 });
  await vi.waitFor(() => expect(failures).toHaveLength(1), { timeout: 5000, interval: 20 });
  expect(failures[0]?.code).toBe(WatchFailure.STREAM_ENDED);
});

it('dashboard watcher - reports a stream with no update for silenceMs', async () => {
  // The page updates once (when it opens), then not for a minute.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  const { port } = await startDashboard({ intervalMs: 60_000 });
  const { failures } = await watch(port, { silenceMs: 10_000, scrapeEveryMs: 60_000 });
  vi.advanceTimersByTime(9_999);
  expect(failures).toEqual([]);
  vi.advanceTimersByTime(1);
  expect(failures.map((f) => f.code)).toEqual([WatchFailure.STREAM_SILENT]);
});
