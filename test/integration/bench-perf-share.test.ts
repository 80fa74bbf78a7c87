import { describe, expect, it } from 'vitest';
import { countPerfSamples, PerfMap } from '../../bench/lib/perf-share.js';

// A --perf-basic-prof map: code written over a range used before (V8 frees code and reuses its
// space), the later line naming it.
const MAP = [
  '1000 100 JS:~ /app/node_modules/prom-client/lib/metrics/processResources.js:1:1',
  '2000 80 JS:*#drainBatch file:///app/packages/core/dist/connection.js:425:16',
  // Over the second half of the first range, and past its end.
  '1080 100 JS:^#reply file:///app/packages/server/dist/dashboard/dashboard.js:181:11',
  '3000 40 JS:^parserOnIncoming node:_http_server:1025:27',
  // Over the middle of the #reply range.
  '10a0 10 JS:~writeOrBuffer node:internal/streams/writable:548:23',
].join('\n');

const isDashboard = (name: string) =>
  name.includes('/server/dist/dashboard/') || name.includes('/node_modules/prom-client/');

describe('bench: CPU attribution from perf samples', () => {
  it('names each address by the latest map line that covers it', () => {
    const map = new PerfMap(MAP);
    expect(map.nameAt(0x1000)).toMatch(/processResources/);
    expect(map.nameAt(0x107f)).toMatch(/processResources/);
    expect(map.nameAt(0x1080)).toMatch(/#reply/);
    expect(map.nameAt(0x10a5)).toMatch(/writeOrBuffer/);
    expect(map.nameAt(0x10b0)).toMatch(/#reply/);
    expect(map.nameAt(0x117f)).toMatch(/#reply/);
    expect(map.nameAt(0x1180)).toBeUndefined();
    expect(map.nameAt(0x2050)).toMatch(/#drainBatch/);
    expect(map.nameAt(0xfff)).toBeUndefined();
  });

  it('counts the samples inside the window for the part, else for HTTP, else for neither', () => {
    const map = new PerfMap(MAP);
    const sample = (seconds: string, ...ips: string[]) =>
      `node 7 ${seconds}: \n${ips.map((ip) => `\t    ${ip}`).join('\n')}\n`;
    const script = [
      // Before the window: not counted.
      sample('100.000000', '1090'),
      // The dashboard's reply, with the kernel's frames of its write inside.
      sample('100.500000', 'ffffffff8206652b', '1090', '3010'),
      // Node's HTTP server alone.
      sample('100.600000', '3010', '7f0000000000'),
      // The core's own work.
      sample('100.700000', '2040'),
      // Stale space of the once-run module body, now #reply's: the dashboard.
      sample('100.800000', '10b0'),
      // Over the range again (writeOrBuffer), called from the core: not the dashboard.
      sample('100.900000', '10a4', '2040'),
      // After the window.
      sample('101.000001', '1090'),
    ].join('\n');
    const counts = countPerfSamples(script, map, isDashboard, 100_000_000_001n, 101_000_000_000n);
    expect(counts).toEqual({ samples: 5, part: 2, http: 1 });
  });
});
