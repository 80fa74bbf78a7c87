/** Terminal output: plain lines everywhere, a redrawn live region (bars, tables) only on a TTY. */

const CSI = '\x1b[';

export interface Output {
  /** Whether live regions are drawn (stdout is a TTY and TERM is not dumb). */
  readonly live: boolean;
  /** Prints one line (above the live region, if any). */
  line(text: string): void;
  /** Replaces the live region with these lines; no-op when not live. */
  region(lines: string[]): void;
  /** Leaves the live region on screen as plain text and stops drawing. */
  done(): void;
}

export interface OutputOptions {
  stream?: NodeJS.WriteStream;
  live?: boolean;
}

/** An {@link Output} on stdout. */
export function createOutput(options: OutputOptions = {}): Output {
  const stream = options.stream ?? process.stdout;
  const live =
    options.live ?? (stream.isTTY === true && process.env.TERM !== 'dumb' && !process.env.CI);
  let drawn = 0;
  let current: string[] = [];
  const width = (): number => Math.max(20, (stream.columns || 100) - 1);
  const clear = (): string => (drawn > 0 ? `${CSI}${drawn}F${CSI}J` : '');
  const draw = (lines: string[]): string => {
    drawn = lines.length;
    return lines.map((l) => `${truncate(l, width())}\n`).join('');
  };
  return {
    live,
    line(text) {
      if (!live) {
        stream.write(`${text}\n`);
        return;
      }
      stream.write(`${clear()}${text}\n${draw(current)}`);
    },
    region(lines) {
      if (!live) return;
      current = lines;
      stream.write(`${clear()}${draw(lines)}`);
    },
    done() {
      current = [];
      drawn = 0;
    },
  };
}

/** Cuts a line (which may hold ANSI colours) to `max` visible characters. */
function truncate(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what we strip.
  const visible = text.replace(/\x1b\[[0-9;]*m/g, '');
  if (visible.length <= max) return text;
  return `${visible.slice(0, max - 1)}…`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}

/** `[#####.....]  52%  1.2 MiB/s  ETA 3.1 s` */
export function progressBar(
  done: number,
  total: number,
  rate: number,
  etaMs: number | undefined,
  width = 24,
): string {
  const fraction = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `${bar} ${percent} ${`${formatBytes(rate)}/s`.padStart(11)}  ETA ${formatMs(etaMs)}`;
}

/** Renders rows as aligned columns; the first row is the header. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Seconds since `start`, as `[  3.142s]`. */
export function clock(start: number): string {
  return `[${((performance.now() - start) / 1000).toFixed(3).padStart(7)}s]`;
}

/** Percentile of a sorted array (nearest rank). */
export function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** Resolves on the first SIGINT or SIGTERM; the handlers are removed by the returned dispose. */
export function onSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  const listener = (signal: NodeJS.Signals): void => handler(signal);
  process.once('SIGINT', listener);
  process.once('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}
