import { setTimeout as sleep } from 'node:timers/promises';
import { ClientState, TetherClient, type TetherError } from '@tether/client';
import {
  CLIENT_HELP,
  CLIENT_OPTIONS,
  duration,
  ExitCode,
  flag,
  integer,
  number,
  parse,
  parseEndpoint,
  UsageError,
} from './args.js';
import { clientOptions } from './connect-options.js';
import { escapeText } from './safe-text.js';
import { createOutput, formatMs, type Output, onSignal, percentile } from './term.js';

export const SIMULATE_HELP: string = `Usage: tether simulate <host:port> [options]

Runs many clients in this process, each sending messages at a steady rate, and shows a live
summary: clients connected, reconnects, delivered messages per second, delivery RTT p50/p99 (from
send() to the server application's acknowledgement) and errors. At the end, waits for what is
still in flight and prints a summary. Exit code 1 if any message failed or was not delivered.

Options:
  -n, --clients <n>    clients (default 10)
  -r, --rate <n>       messages per second, per client (default 10)
  -d, --duration <d>   how long to send (default 10s)
  --size <n>           payload bytes per message (default 64)
  --ping-interval <d>  client heartbeat interval (default 1s)
  --dead-after <d>     declare a link dead after this much silence (default 5s)
${CLIENT_HELP}
  -h, --help           this help`;

const OPTIONS = {
  ...CLIENT_OPTIONS,
  clients: { type: 'string', short: 'n' },
  rate: { type: 'string', short: 'r' },
  duration: { type: 'string', short: 'd' },
  size: { type: 'string' },
  'ping-interval': { type: 'string' },
  'dead-after': { type: 'string' },
} as const;

// Delivery latencies kept for percentiles: a ring of the most recent ones.
const MAX_SAMPLES = 100_000;
// Distinct error codes counted for the summary; the rest count as OTHER.
const MAX_ERROR_CODES = 16;

