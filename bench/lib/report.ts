// Markdown rendering of a results file: one table per scenario, with per-repetition ratios, CPU
// per message, and the machine's load over each cell.
import { DISAGREEMENT, limitOf, spreadOf } from './cell-stats.js';
import type { Cell, CellLoad, CpuFigure, Ratio, Row } from './common.js';

/** The shape of latest.json (bench/README.md). */
export interface Result {
  schema: string;
  date: string;
  mode: string;
  /** 'dist': Tether's built packages, as installed; 'source': its TypeScript through tsx. */
  tetherFrom: string;
  durationSeconds: number;
  machine: {
    cpu: string;
    cores: number;
    memoryBytes: number;
    node: string;
    platform: string;
    versions: Record<string, string>;
  };
  /** The machine's load over the whole run. */
  load: CellLoad;
  notes: string[];
  cells: Cell[];
  rows: Row[];
}

/** The per-repetition ratios the report shows (latest.json has every one). */
const SHOWN: Record<string, readonly string[]> = {
  tether: ['raw-net', 'raw-net-heartbeat', 'best peer', 'nats', 'ws'],
  'tether-tls': ['raw-tls', 'tether'],
  'tether-watched': ['tether'],
  'tether-twin': ['tether'],
  'tether-cluster': ['tether'],
  'tether-ws': ['ws', 'tether'],
  'tether-publish': ['nats', 'tether'],
};

const fmt = (v: number | null | undefined, digits = 0): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(digits);
};
/** CPU µs per unit: three significant figures or so. */
const fmtCpu = (v: number | undefined): string =>
  v === undefined || !Number.isFinite(v)
    ? '–'
    : v >= 1e4
      ? fmt(v)
      : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
const times = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}x`;
const size = (b: number): string =>
  b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
/** A spread, marked when it passes the flag threshold. */
const spreadText = (values: number[] | undefined): string => {
  if (!values || values.length < 2) return '–';
  const s = spreadOf(values);
  return s > DISAGREEMENT ? `**${times(s)}** ⚠` : times(s);
};

function table(head: string[], body: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...body.map(line)].join('\n');
}

const cellOf = (r: Result, scenario: string, payloadBytes: number): Cell | undefined =>
  r.cells.find((c) => c.scenario === scenario && c.payloadBytes === payloadBytes);

const ratioOf = (cell: Cell | undefined, system: string, against: string | undefined) =>
  against === undefined
    ? undefined
    : cell?.ratios.find((x) => x.system === system && x.against === against);

function cpuText(cpu: CpuFigure | null | undefined): [string, string] {
  if (!cpu) return ['–', '–'];
  const parts = Object.entries(cpu.byProcess).map(([name, us]) => `${name} ${fmtCpu(us)}`);
  return [fmtCpu(cpu.us), parts.join(', ')];
}

function loadText(l: CellLoad): string[] {
  return [
    `${l.loadavgBefore[0]?.toFixed(2)} → ${l.loadavgAfter[0]?.toFixed(2)}`,
    `${l.busyPercent.toFixed(0)} %`,
    `${l.othersPercent.toFixed(0)} %`,
    `${l.stealPercent.toFixed(1)} %`,
  ];
}

/** Tether's ratios in every repetition of a scenario's cells, with the median. */
function ratioTable(r: Result, scenario: string, label: (c: Cell) => string): string[] {
  const cells = r.cells.filter((c) => c.scenario === scenario);
  const reps = Math.max(0, ...cells.map((c) => c.repetitions.length));
  const body: string[][] = [];
  for (const cell of cells) {
    for (const [system, againstList] of Object.entries(SHOWN)) {
      for (const against of againstList) {
        const ratio: Ratio | undefined = ratioOf(cell, system, against);
        if (!ratio) continue;
        const perRep = Array.from({ length: reps }, (_, i) => times(ratio.perRepetition[i]));
        body.push([
          label(cell),
          `${system} vs ${against}`,
          ...perRep,
          `**${times(ratio.median)}**`,
          spreadText(ratio.perRepetition),
        ]);
      }
    }
  }
  if (!body.length) return [];
  const head = ['cell', 'ratio', ...Array.from({ length: reps }, (_, i) => `rep ${i + 1}`)];
  return [
    `### ${scenario}: ratios per repetition`,
    '',
    table([...head, 'median', 'spread'], body),
    '',
  ];
}

