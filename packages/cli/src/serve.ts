import { resolve } from 'node:path';
import type { TlsOptions } from 'node:tls';
import { type Peer, type ServerOptions, TetherServer } from '@tether/server';
import {
  duration,
  ExitCode,
  flag,
  integer,
  parse,
  parseEndpoint,
  parsePort,
  readOptionFile,
  secret,
  str,
  UsageError,
} from './args.js';
import { LineLimiter } from './line-limit.js';
import { escapeText, field, quote } from './safe-text.js';
import { createOutput, formatBytes, formatMs, type Output, onSignal, table } from './term.js';

export const SERVE_HELP = `Usage: tether serve [options]

Runs a Tether server. Answers every request() with its own payload (echo), which is what
\`tether ping\` measures. Prints a line per connect, disconnect, eviction, session expiry and
received file (with its SHA-256); on a terminal, a live table of peers below them.

Options:
  -p, --port <n>          port to listen on (default 7070; 0 picks a free one)
  --host <addr>           address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  -d, --upload-dir <dir>  accept files into this directory (without it, file offers are refused)
  --tls-cert <file>       serve TLS with this certificate (PEM); needs --tls-key
  --tls-key <file>        private key (PEM) of --tls-cert
  --tls-ca <file>         CA (PEM) for client certificates
  --require-client-cert   require a client certificate signed by --tls-ca (mutual TLS)
  --secret <s>            require clients to prove this shared secret (or env TETHER_SECRET)
  --ping-interval <d>     ping a client after this much silence (default 5s)
  --evict-after <d>       evict a client silent this long (default 15s)
  --session-ttl <d>       keep a disconnected session for resume this long (default 2m)
  --max-file-size <n>     refuse uploads larger than this many bytes
  --dashboard <addr>      serve the live dashboard, /metrics, /healthz and /readyz over HTTP
                          on host:port (or a port on 127.0.0.1); an address other than
                          loopback needs a token
  --dashboard-token <t>   require this token (16+ characters) on the dashboard (or env
                          TETHER_DASHBOARD_TOKEN): open http://host:port/#token=<t>
  -q, --quiet             no line per message (peers, files and the table stay)
  -h, --help              this help

Durations: 500ms, 10s, 2m, or a bare number of seconds.
Stops on SIGINT/SIGTERM (Ctrl-C), telling clients to come back later.`;

const OPTIONS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'upload-dir': { type: 'string', short: 'd' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'require-client-cert': { type: 'boolean' },
  secret: { type: 'string' },
  'ping-interval': { type: 'string' },
  'evict-after': { type: 'string' },
  'session-ttl': { type: 'string' },
  'max-file-size': { type: 'string' },
  dashboard: { type: 'string' },
  'dashboard-token': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

const PREVIEW = 60;

/** A message payload as text in quotes (escaped, cut after PREVIEW characters), or its size. */
function preview(data: Buffer): string {
  const text = data.toString('utf8');
  // Control characters other than whitespace: binary, not worth showing even escaped.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is what it looks for.
  if (/[\x00-\x08\x0e-\x1f\x7f]/.test(text)) return `<${data.length} bytes>`;
  const chars = [...text.slice(0, PREVIEW * 2)];
  return chars.length > PREVIEW ? `${quote(chars.slice(0, PREVIEW).join(''))}…` : quote(text);
}

// Error lines per remote address: the first ERROR_BURST of each ERROR_WINDOW_MS, then a count.
const ERROR_BURST = 5;
const ERROR_WINDOW_MS = 10_000;

/** The address part of `address:port` (IPv6 addresses hold colons too). */
function hostOf(remoteAddress: string): string {
  return remoteAddress.replace(/:\d+$/, '');
}

function serverOptions(parsed: ReturnType<typeof parse>): ServerOptions {
  const portText = str(parsed, 'port');
  const options: ServerOptions = {
    port: portText === undefined ? 7070 : parsePort('serve: --port', portText),
    host: str(parsed, 'host') ?? '127.0.0.1',
    onRequest: (payload) => payload,
  };
  const uploadDir = str(parsed, 'upload-dir');
  if (uploadDir !== undefined) options.uploadDir = resolve(uploadDir);
  const shared = secret(parsed);
  if (shared !== undefined) options.secret = shared;
  const cert = str(parsed, 'tls-cert');
  const key = str(parsed, 'tls-key');
  const ca = str(parsed, 'tls-ca');
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('serve: --tls-cert and --tls-key go together');
  }
  if (cert !== undefined && key !== undefined) {
    const tls: TlsOptions = {
      cert: readOptionFile('tls-cert', cert),
      key: readOptionFile('tls-key', key),
    };
    if (ca !== undefined) tls.ca = readOptionFile('tls-ca', ca);
    options.tls = tls;
  } else if (ca !== undefined || flag(parsed, 'require-client-cert')) {
    throw new UsageError('serve: --tls-ca and --require-client-cert need --tls-cert and --tls-key');
  }
  if (flag(parsed, 'require-client-cert')) {
    if (ca === undefined) throw new UsageError('serve: --require-client-cert needs --tls-ca');
    options.requireClientCert = true;
  }
  options.pingIntervalMs = duration(parsed, 'ping-interval', 5000);
  options.evictAfterMs = duration(parsed, 'evict-after', 15_000);
  if (options.evictAfterMs <= options.pingIntervalMs) {
    throw new UsageError('serve: --evict-after must be longer than --ping-interval');
  }
  options.sessionTtlMs = duration(parsed, 'session-ttl', 120_000);
  const maxFileSize = integer(parsed, 'max-file-size', 0, 1);
  if (maxFileSize > 0) options.maxFileSize = maxFileSize;
  const dashboard = str(parsed, 'dashboard');
  const token = str(parsed, 'dashboard-token') ?? process.env.TETHER_DASHBOARD_TOKEN;
  if (dashboard !== undefined) {
    const { host, port } = parseEndpoint('serve: --dashboard', dashboard);
    options.dashboard = { host, port, ...(token === undefined || token === '' ? {} : { token }) };
  } else if (str(parsed, 'dashboard-token') !== undefined) {
    throw new UsageError('serve: --dashboard-token needs --dashboard');
  }
  return options;
}

