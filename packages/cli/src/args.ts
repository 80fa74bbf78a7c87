import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit codes of every command. */
export const ExitCode = {
  OK: 0,
  /** The command ran and a check failed (transfer failed, no replies, demo check, ...). */
  FAILED: 1,
  /** Bad arguments. */
  USAGE: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };
export type OptionSpecs = Record<string, OptionSpec>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** `parseArgs` with `--help` added and its errors turned into one-line UsageErrors. */
export function parse(command: string, argv: string[], options: OptionSpecs): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? 'bad arguments';
    throw new UsageError(`${command}: ${message.replace(/\. To specify a positional.*$/, '')}`);
  }
}

export function str(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function strs(parsed: Parsed, name: string): string[] {
  const value = parsed.values[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export function flag(parsed: Parsed, name: string): boolean {
  return parsed.values[name] === true;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** Parses `port`, `host:port` or `[v6]:port`. */
export function parseEndpoint(
  what: string,
  text: string | undefined,
  defaultHost = '127.0.0.1',
): Endpoint {
  if (text === undefined || text === '')
    throw new UsageError(`${what} is missing (expected host:port)`);
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (match === null) throw new UsageError(`${what} ${JSON.stringify(text)} is not host:port`);
  const host = match[1] || match[2] || defaultHost;
  return { host, port: parsePort(what, match[3] ?? '') };
}

export function parsePort(what: string, text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new UsageError(`${what}: port ${JSON.stringify(text)} is not an integer from 0 to 65535`);
  }
  return port;
}

/** A positive integer option (or its default). */
export function integer(parsed: Parsed, name: string, fallback: number, minimum = 1): number {
  const text = str(parsed, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < minimum || !Number.isSafeInteger(value)) {
    throw new UsageError(`--${name} must be an integer >= ${minimum}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** A positive number option (or its default). */
export function number(parsed: Parsed, name: string, fallback: number): number {
  const text = str(parsed, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !(value > 0 && Number.isFinite(value))) {
    throw new UsageError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  }
  return value;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, '': 1000 };

/** A duration option: `500ms`, `10s`, `2m`, or a bare number of seconds. Returns ms. */
export function duration(parsed: Parsed, name: string, fallback: number): number {
  const text = str(parsed, name);
  if (text === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|)$/.exec(text.trim());
  const value = match === null ? Number.NaN : Number(match[1]) * (UNITS[match[2] ?? ''] ?? 1);
  if (!(value > 0 && Number.isFinite(value))) {
    throw new UsageError(
      `--${name} must be a duration like 500ms, 10s or 2m, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** Reads a file named by an option, with a one-line error when it cannot. */
export function readOptionFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`--${name}: cannot read ${path} (${code})`);
  }
}

/** The shared secret: `--secret`, else the TETHER_SECRET environment variable. */
export function secret(parsed: Parsed): string | undefined {
  const value = str(parsed, 'secret') ?? process.env.TETHER_SECRET;
  return value === undefined || value === '' ? undefined : value;
}

/** Options every client command takes. */
export const CLIENT_OPTIONS: OptionSpecs = {
  secret: { type: 'string' },
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  'client-id': { type: 'string' },
};

export const CLIENT_HELP = `Connection options:
  --secret <s>         shared secret for the server's challenge (or env TETHER_SECRET)
  --tls                connect over TLS (implied by --ca, --cert)
  --ca <file>          trust this CA (PEM) for the server certificate
  --cert <file>        client certificate (PEM), for mutual TLS; with --key
  --key <file>         client private key (PEM)
  --insecure           do not verify the server certificate (testing only)
  --client-id <id>     stable client id (default: random)`;
