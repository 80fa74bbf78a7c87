// Markdown rendering of a results file: one table per scenario, with ratio columns against
// raw-net and against the best peer (ws, socket.io, mqtt-qos0, mqtt-qos1, nats) of the same cell.
import type { Row } from './common.js';

const PEERS = new Set(['ws', 'socket.io', 'mqtt-qos0', 'mqtt-qos1', 'nats']);

interface Result {
  date: string;
  mode: string;
  /** 'dist': Tether's built packages, as installed; 'source': its TypeScript through tsx. */
  tetherFrom: string;
  durationSeconds: number;
  machine: { cpu: string; cores: number; node: string; versions: Record<string, string> };
  notes: string[];
  rows: Row[];
}

const fmt = (v: number | null | undefined, digits = 0): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(digits);
};
const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a && b ? `${(a / b).toFixed(2)}x` : '–';
const size = (b: number): string =>
  b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : b >= 1024 ? `${b / 1024} KiB` : `${b} B`;

function table(head: string[], body: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...body.map(line)].join('\n');
}

export function renderMarkdown(r: Result): string {
  const out: string[] = [];
  out.push(`# Tether benchmark (${r.mode})`, '');
  out.push(
    `${r.date}, ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, ${r.durationSeconds} s. ` +
      `Tether from ${r.tetherFrom === 'dist' ? 'its built packages (dist)' : 'TypeScript sources (tsx)'}. ` +
      `Versions: ${Object.entries(r.machine.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}.`,
    '',
  );
  const rows = r.rows;
  const failed = rows.filter((x) => x.note?.startsWith('failed'));
  const of = (scenario: string) => rows.filter((x) => x.scenario === scenario && !x.note);

  const tp = of('throughput');
  if (tp.length) {
    out.push(
      '## throughput',
      '',
      'Messages counted at the receiver after a final barrier; median of the runs (min – max). MB/s = payload bytes / 10^6. Ratios are msgs/s.',
      '',
    );
    const body = tp.map((x) => {
      const same = tp.filter((y) => y.payloadBytes === x.payloadBytes);
      const raw = same.find((y) => y.system === 'raw-net');
      const best = Math.max(
        0,
        ...same.filter((y) => PEERS.has(y.system)).map((y) => y.msgsPerSec ?? 0),
      );
      return [
        x.system,
        size(x.payloadBytes),
        fmt(x.msgsPerSec),
        `${fmt(x.min)} – ${fmt(x.max)}`,
        fmt(x.mbPerSec, 1),
        ratio(x.msgsPerSec, raw?.msgsPerSec),
        ratio(x.msgsPerSec, best),
        String(x.runs),
      ];
    });
    out.push(
      table(
        ['system', 'payload', 'msgs/s', 'min – max', 'MB/s', 'vs raw-net', 'vs best peer', 'runs'],
        body,
      ),
      '',
    );
  }
  for (const scenario of ['rtt', 'rtt-open-loop']) {
    const rt = of(scenario);
    if (!rt.length) continue;
    const e = rt[0]?.extra;
    out.push(
      `## ${scenario}`,
      '',
      scenario === 'rtt'
        ? "128 B, one message in flight, echoed by the server; HDR histogram per run, median of the runs' percentiles (p50 min – max). Ratios are p50 latency (lower is better, so < 1.00x beats the other)."
        : `128 B at a fixed ${e?.ratePerSec} msgs/s for ${e?.secondsPerRun} s per run, latency from each message's intended send time (no coordinated omission).`,
      '',
    );
    const raw = rt.find((y) => y.system === 'raw-net');
    const best = Math.min(
      ...rt.filter((y) => PEERS.has(y.system)).map((y) => y.p50Us ?? Number.POSITIVE_INFINITY),
    );
    const body = rt.map((x) => [
      x.system,
      fmt(x.p50Us),
      `${fmt(x.min)} – ${fmt(x.max)}`,
      fmt(x.p99Us),
      fmt(x.p999Us),
      ratio(x.p50Us, raw?.p50Us),
      ratio(x.p50Us, Number.isFinite(best) ? best : null),
      String(x.runs),
    ]);
    out.push(
      table(
        [
          'system',
          'p50 µs',
          'p50 min – max',
          'p99 µs',
          'p99.9 µs',
          'p50 vs raw-net',
          'p50 vs best peer',
          'runs',
        ],
        body,
      ),
      '',
    );
  }
  const fl = of('file');
  if (fl.length) {
    const raw = fl.find((y) => y.system === 'raw-net');
    out.push(
      '## file',
      '',
      `One ${size(fl[0]?.payloadBytes ?? 0)} file end to end, fsynced on the receiver; Tether verifies SHA-256 inside the timed span, raw-net after it.`,
      '',
    );
    out.push(
      table(
        ['system', 'MB/s', 'min – max', 'vs raw-net', 'runs'],
        fl.map((x) => [
          x.system,
          fmt(x.mbPerSec),
          `${fmt(x.min)} – ${fmt(x.max)}`,
          ratio(x.mbPerSec, raw?.mbPerSec),
          String(x.runs),
        ]),
      ),
      '',
    );
  }
  const rc = of('recovery');
  if (rc.length) {
    out.push(
      '## recovery',
      '',
      'Link black-holed both ways (sockets kept open) through @tether/chaos, default settings of every system, one message every 50 ms. "detect" is when the client itself noticed; "first delivery" is from healing the link to the first echo; "lost" are messages never echoed.',
      '',
    );
    out.push(
      table(
        ['system', 'detect ms', 'reason', 'first delivery after heal ms', 'sent', 'lost'],
        rc.map((x) => {
          const e = x.extra ?? {};
          return [
            x.system,
            e.detectMs === null
              ? `not within ${Number(e.detectCapMs) / 1000} s`
              : fmt(e.detectMs as number),
            String(e.detectReason ?? '–'),
            e.firstDeliveryAfterHealMs === null
              ? 'none within the cap'
              : fmt(e.firstDeliveryAfterHealMs as number),
            String(e.sent),
            String(e.lost),
          ];
        }),
      ),
      '',
    );
  }
  const id = of('idle-connections');
  if (id.length) {
    out.push(
      '## idle-connections',
      '',
      'N clients (one client process) connect 64 at a time, then idle with default heartbeats; server RSS after GC, server CPU over the rest period.',
      '',
    );
    out.push(
      table(
        [
          'system',
          'connections',
          'server RSS / conn',
          'server heap / conn',
          'server CPU at rest',
          'set-up / s',
        ],
        id.map((x) => {
          const e = x.extra ?? {};
          return [
            x.system,
            String(e.connections),
            `${fmt((e.rssPerConnectionBytes as number) / 1024, 1)} KiB`,
            e.heapPerConnectionBytes === null
              ? '–'
              : `${fmt((e.heapPerConnectionBytes as number) / 1024, 1)} KiB`,
            `${fmt(e.cpuAtRestPercent as number, 2)} %`,
            fmt(e.setupPerSec as number),
          ];
        }),
      ),
      '',
    );
  }
  if (failed.length || r.notes.length) {
    out.push('## notes', '');
    for (const n of r.notes) out.push(`- ${n}`);
    for (const f of failed) out.push(`- ${f.system}/${f.scenario}: ${f.note}`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