function peerTable(peers: Peer[]): string[] {
  const now = Date.now();
  const rows = [['PEER', 'CLIENT', 'ADDRESS', 'RTT', 'LAST SEEN', 'IN', 'OUT', 'MSGS', 'FILES']];
  for (const peer of peers) {
    const s = peer.stats();
    rows.push([
      s.id.slice(0, 8),
      escapeText(s.clientId.slice(0, 16)),
      s.connected ? s.remoteAddress : `(${s.remoteAddress})`,
      formatMs(s.rtt?.srtt),
      `${formatMs(now - s.lastSeen)} ago`,
      formatBytes(s.bytesIn),
      formatBytes(s.bytesOut),
      `${s.messagesIn}/${s.messagesOut}`,
      String(s.transfers),
    ]);
  }
  if (rows.length === 1) rows.push(['(no peers)']);
  return table(rows);
}

/** `tether serve`: runs until SIGINT/SIGTERM. */
export async function serve(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('serve', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(SERVE_HELP);
    return ExitCode.OK;
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`serve: unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  }
  const options = serverOptions(parsed);
  const quiet = flag(parsed, 'quiet');
  let server: TetherServer;
  try {
    server = new TetherServer(options);
  } catch (error) {
    // A bad combination of options (a dashboard off loopback without a token ...).
    if (error instanceof TypeError) throw new UsageError(`serve: ${error.message}`);
    throw error;
  }
  // Client ids, file names, reasons and error messages come from peers: printed escaped.
  const who = (peer: Peer): string =>
    `${peer.id.slice(0, 8)} ${field(peer.clientId)} ${peer.remoteAddress}`;
  server.on('connection', (peer, info) =>
    out.line(`connect ${who(peer)}${info.resumed ? ' (session resumed)' : ''}`),
  );
  server.on('disconnect', (peer, info) =>
    out.line(`disconnect ${who(peer)}: ${escapeText(info.reason)}`),
  );
  server.on('evict', (peer, info) =>
    out.line(`evict ${who(peer)}: silent for ${formatMs(info.silentMs)}`),
  );
  server.on('expire', (peer, reason) => out.line(`expire ${who(peer)}: ${escapeText(reason)}`));
  server.on('file', (file, peer) =>
    out.line(
      `file ${quote(file.name)} ${file.size} bytes from ${field(peer.clientId)} -> ${escapeText(file.path)} sha256 ${file.sha256}`,
    ),
  );
  server.on('message', (message, peer) => {
    if (quiet) return;
    out.line(`message ${field(message.id)} from ${field(peer.clientId)}: ${preview(message.data)}`);
  });
  // Failed handshakes cost a client nothing: one address must not flood the log with them.
  const errorLines = new LineLimiter((line) => out.line(line), {
    burst: ERROR_BURST,
    intervalMs: ERROR_WINDOW_MS,
    summary: (host, n, ms) =>
      `error ${host}: ${n} more errors suppressed in the last ${formatMs(ms)}`,
  });
  server.on('error', (error, info) =>
    errorLines.line(
      hostOf(info.remoteAddress),
      `error ${info.remoteAddress}: ${escapeText(error.code)} ${escapeText(error.message)}`,
    ),
  );
  let address: Awaited<ReturnType<TetherServer['listen']>>;
  try {
    address = await server.listen();
  } catch (error) {
    // The error names the address that failed: the server's, or the dashboard's.
    const e = error as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = `${e.address ?? options.host}:${e.port ?? options.port}`;
    out.line(`serve: cannot listen on ${where}: ${e.code ?? e.message}`);
    errorLines.close();
    return ExitCode.FAILED;
  }
  const scheme = options.tls === undefined ? 'tcp' : 'tls';
  out.line(`listening on ${scheme}://${address.address}:${address.port}`);
  if (options.uploadDir !== undefined) out.line(`upload directory ${options.uploadDir}`);
  const dashboard = server.dashboardAddress;
  if (dashboard !== undefined) {
    const host = dashboard.family === 'IPv6' ? `[${dashboard.address}]` : dashboard.address;
    const url = `http://${host}:${dashboard.port}/`;
    out.line(
      options.dashboard?.token === undefined
        ? `dashboard on ${url} (metrics ${url}metrics)`
        : `dashboard on ${url} (token required: open ${url}#token=<token>; send Authorization: Bearer <token> to ${url}metrics)`,
    );
  }
  const timer = out.live
    ? setInterval(() => {
        const s = server.stats();
        out.region([
          '',
          ...peerTable(server.peers),
          `${s.connections} connected, ${s.sessions} sessions, ${s.messagesIn} messages in, ${s.evictions} evictions`,
        ]);
      }, 250)
    : undefined;
  await new Promise<NodeJS.Signals>((resolveSignal) => onSignal(resolveSignal));
  if (timer !== undefined) clearInterval(timer);
  out.region([]);
  out.done();
  out.line('shutting down');
  await server.close({ drainTimeoutMs: 1000 });
  errorLines.close();
  return ExitCode.OK;
}
