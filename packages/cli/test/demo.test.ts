import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, tether } from './spawn.js';

afterEach(killAll);

describe('cli - demo', () => {
  it('demo - every check holds and it exits 0', { timeout: 60_000 }, async () => {
    const demo = tether(['demo']);
    // The demo bounds itself to well under a minute; if it does not, show where it stood.
    const code = await Promise.race([demo.exited, sleep(55_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') await demo.kill();
    const out = demo.stdout();
    if (code !== 0) console.error(out, demo.stderr());
    expect(out).toContain('=== Tether demo: verification summary ===');
    expect(out).toMatch(/delivered exactly once, in order\s+PASS/);
    expect(out).toMatch(/files verified by SHA-256\s+PASS\s+3 of 3/);
    expect(out).toMatch(/^RESULT: PASS \(7\/7 checks\) in [\d.]+ s$/m);
    expect(code).toBe(0);
  });
});
