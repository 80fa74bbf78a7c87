import { setTimeout as sleep } from 'node:timers/promises';
import { TetherClient } from '@tether/client';
import {
  CLIENT_HELP,
  CLIENT_OPTIONS,
  duration,
  ExitCode,
  flag,
  integer,
  parse,
  parseEndpoint,
  UsageError,
} from './args.js';
import { clientOptions } from './connect-options.js';
import { errorText } from './safe-text.js';
import { reportClient } from './send.js';
import { createOutput, type Output, onSignal } from './term.js';

export const PING_HELP: string = `Usage: tether ping <host:port> [options]

Measures round-trip time like ping(8): each probe is a request() that \`tether serve\` echoes, so
the time covers the whole path through both applications (framing, the reliable stream and the
handler), not just the kernel. The connection is opened once, before the first probe. Runs until
Ctrl-C unless --count is given, then prints min/avg/max/mdev. Exit code 1 if no probe got a reply.

Options:
  -c, --count <n>      stop after n probes
  -i, --interval <d>   time between probes (default 1s)
  -W, --timeout <d>    a probe without a reply after this long is lost (default 5s)
  -s, --size <n>       payload bytes per probe (default 56)
${CLIENT_HELP}
  -h, --help           this help`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  count: { type: 'string', short: 'c' },
  interval: { type: 'string', short: 'i' },
  timeout: { type: 'string', short: 'W' },
  size: { type: 'string', short: 's' },
} as const;

/** `tether ping <host:port>` */
export async function ping(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('ping', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(PING_HELP);
    return ExitCode.OK;
  }
  const [target, ...rest] = parsed.positionals;
  if (rest.length > 0) throw new UsageError(`ping: unexpected argument ${JSON.stringify(rest[0])}`);
  const endpoint = parseEndpoint('ping: target', target);
  const count = integer(parsed, 'count', Number.POSITIVE_INFINITY);
  const intervalMs = duration(parsed, 'interval', 1000);
  const timeoutMs = duration(parsed, 'timeout', 5000);
  const size = integer(parsed, 'size', 56, 0);
  const client = new TetherClient(clientOptions(parsed, endpoint));
  reportClient(client, out);
  const abort = new AbortController();
  const disposeSignal = onSignal(() => abort.abort());
  const name = `${endpoint.host}:${endpoint.port}`;
  const samples: number[] = [];
  let sent = 0;
  const started = performance.now();
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) =>
        abort.signal.addEventListener('abort', () => reject(new Error('interrupted'))),
      ),
    ]);
    out.line(`PING ${name}: ${size} data bytes (request/echo round trips)`);
    for (let seq = 1; seq <= count && !abort.signal.aborted; seq++) {
      const payload = Buffer.alloc(size, seq & 0xff);
      sent++;
      const t0 = performance.now();
      try {
        const reply = await client.request(payload, { timeoutMs, signal: abort.signal });
        const rtt = performance.now() - t0;
        samples.push(rtt);
        out.line(`${reply.length} bytes from ${name}: seq=${seq} time=${rtt.toFixed(3)} ms`);
      } catch (error) {
        if (abort.signal.aborted) {
          sent--;
          break;
        }
        out.line(`no reply for seq=${seq}: ${errorText(error)}`);
      }
      if (seq < count) await sleep(intervalMs, undefined, { signal: abort.signal }).catch(() => {});
    }
  } catch (error) {
    if (!abort.signal.aborted) out.line(`ping: ${errorText(error)}`);
  } finally {
    disposeSignal();
    await client.close();
  }
  const received = samples.length;
  const loss = sent === 0 ? 0 : ((sent - received) / sent) * 100;
  out.line(`--- ${name} tether ping statistics ---`);
  out.line(
    `${sent} requests transmitted, ${received} received, ${loss.toFixed(0)}% packet loss, time ${Math.round(performance.now() - started)}ms`,
  );
  if (received > 0) {
    const min = Math.min(...samples);
    const max = Math.max(...samples);
    const avg = samples.reduce((a, b) => a + b, 0) / received;
    const mdev = Math.sqrt(samples.reduce((a, b) => a + (b - avg) ** 2, 0) / received);
    const f = (n: number): string => n.toFixed(3);
    out.line(`rtt min/avg/max/mdev = ${f(min)}/${f(avg)}/${f(max)}/${f(mdev)} ms`);
  }
  return received > 0 ? ExitCode.OK : ExitCode.FAILED;
}
