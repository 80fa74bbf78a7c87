import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

/**
 * What an instance's application did, one line per event, written with a synchronous write
 * before the handler returns: once a line is in the journal, the kernel has it, and a `kill -9`
 * of the instance cannot take it back. A message the instance was handling when it died is in
 * the journal or not, exactly as it reached its application or not. Lines (fields separated by
 * one space; values never hold one):
 *
 * - `m <at> <clientId> <seq> <redelivered 0|1> <value>`: a client message reached the application;
 * - `t <value> <clientId>`: the application is about to send `value` to the client;
 * - `a <at> <value> <id>`: the store accepted it (`id` = `sessionId:seq`);
 * - `c <at> <clientId> <resumed 0|1>`: a client's session opened on this instance;
 * - `r <value> <code>`: a send was rejected (it may still be delivered if it was accepted).
 */
export type JournalLine =
  | { kind: 'm'; at: number; clientId: string; seq: number; redelivered: boolean; value: string }
  | { kind: 't'; value: string; clientId: string }
  | { kind: 'a'; at: number; value: string; id: string }
  | { kind: 'c'; at: number; clientId: string; resumed: boolean }
  | { kind: 'r'; value: string; code: string };

/** Appends journal lines with one write each. */
export class JournalWriter {
  readonly #fd: number;

  constructor(path: string) {
    this.#fd = openSync(path, 'a');
  }

  line(text: string): void {
    writeSync(this.#fd, `${text}\n`);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Reads a journal; a line cut short by a kill (no newline) is ignored. */
export function readJournal(path: string): JournalLine[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const lines: JournalLine[] = [];
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  for (const raw of complete.split('\n')) {
    if (raw === '') continue;
    const f = raw.split(' ');
    switch (f[0]) {
      case 'm':
        lines.push({
          kind: 'm',
          at: Number(f[1]),
          clientId: f[2] ?? '',
          seq: Number(f[3]),
          redelivered: f[4] === '1',
          value: f[5] ?? '',
        });
        break;
      case 't':
        lines.push({ kind: 't', value: f[1] ?? '', clientId: f[2] ?? '' });
        break;
      case 'a':
        lines.push({ kind: 'a', at: Number(f[1]), value: f[2] ?? '', id: f[3] ?? '' });
        break;
      case 'c':
        lines.push({ kind: 'c', at: Number(f[1]), clientId: f[2] ?? '', resumed: f[3] === '1' });
        break;
      case 'r':
        lines.push({ kind: 'r', value: f[1] ?? '', code: f[2] ?? '' });
        break;
    }
  }
  return lines;
}
