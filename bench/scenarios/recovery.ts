// recovery: the client talks to the echo server through a @tether/chaos proxy, sending a small
// message every 50 ms; then the link is black-holed (both ways, sockets kept open). Measured with
// each system's default settings: time until the client notices (capped), and time from healing
// the link until the first echo arrives; messages never echoed count as lost.
import { ChaosProxy } from '@tether/chaos';
import { extraRow, type Row, sleep, type WorkerArgs } from '../lib/common.js';
import { system } from '../systems/index.js';

export async function recoveryRun(
  args: WorkerArgs,
  params: { capMs: number; healCapMs: number },
): Promise<Row[]> {
  const { capMs, healCapMs } = params;
  const proxy = new ChaosProxy({
    target: { host: '127.0.0.1', port: args.port as number },
    seed: 1,
  });
  await proxy.start();
  const c = await (await system(args.system)).connect({
    port: proxy.port,
    ...(args.tls ? { tls: { cert: args.tls.cert } } : {}),
  });
  let deadAt = 0;
  let deadReason = '';
  let cutAt = Number.POSITIVE_INFINITY;
  c.onDead((reason) => {
    if (deadAt === 0 && performance.now() >= cutAt && performance.now() < healAt) {
      deadAt = performance.now();
      deadReason = reason;
    }
  });
  const echoed = new Set<number>();
  let healAt = Number.POSITIVE_INFINITY;
  let firstAfterHeal = 0;
  c.onMessage((d) => {
    if (d.length !== 16) return;
    echoed.add(d.readUInt32BE(0));
    if (firstAfterHeal === 0 && performance.now() >= healAt) firstAfterHeal = performance.now();
  });
  let seq = 0;
  const sendOne = () => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(++seq, 0);
    try {
      const p = c.send(b);
      p?.catch(() => {});
    } catch {}
  };
  const ticker = setInterval(sendOne, 50);
  await sleep(1000);
  cutAt = performance.now();
  const toxic = proxy.addToxic({ type: 'blackhole', direction: 'both' });
  while (deadAt === 0 && performance.now() - cutAt < capMs) await sleep(20);
  proxy.removeToxic(toxic);
  healAt = performance.now();
  while (firstAfterHeal === 0 && performance.now() - healAt < healCapMs) await sleep(5);
  await sleep(1000);
  clearInterval(ticker);
  await sleep(500);
  const lost = seq - echoed.size;
  await c.close().catch(() => {});
  await proxy.stop();
  const detectMs = deadAt === 0 ? null : deadAt - cutAt;
  const recoverMs = firstAfterHeal === 0 ? null : firstAfterHeal - healAt;
  return [
    extraRow(args.system, 'recovery', 16, {
      detectMs,
      detectCapMs: capMs,
      detectReason: deadReason || null,
      firstDeliveryAfterHealMs: recoverMs,
      sent: seq,
      lost,
    }),
  ];
}
