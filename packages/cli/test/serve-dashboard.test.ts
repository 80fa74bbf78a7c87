import { afterEach, describe, expect, it } from 'vitest';
import { killAll, tether } from './spawn.js';

afterEach(killAll);

// Each case compiles the CLI through tsx in its own process: allow for a loaded machine.
describe('cli - serve --dashboard', { timeout: 30_000 }, () => {
  it('serve --dashboard prints the address; /readyz and /metrics answer there', async () => {
    const server = tether(['serve', '--port', '0', '--dashboard', '127.0.0.1:0']);
    const [, port] = await server.waitFor(/dashboard on http:\/\/127\.0\.0\.1:(\d+)\//);
    await server.waitFor(/listening on tcp:/);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('# TYPE tether_sessions gauge');
    await server.kill();
  });

  it('serve --dashboard-token: the token is required and never printed', async () => {
    const token = 'cli-dashboard-token-0123456789';
    const server = tether(['serve', '--port', '0', '--dashboard', '0'], {
      TETHER_DASHBOARD_TOKEN: token,
    });
    const [, port] = await server.waitFor(
      /dashboard on http:\/\/127\.0\.0\.1:(\d+)\/ \(token required/,
    );
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(401);
    const withToken = await fetch(`http://127.0.0.1:${port}/healthz`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(withToken.status).toBe(200);
    await server.kill();
    expect(server.stdout()).not.toContain(token);
  });

  it('a dashboard off loopback without a token, or a token without a dashboard, is a usage error', async () => {
    const runs = [
      tether(['serve', '--port', '0', '--dashboard', '0.0.0.0:0']),
      tether(['serve', '--port', '0', '--dashboard-token', 'x'.repeat(20)]),
      tether(['serve', '--port', '0', '--dashboard', '127.0.0.1:0', '--dashboard-token', 'short']),
    ];
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes).toEqual([2, 2, 2]);
    for (const run of runs) expect(run.stderr().trim().split('\n')).toHaveLength(1);
    expect(runs[0]?.stderr()).toContain('dashboard.token is required');
  });
});