export function renderMarkdown(r: Result): string {
  const out: string[] = [];
  const l = r.load;
  out.push(`# Tether benchmark (${r.mode})`, '');
  out.push(
    `${r.date}, CPU ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, ${r.durationSeconds} s. ` +
      `Tether from ${r.tetherFrom === 'dist' ? 'its built packages (dist)' : 'TypeScript sources (tsx)'}. ` +
      `Versions: ${Object.entries(r.machine.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}.`,
    '',
    `Machine over the run: load average ${l.loadavgBefore.join(' ')} → ${l.loadavgAfter.join(' ')}; ` +
      `cores ${l.busyPercent.toFixed(0)} % busy, ${l.othersPercent.toFixed(0)} % by other work than this benchmark; steal ${l.stealPercent.toFixed(1)} %.`,
    '',
    `Method: each repetition runs every system of a cell once, in an order rotated by one system per repetition, so a disturbance of the machine falls on all systems alike. Ratios are taken within each repetition and their median is shown ("vs raw": raw-tls for tether-tls, raw-net otherwise; "vs best peer": the best of ws, socket.io, mqtt-qos0, mqtt-qos1, nats in that repetition). CPU is user + system time of every process of the system (client worker, server worker, nats-server) per unit, in the repetition with the median total, and that repetition's split by process. "spread" is max / min over the repetitions; ⚠ marks more than ${DISAGREEMENT}x.`,
    '',
  );
  // dashboard-cost has tether-watched and tether-twin rows of its own (explained in its section).
  const systemRows = r.rows.filter((x) => x.scenario !== 'dashboard-cost');
  if (systemRows.some((x) => x.system === 'tether-watched')) {
    out.push(
      '`tether-watched` is `tether` with the server\'s dashboard on, its live page open (the `/events` stream of the default view, read to the end) and `/metrics` scraped every second, both from inside the server worker (so its CPU includes reading them); "tether-watched vs tether" is what a watched dashboard costs.',
      '',
    );
  }
  if (systemRows.some((x) => x.system === 'tether-twin')) {
    out.push(
      '`tether-twin` is `tether` again, the same code in server and client workers of its own: "tether-twin vs tether" is how far two identical systems measure apart in this run, the resolution of the other ratios to tether.',
      '',
    );
  }
  if (r.rows.some((x) => x.system === 'tether-cluster')) {
    out.push(
      '`tether-cluster` is Tether with its sessions in Redis: redis-server (AOF, `appendfsync always`), 3 server instances on the Redis store and HAProxy in TCP mode in front; the client connects to HAProxy, and one of the instances serves it. Its CPU counts Redis, HAProxy and every instance. "tether-cluster vs tether" is what sessions in Redis behind a load balancer cost.',
      '',
    );
  }
  const rows = r.rows;
  const failed = rows.filter((x) => x.note?.startsWith('failed'));
  const of = (scenario: string) => rows.filter((x) => x.scenario === scenario && !x.note);
  const vs = (x: Row) => {
    const cell = cellOf(r, x.scenario, x.payloadBytes);
    return [
      times(ratioOf(cell, x.system, limitOf(x.system))?.median),
      times(ratioOf(cell, x.system, 'best peer')?.median),
    ];
  };

  const tp = of('throughput');
  if (tp.length) {
    out.push(
      '## throughput',
      '',
      'Messages counted at the receiver after a final barrier; median of the repetitions (min – max). MB/s = payload bytes / 10^6. Ratios are msgs/s (above 1.00x is faster).',
      '',
    );
    const body = tp.map((x) => {
      const [cpu, byProcess] = cpuText(x.cpu);
      return [
        x.system,
        size(x.payloadBytes),
        fmt(x.msgsPerSec),
        `${fmt(x.min)} – ${fmt(x.max)}`,
        spreadText(x.values),
        cpu,
        byProcess,
        fmt(x.mbPerSec, 1),
        ...vs(x),
        String(x.runs),
      ];
    });
    out.push(
      table(
        [
          'system',
          'payload',
          'msgs/s',
          'min – max',
          'spread',
          'CPU µs/msg',
          'CPU µs/msg by process',
          'MB/s',
          'vs raw',
          'vs best peer',
          'runs',
        ],
        body,
      ),
      '',
    );
    out.push(...ratioTable(r, 'throughput', (c) => size(c.payloadBytes)));
  }
  for (const scenario of ['rtt', 'rtt-open-loop']) {
    const rt = of(scenario);
    if (!rt.length) continue;
    const e = rt[0]?.extra;
    out.push(
      `## ${scenario}`,
      '',
      scenario === 'rtt'
        ? `128 B, one message in flight, echoed by the server, ${e?.messagesPerRun} round trips per repetition; HDR histogram per repetition, median of the repetitions' percentiles (p50 min – max). Ratios are p50 latency (lower is better, so < 1.00x beats the other). CPU per round trip.`
        : `128 B at a fixed ${e?.ratePerSec} msgs/s for ${e?.secondsPerRun} s per repetition, latency from each message's intended send time (no coordinated omission). CPU per round trip.`,
      '',
    );
    const body = rt.map((x) => {
      const [cpu, byProcess] = cpuText(x.cpu);
      return [
        x.system,
        fmt(x.p50Us),
        `${fmt(x.min)} – ${fmt(x.max)}`,
        spreadText(x.values),
        fmt(x.p99Us),
        fmt(x.p999Us),
        cpu,
        byProcess,
        ...vs(x),
        String(x.runs),
      ];
    });
    out.push(
      table(
        [
          'system',
          'p50 µs',
          'p50 min – max',
          'spread',
          'p99 µs',
          'p99.9 µs',
          'CPU µs/rt',
          'CPU µs/rt by process',
          'p50 vs raw',
          'p50 vs best peer',
          'runs',
        ],
        body,
      ),
      '',
    );
    out.push(...ratioTable(r, scenario, () => '128 B'));
  }
  const fl = of('file');
  if (fl.length) {
    out.push(
      '## file',
      '',
      `One ${size(fl[0]?.payloadBytes ?? 0)} file end to end per repetition, fsynced on the receiver; Tether verifies SHA-256 inside the timed span, raw-net and raw-tls after it (outside the CPU figures too). CPU per MB (10^6 B).`,
      '',
    );
    out.push(
      table(
        [
          'system',
          'MB/s',
          'min – max',
          'spread',
          'CPU µs/MB',
          'CPU µs/MB by process',
          'vs raw',
          'runs',
        ],
        fl.map((x) => {
          const [cpu, byProcess] = cpuText(x.cpu);
          return [
            x.system,
            fmt(x.mbPerSec),
            `${fmt(x.min)} – ${fmt(x.max)}`,
            spreadText(x.values),
            cpu,
            byProcess,
            vs(x)[0] as string,
            String(x.runs),
          ];
        }),
      ),
      '',
    );
    out.push(...ratioTable(r, 'file', (c) => size(c.payloadBytes)));
  }
  const bundles = of('bundle');
  if (bundles.length) {
    const socketIo = bundles.find((x) => x.system === 'socket.io-client')?.extra?.gzipBytes;
    const kb = (b: unknown): string => `${(Number(b) / 1000).toFixed(1)} KB`;
    out.push(
      '## browser bundle',
      '',
      "Each built as Tether's browser build is (esbuild: one ESM bundle, browser platform, es2022, minified), then gzipped at level 9. KB = 1000 bytes.",
      '',
      table(
        ['system', 'what', 'min', 'min+gzip', 'vs socket.io-client'],
        bundles.map((x) => [
          x.system,
          String(x.extra?.what ?? ''),
          kb(x.extra?.minBytes),
          kb(x.extra?.gzipBytes),
          socketIo === undefined ? '–' : times(Number(x.extra?.gzipBytes) / Number(socketIo)),
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
  const cr = of('cluster-resume');
  if (cr.length) {
    out.push(
      '## cluster-resume',
      '',
      'tether-cluster (Redis, 3 instances, HAProxy); clients with default settings spread over the instances; one instance at a time killed with SIGKILL and started again. Per client it had: from the kill until the client was welcomed on another instance with its session resumed, until it noticed, and from then until welcomed (ms, every client moved is a sample).',
      '',
    );
    const ms = (v: unknown) => (v === null || v === undefined ? '–' : String(v));
    out.push(
      table(
        [
          'system',
          'clients',
          'kills',
          'moved',
          'resume p50',
          'resume p99',
          'max',
          'detect p50',
          'detect p99',
          'after detect p99',
          'not back',
          'sessions lost',
        ],
        cr.map((x) => {
          const e = x.extra ?? {};
          return x.note !== undefined
            ? [x.system, x.note, '', '', '', '', '', '', '', '', '', '']
            : [
                x.system,
                ms(e.clients),
                ms(e.kills),
                ms(e.moved),
                ms(e.resumeP50Ms),
                ms(e.resumeP99Ms),
                ms(e.resumeMaxMs),
                ms(e.detectP50Ms),
                ms(e.detectP99Ms),
                ms(e.afterDetectP99Ms),
                ms(e.notBack),
                ms(e.sessionsLost),
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
      `N clients (one client process) connect 64 at a time, then idle with default heartbeats; every system of a count stays up, and each repetition measures the CPU of every server side (worker and nats-server) over one and the same ${id[0]?.extra?.restSeconds} s window: median (min – max), % of one core. Server RSS after GC. Heartbeat exchanges: the PINGs and PONGs the server received per second (one per exchange, whoever pinged); CPU per exchange: the window's server CPU over them (median of the repetitions). raw-net-heartbeat is the plainest ping and echo on node:net at Tether's default heartbeat rate (a PING every 5 s, answered at once): the floor of that traffic. Ratios are of CPU at rest (below 1.00x uses less).`,
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
          'min – max',
          'spread',
          'exchanges / s',
          'CPU µs / exchange',
          'set-up / s',
          'runs',
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
            `${fmt(x.min, 2)} – ${fmt(x.max, 2)} %`,
            spreadText(x.values),
            fmt(e.exchangesPerSec as number | null | undefined),
            fmtCpu((e.cpuUsPerExchange as number | null | undefined) ?? undefined),
            fmt(e.setupPerSec as number),
            String(x.runs),
          ];
        }),
      ),
      '',
    );
    out.push(...ratioTable(r, 'idle-connections', (c) => `x ${c.connections}`));
  }
  const dc = rows.filter((x) => x.scenario === 'dashboard-cost' && !x.note);
  if (dc.length) {
    const pct = (v: unknown) => `${(Number(v) * 100 - 100).toFixed(1)} %`;
    out.push(
      '## dashboard-cost',
      '',
      `One server process (and one client process for throughput) with its dashboard on, alternating windows: "watched" with the live page's stream open and \`/metrics\` scraped every second (by the runner's process), "unwatched" with nobody connected to the dashboard. A test pair puts a watched window beside an unwatched one; a control pair (A/A, \`tether-twin\`) two unwatched ones, in the same positions. Per pair the ratio (throughput: msgs/s; idle: the server's CPU), over the pairs their median, min – max, and mean ± 2 standard errors; the control's ± is the smallest difference this run tells apart. GC pauses: the server's main thread, per window (medians).`,
      '',
      `Dashboard share (attribution): V8's sampling profiler runs in the server in every window (every ${String(dc[0]?.extra?.samplingIntervalUs ?? 200)} µs); of the samples of the row's subject windows that are not \`(idle)\`, the share whose stack holds a frame of the dashboard's modules or prom-client, ± its binomial standard error (± the standard error of the per-window shares); beside it the same share in the pairs' unwatched windows, the share under Node's HTTP server with no dashboard frame, and GC's. The dashboard's functions that hold the most samples are listed below the table.`,
      '',
      table(
        [
          'cell',
          'ratio',
          'pairs',
          'window',
          'median',
          'min – max',
          'mean ± 2 SE',
          'per window',
          'CPU',
          'dashboard share',
        ],
        dc.map((x) => {
          const e = x.extra ?? {};
          const throughput = e.part === 'throughput';
          const cpu = throughput
            ? `server ${fmtCpu(e.subjectServerUsPerMsg as number)} vs ${fmtCpu(e.offServerUsPerMsg as number)} µs/msg (${times(e.serverUsPerMsgRatio as number)}), client ${fmtCpu(e.subjectClientUsPerMsg as number)} vs ${fmtCpu(e.offClientUsPerMsg as number)} (${times(e.clientUsPerMsgRatio as number)})`
            : `+${fmt(e.deltaPercentOfCore as number, 3)} % of a core`;
          const gc = `GC pauses ${fmt(e.subjectGcMs as number, 1)} vs ${fmt(e.offGcMs as number, 1)} ms`;
          const perWindow = throughput
            ? `${fmt(e.subjectMedian as number)} vs ${fmt(e.offMedian as number)} msgs/s`
            : `${fmt(e.subjectMedian as number, 2)} vs ${fmt(e.offMedian as number, 2)} % of a core`;
          return [
            throughput ? size(x.payloadBytes) : `idle x ${e.connections}`,
            x.system === 'tether-watched' ? 'watched / unwatched' : 'A/A (tether-twin)',
            String(e.pairs),
            `${e.windowSeconds} s`,
            `**${times(e.medianRatio as number)}** (${pct(e.medianRatio)})`,
            `${times(x.min)} – ${times(x.max)}`,
            `${times(e.meanRatio as number)} ± ${((e.halfWidth as number) * 100).toFixed(1)} %`,
            perWindow,
            `${cpu}; ${gc}`,
            shareText(e),
          ];
        }),
      ),
      '',
      ...dc
        .filter((x) => x.system === 'tether-watched' && x.extra?.dashboardTop)
        .map(
          (x) =>
            `- Dashboard samples by function, ${x.extra?.part === 'throughput' ? size(x.payloadBytes) : `idle x ${x.extra?.connections}`}, watched windows: ${x.extra?.dashboardTop}`,
        ),
      '',
    );
  }
  if (r.cells.length) {
    out.push(
      '## cells: machine load and flags',
      '',
      `Load average (1 min) when the cell started → ended; over the cell, the share of all cores that was busy, busy with other work than this benchmark, and stolen by the hypervisor. Flags: the spread (max / min) of a system's runs, or of a Tether ratio over the repetitions, where it is more than ${DISAGREEMENT}x.`,
      '',
      table(
        ['cell', 'seconds', 'load avg', 'busy', 'others', 'steal', 'flags'],
        r.cells.map((c) => [
          `${c.scenario} ${c.connections !== undefined ? `x ${c.connections}` : size(c.payloadBytes)}`,
          c.load.seconds.toFixed(0),
          ...loadText(c.load),
          c.flags.length
            ? `⚠ ${c.flags.map((f) => `${f.what} ${times(f.spread)}`).join(', ')}`
            : '–',
        ]),
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

/** A dashboard-cost row's share by attribution: `1.23 ± 0.05 % (± 0.10) of 12345 samples; ...`. */
function shareText(e: NonNullable<Row['extra']>): string {
  if (typeof e.dashboardSharePercent !== 'number') {
    // --attribution perf: perf sampled the windows, V8 did not.
    return typeof e.cpuPercentOfRestCpu === 'number' ? perfCpuText(e).replace(/^; /, '') : '–';
  }
  const p = (v: unknown) => `${Number(v).toFixed(2)}`;
  const windows =
    typeof e.dashboardShareWindowSePercent === 'number'
      ? ` (± ${p(e.dashboardShareWindowSePercent)})`
      : '';
  return `**${p(e.dashboardSharePercent)} ± ${p(e.dashboardShareSePercent)} %**${windows} of ${e.profileSamples} samples (1 per ${e.effectiveIntervalUs} µs); unwatched ${p(e.offDashboardSharePercent)} ± ${p(e.offDashboardShareSePercent)} %; HTTP ${p(e.httpSharePercent)} %, GC ${p(e.gcSharePercent)} %; main thread ${p(e.dashboardMsPerSecond)} + HTTP ${p(e.httpMsPerSecond)} ms/s, ${p(e.dashboardPercentOfServerCpu)} % of the server's CPU${restText(e)}`;
}

/** The figure for the 2 % criterion: attributed time against the server's CPU at rest. */
function restText(e: NonNullable<Row['extra']>): string {
  if (typeof e.dashboardPercentOfRestCpu !== 'number') return '';
  const p = (v: unknown) => `${Number(v).toFixed(2)}`;
  return `; **${p(e.dashboardPercentOfRestCpu)} ± ${p(e.dashboardPercentOfRestCpuSe)} % of the server's CPU at rest** (${p(e.attributedMsPerSecond)} ± ${p(e.attributedSeMsPerSecond)} ms/s against ${p(e.restCpuMsPerSecond)} ± ${p(e.restCpuSeMsPerSecond)} ms/s, ${e.restWindows} rest windows unwatched and unprofiled)${perfCpuText(e)}`;
}

/** The same from CPU time (perf): `; by CPU time **0.90 ± 0.08 %** (...)`, or nothing. */
function perfCpuText(e: NonNullable<Row['extra']>): string {
  if (typeof e.cpuPercentOfRestCpu !== 'number') return '';
  const p = (v: unknown) => `${Number(v).toFixed(2)}`;
  return `; by CPU time (perf) **${p(e.cpuPercentOfRestCpu)} ± ${p(e.cpuPercentOfRestCpuSe)} % of the server's CPU at rest** (${p(e.cpuAttributedMsPerSecond)} ± ${p(e.cpuAttributedSeMsPerSecond)} ms/s: ${e.cpuDashboardSamples} + HTTP ${e.cpuHttpSamples} of ${e.cpuSamples} samples of the main thread, ${p(e.cpuMainThreadMsPerSecond)} ms/s on its CPU); **${p(e.cpuSharePercent)} ± ${p(e.cpuShareSePercent)} % of the main thread's CPU samples**`;
}
