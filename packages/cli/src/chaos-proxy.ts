import { ChaosProxy, parseToxic, type ToxicDefinition } from '@tether/chaos';
import { ExitCode, flag, integer, parse, parseEndpoint, str, strs, UsageError } from './args.js';
import { createOutput, formatBytes, type Output, onSignal, table } from './term.js';

export const CHAOS_PROXY_HELP = `Usage: tether chaos-proxy --listen [host:]port --target host:port [--toxic spec ...]

A fault-injecting TCP proxy (Toxiproxy-style toxics, seeded randomness): point clients at
--listen, and it forwards to --target through the toxics. Runs until Ctrl-C.

Options:
  -l, --listen <addr>   where to listen: port or host:port (default 127.0.0.1:0, a free port)
  -t, --target <addr>   where to connect: host:port (required)
  -x, --toxic <spec>    add a toxic, type:direction[:key=value,...]; repeatable
  --seed <n>            seed of every random choice (printed; pass it back to replay a run)
  -v, --verbose         a line per connection and disconnection
  -h, --help            this help

Toxic types and attributes (direction: upstream, downstream or both; every toxic also takes
toxicity=0..1 and name=...):
  latency     latency=ms [jitter=ms]
  bandwidth   rate=KB/s
  slicer      average_size=bytes [size_variation=bytes] [delay=us]
  limit_data  bytes=n
  timeout     [timeout=ms]
  blackhole
  half_open   (upstream or downstream only)
  reset_peer  [timeout=ms]
  slow_close  delay=ms
  drop        [probability=0..1] [after=ms] [duration=ms]   (drops reads, keeps the link open)

Examples:
  tether chaos-proxy -l 7071 -t 127.0.0.1:7070 -x latency:both:latency=100,jitter=20
  tether chaos-proxy -l 7071 -t 127.0.0.1:7070 -x slicer:both:average_size=8,delay=1000`;

const OPTIONS = {
  listen: { type: 'string', short: 'l' },
  target: { type: 'string', short: 't' },
  toxic: { type: 'string', short: 'x', multiple: true },
  seed: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

/** `tether chaos-proxy` */
export async function chaosProxy(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('chaos-proxy', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(CHAOS_PROXY_HELP);
    return ExitCode.OK;
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(
      `chaos-proxy: unexpected argument ${JSON.stringify(parsed.positionals[0])}`,
    );
  }
  const targetText = str(parsed, 'target');
  if (targetText === undefined) throw new UsageError('chaos-proxy: --target host:port is required');
  const target = parseEndpoint('chaos-proxy: --target', targetText);
  const listen = parseEndpoint('chaos-proxy: --listen', str(parsed, 'listen') ?? '127.0.0.1:0');
  const toxics: ToxicDefinition[] = strs(parsed, 'toxic').map((spec) => {
    try {
      return parseToxic(spec);
    } catch (error) {
      throw new UsageError(`chaos-proxy: ${(error as Error).message}`);
    }
  });
  const seedText = str(parsed, 'seed');
  const seed = seedText === undefined ? undefined : integer(parsed, 'seed', 0, 0);
  if (seed !== undefined && seed > 0xffffffff) {
    throw new UsageError('chaos-proxy: --seed must be a 32-bit unsigned integer');
  }
  const proxy = new ChaosProxy({ listen, target, ...(seed === undefined ? {} : { seed }) });
  for (const toxic of toxics) proxy.addToxic(toxic);
  const verbose = flag(parsed, 'verbose');
  proxy.on('connection', (link) => {
    if (verbose) {
      const got = link.toxics.length === 0 ? 'no toxics' : `toxics ${link.toxics.join(', ')}`;
      out.line(`link ${link.id} from ${link.remoteAddress}:${link.remotePort} (${got})`);
    }
  });
  proxy.on('disconnect', (link) => {
    if (verbose) {
      out.line(
        `link ${link.id} closed: ${formatBytes(link.bytes.upstream)} up, ${formatBytes(link.bytes.downstream)} down`,
      );
    }
  });
  proxy.on('error', (error, link) => {
    if (verbose)
      out.line(
        `link ${link ?? '-'} error: ${(error as NodeJS.ErrnoException).code ?? error.message}`,
      );
  });
  try {
    await proxy.start();
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    out.line(`chaos-proxy: cannot listen on ${listen.host}:${listen.port}: ${e.code ?? e.message}`);
    await proxy.stop();
    return ExitCode.FAILED;
  }
  out.line(
    `listening on ${listen.host}:${proxy.port} -> ${target.host}:${target.port} (seed ${proxy.seed})`,
  );
  for (const toxic of proxy.toxics) out.line(`toxic ${JSON.stringify(toxic)}`);
  const timer = out.live
    ? setInterval(() => {
        const s = proxy.stats();
        const rows = [['LINK', 'CLIENT', 'UP', 'DOWN', 'TOXICS']];
        for (const link of proxy.links) {
          rows.push([
            String(link.id),
            `${link.remoteAddress}:${link.remotePort}`,
            formatBytes(link.bytes.upstream),
            formatBytes(link.bytes.downstream),
            link.toxics.join(',') || '-',
          ]);
        }
        out.region([
          '',
          ...table(rows),
          `${s.active} open, ${s.connections} accepted, ${formatBytes(s.bytes.upstream)} up, ${formatBytes(s.bytes.downstream)} down`,
        ]);
      }, 250)
    : undefined;
  await new Promise<NodeJS.Signals>((resolve) => onSignal(resolve));
  if (timer !== undefined) clearInterval(timer);
  out.region([]);
  out.done();
  await proxy.stop();
  out.line('stopped');
  return ExitCode.OK;
}
