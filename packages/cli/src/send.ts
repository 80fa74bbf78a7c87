import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { TetherClient, type TetherError, type TransferProgress } from '@tether/client';
import {
  CLIENT_HELP,
  CLIENT_OPTIONS,
  duration,
  ExitCode,
  flag,
  parse,
  parseEndpoint,
  UsageError,
} from './args.js';
import { clientOptions } from './connect-options.js';
import { errorText, escapeText, field } from './safe-text.js';
import { createOutput, formatBytes, formatMs, type Output, onSignal, progressBar } from './term.js';

export const SEND_HELP: string = `Usage: tether send <host:port> <text...> [options]

Sends each <text> argument as one message (UTF-8) and waits until the server's application has
received it (exactly once, in order, across link drops). With "-" as the only text, sends each
line of standard input as a message.

Options:
  --timeout <d>        give up after this long (default 30s)
${CLIENT_HELP}
  -h, --help           this help`;

export const SEND_FILE_HELP: string = `Usage: tether send-file <host:port> <files...> [options]

Sends files to \`tether serve --upload-dir\`. Transfers resume after a link drop (and after a
restart of this command, from the server's committed offset); each file is verified by SHA-256
on arrival and the hash is printed once it matches the local file's. Progress bars (rate, ETA) on
a terminal; a progress line every second otherwise.

Options:
  --timeout <d>        give up after this long (default: none)
${CLIENT_HELP}
  -h, --help           this help`;

const OPTIONS = { ...CLIENT_OPTIONS, timeout: { type: 'string' } } as const;

/**
 * Prints the client's state changes and reconnect attempts as lines. Reasons, codes, messages and
 * ids can come from the server: they are printed escaped.
 */
export function reportClient(client: TetherClient, out: Output, prefix = ''): void {
  client.on('state', (change) => {
    const error = change.error === undefined ? '' : ` [${escapeText(change.error.code)}]`;
    out.line(
      `${prefix}state ${change.previous} -> ${change.state}: ${escapeText(change.reason)}${error}`,
    );
  });
  client.on('reconnecting', (info) =>
    out.line(`${prefix}reconnecting: attempt ${info.attempt} in ${formatMs(info.delayMs)}`),
  );
  client.on('session', (info) => {
    if (info.resumed)
      out.line(
        `${prefix}session ${field(info.sessionId.slice(0, 8))} resumed, ${info.resent} re-sent`,
      );
    else if (info.lost) out.line(`${prefix}session lost: ${info.resent} messages sent again`);
  });
  client.on('error', (error) =>
    out.line(`${prefix}error ${escapeText(error.code)}: ${escapeText(error.message)}`),
  );
}

async function readLines(): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .split(/\r?\n/)
    .filter((line) => line !== '');
}

function deadline(ms: number | undefined, client: TetherClient, out: Output): () => void {
  if (ms === undefined) return () => {};
  const timer = setTimeout(() => {
    out.line(`timed out after ${formatMs(ms)}`);
    void client.close();
  }, ms);
  return () => clearTimeout(timer);
}