/** `tether simulate <host:port>` */
export async function simulate(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('simulate', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(SIMULATE_HELP);
    return ExitCode.OK;
  }
  const [target, ...rest] = parsed.positionals;
  if (rest.length > 0) {
    throw new UsageError(`simulate: unexpected argument ${JSON.stringify(rest[0])}`);
  }
  const endpoint = parseEndpoint('simulate: target', target);
  const clientCount = integer(parsed, 'clients', 10);
  const rate = number(parsed, 'rate', 10);
  const durationMs = duration(parsed, 'duration', 10_000);
  const size = integer(parsed, 'size', 64, 1);
  const pingIntervalMs = duration(parsed, 'ping-interval', 1000);
  const deadAfterMs = duration(parsed, 'dead-after', 5000);
  if (deadAfterMs <= pingIntervalMs) {
    throw new UsageError('simulate: --dead-after must be longer than --ping-interval');
  }
  const base = clientOptions(parsed, endpoint);
  const clients = Array.from(
    { length: clientCount },
    (_, i) =>
      new TetherClient({
        ...base,
        clientId: `${base.clientId ?? 'sim'}-${i + 1}`,
        pingIntervalMs,
        deadAfterMs,
        overflow: 'wait',
      }),
  );
  let sent = 0;
  let delivered = 0;
  let errors = 0;
  const errorCodes = new Map<string, number>();
  const latencies: number[] = [];
  let latencyIndex = 0;
  const noteError = (code: string): void => {
    errors++;
    // A server chooses the codes of its ERROR frames: a few distinct ones are kept, not any number.
    const key = errorCodes.has(code) || errorCodes.size < MAX_ERROR_CODES ? code : 'OTHER';
    errorCodes.set(key, (errorCodes.get(key) ?? 0) + 1);
  };
  for (const client of clients) {
    client.on('error', (error) => noteError(error.code));
  }
  const started = performance.now();
  let lastDelivered = 0;
  let lastTick = started;
  let msgsPerSec = 0;
  const reconnects = (): number => clients.reduce((n, c) => n + c.stats().reconnects, 0);
  const connected = (): number => clients.filter((c) => c.state === ClientState.CONNECTED).length;
  const summary = (): string => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const elapsed = formatMs(performance.now() - started).padStart(6);
    return `${elapsed}  clients ${connected()}/${clientCount}  reconnects ${reconnects()}  sent ${sent}  delivered ${delivered}  ${msgsPerSec.toFixed(0)} msg/s  rtt p50 ${formatMs(percentile(sorted, 50))} p99 ${formatMs(percentile(sorted, 99))}  errors ${errors}`;
  };
  const ticker = setInterval(
    () => {
      const now = performance.now();
      msgsPerSec = ((delivered - lastDelivered) * 1000) / (now - lastTick);
      lastDelivered = delivered;
      lastTick = now;
      if (out.live) out.region([summary()]);
      else out.line(summary());
    },
    out.live ? 250 : 1000,
  );
  const abort = new AbortController();
  const disposeSignal = onSignal(() => abort.abort());
  out.line(
    `simulating ${clientCount} clients x ${rate} msg/s for ${formatMs(durationMs)} against ${endpoint.host}:${endpoint.port}`,
  );
  const payload = Buffer.alloc(size, 0x61);
  const pending: Promise<void>[] = [];
  const run = async (client: TetherClient, index: number): Promise<void> => {
    client.connect().catch((error: TetherError) => noteError(error.code ?? 'CONNECT'));
    // Spread the clients' send times over one interval so they do not fire in lockstep.
    const interval = 1000 / rate;
    await sleep((interval * index) / clientCount);
    const begin = performance.now();
    for (let n = 0; !abort.signal.aborted; n++) {
      const due = begin + n * interval;
      if (due - started >= durationMs) break;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait, undefined, { signal: abort.signal }).catch(() => {});
      if (abort.signal.aborted) break;
      sent++;
      const t0 = performance.now();
      pending.push(
        client.send(payload).then(
          () => {
            delivered++;
            latencies[latencyIndex++ % MAX_SAMPLES] = performance.now() - t0;
          },
          (error: TetherError) => noteError(error.code ?? 'SEND'),
        ),
      );
    }
  };
  await Promise.all(clients.map((client, i) => run(client, i)));
  // Let what is in flight land, for at most a few seconds.
  await Promise.race([Promise.all(pending), sleep(5000)]);
  clearInterval(ticker);
  disposeSignal();
  out.region([]);
  out.done();
  const undelivered = sent - delivered - [...errorCodes.values()].reduce((a, b) => a + b, 0);
  const totalReconnects = reconnects();
  await Promise.all(clients.map((c) => c.close()));
  const elapsedMs = performance.now() - started;
  const sorted = [...latencies].sort((a, b) => a - b);
  out.line('--- simulate summary ---');
  out.line(`clients      ${clientCount}`);
  out.line(`sent         ${sent}`);
  out.line(`delivered    ${delivered} (${((delivered * 1000) / elapsedMs).toFixed(0)} msg/s)`);
  out.line(`reconnects   ${totalReconnects}`);
  out.line(
    `rtt          p50 ${formatMs(percentile(sorted, 50))}  p99 ${formatMs(percentile(sorted, 99))}  max ${formatMs(sorted.at(-1))}`,
  );
  // Codes can come from the server's ERROR frames.
  const codes = [...errorCodes].map(([code, n]) => `${escapeText(code)} x${n}`).join(', ');
  out.line(`errors       ${errors}${codes === '' ? '' : ` (${codes})`}`);
  const ok = errors === 0 && delivered === sent;
  out.line(
    `result       ${ok ? 'PASS' : `FAIL${undelivered > 0 ? ` (${undelivered} undelivered)` : ''}`}`,
  );
  return ok ? ExitCode.OK : ExitCode.FAILED;
}
