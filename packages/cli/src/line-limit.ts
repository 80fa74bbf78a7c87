/**
 * Rate limit of log lines per key (a remote address), so one address cannot flood the log with
 * failed handshakes: in each window of `intervalMs`, starting at a key's first line, the first
 * `burst` lines are printed and the rest only counted; when the window ends, one summary line
 * gives that count. A flooding address thus costs at most `burst + 1` lines per window.
 */

import { formatMs } from './term.js';

/** Options of {@link LineLimiter}. */
export interface LineLimitOptions {
  /** Lines printed per key and window. Default 5. */
  burst?: number;
  /** Length of a key's window; the summary of what it suppressed comes at its end. Default 10000. */
  intervalMs?: number;
  /**
   * Keys with a window open at once. Lines for further keys share one window under
   * `overflowKey`, so many addresses cannot grow the table (nor the number of timers) either.
   * Default 1000.
   */
  maxKeys?: number;
  /** The shared key past `maxKeys`. Default `(other addresses)`. */
  overflowKey?: string;
  /** The summary line of a window that suppressed lines. */
  summary?: (key: string, suppressed: number, intervalMs: number) => string;
}

function defaultSummary(key: string, suppressed: number, intervalMs: number): string {
  return `${key}: ${suppressed} more lines suppressed in the last ${formatMs(intervalMs)}`;
}

interface Window {
  printed: number;
  suppressed: number;
  timer: ReturnType<typeof setTimeout>;
}

/** Prints lines through `print`, at most `burst` per key and window, then a summary. */
export class LineLimiter {
  readonly #print: (line: string) => void;
  readonly #burst: number;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #overflowKey: string;
  readonly #summary: NonNullable<LineLimitOptions['summary']>;
  readonly #windows = new Map<string, Window>();

  constructor(print: (line: string) => void, options: LineLimitOptions = {}) {
    this.#print = print;
    this.#burst = options.burst ?? 5;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#maxKeys = options.maxKeys ?? 1000;
    this.#overflowKey = options.overflowKey ?? '(other addresses)';
    this.#summary = options.summary ?? defaultSummary;
  }

  /** Prints `line` unless `key` has used up its window; then it is counted for the summary. */
  line(key: string, line: string): void {
    const window = this.#window(key);
    if (window.printed < this.#burst) {
      window.printed++;
      this.#print(line);
    } else {
      window.suppressed++;
    }
  }

  /** Windows open now (keys that printed within the last interval). */
  get size(): number {
    return this.#windows.size;
  }

  /** Ends every window: prints the summaries due and clears the timers. */
  close(): void {
    for (const key of [...this.#windows.keys()]) this.#end(key);
  }

  #window(key: string): Window {
    const open = this.#windows.get(key);
    if (open !== undefined) return open;
    const name = this.#windows.size < this.#maxKeys ? key : this.#overflowKey;
    const shared = this.#windows.get(name);
    if (shared !== undefined) return shared;
    const timer = setTimeout(() => this.#end(name), this.#intervalMs);
    // A limiter never keeps a process alive by itself.
    timer.unref?.();
    const window: Window = { printed: 0, suppressed: 0, timer };
    this.#windows.set(name, window);
    return window;
  }

  #end(key: string): void {
    const window = this.#windows.get(key);
    if (window === undefined) return;
    clearTimeout(window.timer);
    this.#windows.delete(key);
    if (window.suppressed > 0) {
      this.#print(this.#summary(key, window.suppressed, this.#intervalMs));
    }
  }
}
