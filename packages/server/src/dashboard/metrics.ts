import { collectDefaultMetrics, Registry } from 'prom-client';
import type { TetherServer } from '../server.js';
import type { Monitor } from './monitor.js';
import { type Labels, ReadMetric, ReadMetricType } from './read-metric.js';
import { RttHistogramMetric } from './rtt-histogram.js';
import type { SessionSums, Surveyor } from './survey.js';

/**
 * prom-client's default metrics that walk every handle, resource or file descriptor at each
 * scrape: with 10,000 connections they were most of the dashboard's cost (measured: about 1.3 s
 * of CPU in 30 scrapes). `tether_connections` counts the sockets instead.
 */
const PER_HANDLE_METRICS = [
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
  'process_open_fds',
];

// A scrape reads every metric's collect in turn: the sums over all sessions are taken once for
// all of them (and shared with scrapes closer than this, and with the live page).
const SUMS_MAX_AGE_MS = 250;

/**
 * Tether's metrics in a prom-client registry, named by Prometheus conventions (`tether_`
 * prefix, base units, `_total` for counters). Counters and gauges are read when scraped
 * ({@link ReadMetric}) from the server's stats, the monitor's running counters and, for bytes
 * and outboxes, the surveyor's last pass over the sessions; the RTT histogram is the
 * monitor's, counted per sample as they come.
 */
export class Metrics {
  readonly registry: Registry;
  /** Names of the metrics this made, to remove them from an application's registry. */
  readonly #names: string[];

  constructor(
    server: TetherServer,
    monitor: Monitor,
    surveyor: Surveyor,
    options: { registry: Registry | undefined; processMetrics: boolean },
  ) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    const names: string[] = [];
    this.#names = names;
    const registers: Target = { registers: [registry], names };
    const stats = () => server.stats();
    const sums = (): SessionSums => surveyor.sums(SUMS_MAX_AGE_MS);

    gauge(
      registers,
      'tether_connections',
      'Open client connections, handshakes included.',
      () => stats().connections,
    );
    gauge(
      registers,
      'tether_sessions',
      'Live sessions, connected or awaiting a resume.',
      () => stats().sessions,
    );
    gauge(
      registers,
      'tether_sessions_connected',
      'Sessions with a connection up.',
      () => monitor.connected,
    );
    gauge(registers, 'tether_draining', '1 while the server drains (close() in progress).', () =>
      server.draining ? 1 : 0,
    );
    counter(
      registers,
      'tether_sessions_opened_total',
      'New sessions opened.',
      () => monitor.opened,
    );
    counter(
      registers,
      'tether_session_resumes_total',
      'Sessions taken up again by their client on a new connection.',
      () => monitor.resumed,
    );
    counter(
      registers,
      'tether_sessions_expired_total',
      'Sessions ended for good (TTL passed, closed, replaced, server closed).',
      () => monitor.expired,
    );
    counter(
      registers,
      'tether_handshake_failures_total',
      'Connections that failed before their session opened.',
      () => stats().handshakeFailures,
    );
    counter(
      registers,
      'tether_refused_connections_total',
      'Connections refused at the connection limits.',
      () => stats().refusedConnections,
    );
    counter(
      registers,
      'tether_evictions_total',
      'Connections of silent peers evicted.',
      () => stats().evictions,
    );
    labelledCounter(
      registers,
      'tether_messages_total',
      'Messages delivered to the application (in) and acknowledged by clients (out).',
      ['direction'],
      () => {
        const s = stats();
        return [
          [{ direction: 'in' }, s.messagesIn],
          [{ direction: 'out' }, s.messagesOut],
        ];
      },
    );
    labelledCounter(
      registers,
      'tether_bytes_total',
      'Bytes read from (in) and written to (out) the connections of sessions.',
      ['direction'],
      () => {
        const s = sums();
        return [
          [{ direction: 'in' }, s.bytesIn],
          [{ direction: 'out' }, s.bytesOut],
        ];
      },
    );
    labelledCounter(
      registers,
      'tether_connection_closes_total',
      'Connections of sessions that ended, by error code (EVICTED, CONNECTION_LOST ...).',
      ['code'],
      () => [...monitor.closes].map(([code, n]) => [{ code }, n]),
    );
    labelledCounter(
      registers,
      'tether_file_bytes_total',
      'File bytes committed by the receiver: uploads (in) and downloads (out).',
      ['direction'],
      () => [
        [{ direction: 'in' }, monitor.fileBytesIn],
        [{ direction: 'out' }, monitor.fileBytesOut],
      ],
    );
    labelledCounter(
      registers,
      'tether_transfers_total',
      'File transfers ended, by direction and outcome (completed, failed, cancelled).',
      ['direction', 'outcome'],
      () =>
        [...monitor.transfersEnded].map(([key, n]) => {
          const [direction = '', outcome = ''] = key.split(' ');
          return [{ direction, outcome }, n];
        }),
    );
    gauge(registers, 'tether_transfers_active', 'File transfers accepted and not finished.', () =>
      monitor.activeTransfers(),
    );
    gauge(
      registers,
      'tether_outbox_messages',
      'Messages to clients not yet acknowledged, all sessions.',
      () => sums().outboxMessages,
    );
    gauge(
      registers,
      'tether_outbox_bytes',
      'Payload bytes of messages to clients not yet acknowledged, all sessions.',
      () => sums().outboxBytes,
    );
    gauge(
      registers,
      'tether_inbound_buffered_bytes',
      'Bytes held in incomplete frames across all connections.',
      () => stats().inboundBufferedBytes,
    );
    const rtt = new RttHistogramMetric(
      'tether_rtt_seconds',
      'Round-trip times measured by PING/PONG, one per sample.',
      monitor.rttHistogram,
    );
    registry.registerMetric(rtt.asMetric());
    names.push(rtt.name);
    // An application's registry may have them already (its own, or an earlier server's).
    if (
      options.processMetrics &&
      registry.getSingleMetric('process_cpu_seconds_total') === undefined
    ) {
      collectDefaultMetrics({ register: registry });
      for (const name of PER_HANDLE_METRICS) registry.removeSingleMetric(name);
    }
  }

  /** The text exposition of the registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Removes Tether's metrics from the registry (an application's own registry stays usable). */
  close(): void {
    for (const name of this.#names) this.registry.removeSingleMetric(name);
  }
}

/** Where a metric goes, and the list of names made. */
interface Target {
  registers: Registry[];
  names: string[];
}

function register(target: Target, metric: ReadMetric): void {
  target.names.push(metric.name);
  for (const registry of target.registers) registry.registerMetric(metric.asMetric());
}

function gauge(target: Target, name: string, help: string, read: () => number): void {
  register(target, new ReadMetric(name, help, ReadMetricType.GAUGE, [], () => [[{}, read()]]));
}

function counter(target: Target, name: string, help: string, read: () => number): void {
  labelledCounter(target, name, help, [], () => [[{}, read()]]);
}

function labelledCounter(
  target: Target,
  name: string,
  help: string,
  labelNames: string[],
  read: () => [Labels, number][],
): void {
  register(target, new ReadMetric(name, help, ReadMetricType.COUNTER, labelNames, read));
}
