// Someone watching Tether's dashboard: the live page's stream (`/events` with the page's default
// view, as dashboard.js opens it) kept open and read, and `/metrics` scraped every second (by
// default) over one kept-alive connection, as Prometheus does. For the `tether-watched` system it
// runs in the server's process, so its own work (reading a few KB a second) counts as the
// server's: an upper bound of what the dashboard costs. The `dashboard-cost` cells run it in the
// runner's process, apart from the server they measure.
import * as http from 'node:http';

/** The page's first view: sorted by client id, ascending, first page of 50 rows. */
export const DEFAULT_VIEW = '/events?sort=client&dir=asc&page=0&size=50';

/** Why watching failed. */
export const WatchFailure = {
  /** /events answered with anything but 200 (e.g. 503, too many live pages). */
  STREAM_REFUSED: 'STREAM_REFUSED',
  /** The stream ended or broke. */
  STREAM_ENDED: 'STREAM_ENDED',
  /** No update for `silenceMs`. */
  STREAM_SILENT: 'STREAM_SILENT',
  /** /metrics failed, answered with anything but 200, or (the first time) without Tether's metrics. */
  SCRAPE_FAILED: 'SCRAPE_FAILED',
} as const;
export type WatchFailure = (typeof WatchFailure)[keyof typeof WatchFailure];

export class WatchError extends Error {
  override readonly name = 'WatchError';
  constructor(
    readonly code: WatchFailure,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

export interface WatchOptions {
  /** The dashboard's port (on 127.0.0.1). */
  port: number;
  /** Default 1000 ms. */
  scrapeEveryMs?: number;
  /** No update for this long fails the watch. Default 10,000 ms (the page updates every 1 s). */
  silenceMs?: number;
  /** Called once when watching fails after it started; the watcher has stopped by then. */
  onFailure(error: WatchError): void;
}

export interface DashboardWatcher {
  /** Updates read from the stream (the first one included). */
  readonly updates: number;
  /** Scrapes of /metrics completed. */
  readonly scrapes: number;
  /** Stops watching (no failure is reported after this). */
  close(): void;
}

/**
 * Opens the stream and resolves once the first update and the first scrape (which must hold
 * `tether_connections`) arrived; rejects with a {@link WatchError} when either fails.
 */
export async function watchDashboard(options: WatchOptions): Promise<DashboardWatcher> {
  const scrapeEveryMs = options.scrapeEveryMs ?? 1000;
  const silenceMs = options.silenceMs ?? 10_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let updates = 0;
  let scrapes = 0;
  let closed = false;
  let stream: http.ClientRequest | undefined;
  let scrapeTimer: NodeJS.Timeout | undefined;
  let silenceTimer: NodeJS.Timeout | undefined;
  let scraping = false;
  // Before it started, failures reject the start; after, they go to onFailure, once.
  let fail = (_error: WatchError): void => {};

  const close = (): void => {
    closed = true;
    clearInterval(scrapeTimer);
    clearTimeout(silenceTimer);
    stream?.destroy();
    agent.destroy();
  };

  const firstUpdate = new Promise<void>((resolve, reject) => {
    fail = reject;
    // An update is one `data: <json>\n\n` event; JSON holds no raw newline, so each blank line
    // ends one. `newline`: the last chunk ended with '\n' (a boundary may fall between chunks).
    let newline = false;
    stream = http.get({ host: '127.0.0.1', port: options.port, path: DEFAULT_VIEW, agent: false });
    stream.on('response', (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        fail(new WatchError(WatchFailure.STREAM_REFUSED, `/events: HTTP ${response.statusCode}`));
        return;
      }
      response.on('data', (chunk: Buffer) => {
        let ends = 0;
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
          if (i === 0 ? newline : chunk[i - 1] === 10) ends++;
        }
        newline = chunk[chunk.length - 1] === 10;
        if (ends === 0) return;
        if (updates === 0) resolve();
        updates += ends;
        silenceTimer?.refresh();
      });
      response.on('end', () => {
        fail(new WatchError(WatchFailure.STREAM_ENDED, '/events: the stream ended'));
      });
    });
    stream.on('error', (cause) => {
      fail(new WatchError(WatchFailure.STREAM_ENDED, `/events: ${cause.message}`, { cause }));
    });
  });

  /** One scrape, read to the end as Prometheus does; `check`: the body must hold our metrics. */
  const scrape = (check: boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const failed = (message: string, cause?: unknown) =>
        reject(new WatchError(WatchFailure.SCRAPE_FAILED, `/metrics: ${message}`, { cause }));
      const request = http.get({ host: '127.0.0.1', port: options.port, path: '/metrics', agent });
      request.on('error', (cause) => failed(cause.message, cause));
      request.on('response', (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          failed(`HTTP ${response.statusCode}`);
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (check) chunks.push(chunk);
        });
        response.on('end', () => {
          if (bytes === 0) return failed('empty answer');
          if (check && !Buffer.concat(chunks).toString().includes('\ntether_connections ')) {
            return failed('no tether_connections in the answer');
          }
          scrapes++;
          resolve();
        });
        response.on('error', (cause) => failed(cause.message, cause));
      });
    });

  try {
    await firstUpdate;
    await scrape(true);
  } catch (error) {
    close();
    throw error;
  }
  fail = (error) => {
    if (closed) return;
    close();
    options.onFailure(error);
  };
  silenceTimer = setTimeout(() => {
    fail(new WatchError(WatchFailure.STREAM_SILENT, `/events: no update for ${silenceMs} ms`));
  }, silenceMs);
  silenceTimer.unref();
  scrapeTimer = setInterval(() => {
    // A scrape still running when the next is due is not doubled (Prometheus waits too).
    if (scraping || closed) return;
    scraping = true;
    scrape(false).then(
      () => {
        scraping = false;
      },
      (error: WatchError) => fail(error),
    );
  }, scrapeEveryMs);
  scrapeTimer.unref();
  return {
    get updates() {
      return updates;
    },
    get scrapes() {
      return scrapes;
    },
    close,
  };
}