/** `tether send <host:port> <text...>` */
export async function send(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('send', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(SEND_HELP);
    return ExitCode.OK;
  }
  const [target, ...texts] = parsed.positionals;
  const endpoint = parseEndpoint('send: target', target);
  if (texts.length === 0) throw new UsageError('send: missing <text> (or "-" for stdin lines)');
  const timeoutMs = duration(parsed, 'timeout', 30_000);
  const messages = texts.length === 1 && texts[0] === '-' ? await readLines() : texts;
  const client = new TetherClient(clientOptions(parsed, endpoint));
  reportClient(client, out);
  const stop = deadline(timeoutMs, client, out);
  const disposeSignal = onSignal(() => void client.close());
  let failed = 0;
  try {
    await client.connect();
    const sends = messages.map((text) =>
      client.send(text).then(
        (receipt) => out.line(`delivered ${field(receipt.id)} (${Buffer.byteLength(text)} bytes)`),
        (error: TetherError) => {
          failed++;
          out.line(`failed: ${errorText(error)}`);
        },
      ),
    );
    await Promise.all(sends);
  } catch (error) {
    out.line(`send: ${errorText(error)}`);
    failed = Math.max(failed, 1);
  } finally {
    stop();
    disposeSignal();
    await client.close();
  }
  return failed === 0 ? ExitCode.OK : ExitCode.FAILED;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface Bar {
  name: string;
  progress: TransferProgress | undefined;
  size: number;
  status: string | undefined;
}

/** `tether send-file <host:port> <files...>` */
export async function sendFile(argv: string[], out: Output = createOutput()): Promise<number> {
  const parsed = parse('send-file', argv, OPTIONS);
  if (flag(parsed, 'help')) {
    out.line(SEND_FILE_HELP);
    return ExitCode.OK;
  }
  const [target, ...files] = parsed.positionals;
  const endpoint = parseEndpoint('send-file: target', target);
  if (files.length === 0) throw new UsageError('send-file: missing <files...>');
  for (const file of files) {
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || !info.isFile()) {
      throw new UsageError(`send-file: ${file} is not a readable file`);
    }
  }
  const timeoutMs =
    parsed.values.timeout === undefined ? undefined : duration(parsed, 'timeout', 0);
  const client = new TetherClient(clientOptions(parsed, endpoint));
  reportClient(client, out);
  const stop = deadline(timeoutMs, client, out);
  const disposeSignal = onSignal(() => void client.close());
  const bars: Bar[] = [];
  const draw = (): void =>
    out.region(
      bars.map((bar) => {
        const p = bar.progress;
        const shown = escapeText(bar.name);
        const name = shown.length > 24 ? `${shown.slice(0, 23)}…` : shown.padEnd(24);
        if (bar.status !== undefined) return `${name} ${bar.status}`;
        return `${name} ${progressBar(p?.bytesCommitted ?? 0, bar.size, p?.rateBytesPerSec ?? 0, p?.etaMs)}`;
      }),
    );
  const ticker = setInterval(
    () => {
      if (out.live) draw();
      else
        for (const bar of bars) {
          if (bar.status !== undefined || bar.progress === undefined) continue;
          const p = bar.progress;
          const percent = bar.size === 0 ? 100 : Math.floor((p.bytesCommitted / bar.size) * 100);
          out.line(
            `progress ${field(bar.name)} ${percent}% ${formatBytes(p.bytesCommitted)}/${formatBytes(bar.size)} ${formatBytes(p.rateBytesPerSec)}/s ETA ${formatMs(p.etaMs)}`,
          );
        }
    },
    out.live ? 200 : 1000,
  );
  let failed = 0;
  try {
    await client.connect();
    await Promise.all(
      files.map(async (file) => {
        const path = resolve(file);
        const transfer = client.sendFile(path);
        const bar: Bar = {
          name: basename(file),
          progress: undefined,
          size: transfer.size,
          status: undefined,
        };
        bars.push(bar);
        transfer.on('progress', (progress) => {
          bar.progress = progress;
        });
        const local = sha256File(path);
        try {
          const result = await transfer.done;
          const expected = await local;
          if (result.sha256 !== expected) {
            failed++;
            bar.status = 'SHA-256 MISMATCH';
            out.line(
              `mismatch ${field(bar.name)}: server ${escapeText(result.sha256)}, local ${expected}`,
            );
            return;
          }
          bar.status = `verified in ${formatMs(result.durationMs)}`;
          const resumed =
            result.resumedFrom > 0 ? `, resumed from ${formatBytes(result.resumedFrom)}` : '';
          out.line(
            `verified ${field(bar.name)} ${result.size} bytes in ${formatMs(result.durationMs)}${resumed} sha256 ${result.sha256}`,
          );
        } catch (error) {
          failed++;
          bar.status = `failed: ${escapeText(String((error as TetherError).code))}`;
          out.line(`failed ${field(bar.name)}: ${errorText(error)}`);
        }
      }),
    );
  } catch (error) {
    out.line(`send-file: ${errorText(error)}`);
    failed = Math.max(failed, 1);
  } finally {
    clearInterval(ticker);
    if (out.live) draw();
    out.done();
    stop();
    disposeSignal();
    await client.close();
  }
  return failed === 0 ? ExitCode.OK : ExitCode.FAILED;
}
