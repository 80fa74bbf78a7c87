import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// V8 pretenures an object-literal or array-literal allocation site (allocates its objects
// straight in the old generation, for the rest of the process) when nearly all of its objects
// survived a scavenge of a full-sized new space. A message waits for its acknowledgement for a
// few milliseconds; when the decision fell during a burst, every later message was allocated
// old and died old: a mark-compact every few scavenges, and the client process stayed at about
// twice its CPU per message for its whole life (bench/README.md, "Cost per message"). So
// nothing a message keeps until its acknowledgement may come from such a site, on either side.

/** Runs a probe with pretenuring traced; returns the per-message sites V8 chose to tenure. */
async function tenuredSites(probe: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tether/source',
      '--expose-gc',
      '--min-semi-space-size=1',
      '--max-semi-space-size=1',
      '--trace-pretenuring-statistics',
      fileURLToPath(new URL(probe, import.meta.url)),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  expect(stdout).toContain('probe done');
  const decisions = stdout.split('\n').filter((line) => line.includes('(created, found, ratio)'));
  // The trace is there (V8 still reports its decisions in this form): else nothing is checked.
  expect(decisions.length).toBeGreaterThan(0);
  // "(created, found, ratio) (5000, 5000, 1.000000) maybe tenure => tenure": sites that made a
  // thousand objects or more between two scavenges are per message.
  return decisions
    .map((line) => /\(created, found, ratio\) \((\d+), \d+, [\d.]+\) .*=> tenure$/.exec(line))
    .filter((m) => m !== null && Number(m[1]) >= 1000)
    .map((m) => m?.[0] ?? '');
}

describe('pretenuring - messages in flight', () => {
  it('client: no allocation site of a queued send() is pretenured', async () => {
    expect(await tenuredSites('./tenure-probe-client.ts')).toEqual([]);
  }, 30_000);

  it('server: no allocation site of a message to a client is pretenured', async () => {
    expect(await tenuredSites('./tenure-probe-server.ts')).toEqual([]);
  }, 30_000);
});
