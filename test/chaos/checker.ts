/**
 * Judges a run's history, in the manner of Jepsen's total-queue checker, plus the liveness and
 * hygiene properties Tether promises. Pure: a history in, a verdict out, so each check can be
 * shown to fail on a hand-made history (checker.test.ts).
 *
 * Per direction (client to server, server to client):
 * - lost: acknowledged (the send resolved) but never delivered;
 * - unexpected: delivered but never sent (or not one of our payloads, or under another id);
 * - duplicated: delivered more than once. Tether is exactly-once while the server keeps the
 *   session and at-least-once across a session loss, so a message delivered again in a session
 *   the client announced as `lost: true` is counted as "redelivered after session loss", not as
 *   a violation; any other second delivery is;
 * - reordered: after dedupe, deliveries whose send order goes backwards, per client incarnation
 *   (Tether orders per session and across its resumes; a restarted client is a new sender).
 */
import { ErrorCode } from '@tether/protocol';
import {
  type Delivery,
  Direction,
  type FaultRecord,
  type FileDelivery,
  type History,
  OpStatus,
  type RunLimits,
  type SendOp,
} from './history.js';

/**
 * Detection allowance on top of deadline * 1.1. The deadlines are enforced by real timers in a
 * process that also runs the workload, the proxy and (in the netns suite) talks to a child
 * process, on a 2-core machine: a heartbeat timer fires a few ms late when the event loop is busy
 * with a burst, bytes already in socket buffers when a fault starts still count as proof of life,
 * and a fault's start is stamped when the proxy call or `nft` command returned. 50 ms covers
 * those; anything later is a real miss (e.g. a heartbeat that stopped being armed).
 */
export const DETECTION_ALLOWANCE_MS = 50;

/** How much of the deadline is tolerated on top (the issue's "+ 10%"). */
export const DETECTION_SLACK = 1.1;

export interface Violation {
  check: string;
  detail: string;
}

/** Counts of one run, summed over runs by the runner. */
export interface RunStats {
  /** Messages sent (invoked), both directions. */
  messages: number;
  acknowledged: number;
  delivered: number;
  lost: number;
  unexpected: number;
  duplicated: number;
  /** Second deliveries after a session loss (allowed, at-least-once). */
  redelivered: number;
  reordered: number;
  requests: number;
  files: number;
  fileBytes: number;
  /** Overflows reported: QUEUE_FULL rejections and MESSAGE_DROPPED drops. */
  overflows: number;
  maxQueueDepth: number;
  sessionLosses: number;
  /** Dead-link detection times, per side and silent fault, in ms. */
  detectionsMs: number[];
  /** The same for the side of a one-way cut that only lost its outbound direction. */
  indirectDetectionsMs: number[];
  /** Time from healing a fault to the first delivery after it, in ms. */
  recoveriesMs: number[];
  faults: Record<string, number>;
}

export interface CheckResult {
  ok: boolean;
  violations: Violation[];
  stats: RunStats;
}

// Failures a send may legitimately end with, per direction: overflow (reported to the caller),
// the client closed by the run, the session or the server ended by the run.
const SEND_FAILURES: Record<Direction, ReadonlySet<string>> = {
  c2s: new Set([ErrorCode.QUEUE_FULL, ErrorCode.MESSAGE_DROPPED, ErrorCode.CLOSED]),
  s2c: new Set([ErrorCode.CLOSED, ErrorCode.SERVER_SHUTTING_DOWN]),
};
// A transfer survives link drops and server restarts (the upload directory keeps the partial);
// it fails only when its client is closed by the run, or its session or server ends.
const FILE_FAILURES: Record<Direction, ReadonlySet<string>> = {
  c2s: new Set([ErrorCode.CLOSED]),
  s2c: new Set([ErrorCode.CLOSED, ErrorCode.SERVER_SHUTTING_DOWN]),
};
const OVERFLOW: ReadonlySet<string> = new Set([ErrorCode.QUEUE_FULL, ErrorCode.MESSAGE_DROPPED]);
const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const MAX_DETAILS = 5;

export function check(history: History, limits: RunLimits): CheckResult {
  const violations: Violation[] = [];
  const counts = new Map<string, number>();
  const violate = (checkName: string, detail: string): void => {
    const n = (counts.get(checkName) ?? 0) + 1;
    counts.set(checkName, n);
    if (n <= MAX_DETAILS) violations.push({ check: checkName, detail });
    else if (n === MAX_DETAILS + 1)
      violations.push({ check: checkName, detail: '... more of the same' });
  };

  const stats: RunStats = {
    messages: history.sends.length,
    acknowledged: 0,
    delivered: 0,
    lost: 0,
    unexpected: 0,
    duplicated: 0,
    redelivered: 0,
    reordered: 0,
    requests: history.requests.length,
    files: 0,
    fileBytes: 0,
    overflows: 0,
    maxQueueDepth: 0,
    sessionLosses: history.sessions.filter((s) => s.lost).length,
    detectionsMs: [],
    indirectDetectionsMs: [],
    recoveriesMs: [],
    faults: {},
  };
  for (const fault of history.faults)
    stats.faults[fault.kind] = (stats.faults[fault.kind] ?? 0) + 1;

  checkQueue(history, limits, stats, violate);
  for (const dir of [Direction.C2S, Direction.S2C]) checkDirection(history, dir, stats, violate);
  checkRequests(history, violate);
  checkFiles(history, stats, violate);
  checkDetection(history, limits, stats, violate);
  checkFinal(history, violate);

  for (const [name, n] of counts) {
    const first = violations.find((v) => v.check === name);
    if (first !== undefined && n > 1) first.detail = `${first.detail} (${n} in all)`;
  }
  return { ok: violations.length === 0, violations, stats };
}

type Violate = (check: string, detail: string) => void;

function checkDirection(history: History, dir: Direction, stats: RunStats, violate: Violate): void {
  const ops = new Map<number, SendOp>();
  for (const op of history.sends) if (op.dir === dir) ops.set(op.value, op);
  const deliveries = history.deliveries.filter((d) => d.dir === dir);
  const lostSessions = new Set(history.sessions.filter((s) => s.lost).map((s) => s.sessionId));

  // unexpected, id consistency, duplicates
  const byValue = new Map<number, Delivery[]>();
  for (const delivery of deliveries) {
    const value = delivery.value;
    const op = value === undefined ? undefined : ops.get(value);
    if (value === undefined || op === undefined) {
      stats.unexpected++;
      violate(
        'unexpected',
        `${dir}: delivered ${JSON.stringify(delivery.raw.slice(0, 40))} never sent`,
      );
      continue;
    }
    if (op.status === OpStatus.OK && op.id !== delivery.id) {
      stats.unexpected++;
      violate(
        'unexpected',
        `${dir}: value ${value} acknowledged as ${op.id}, delivered as ${delivery.id}`,
      );
    }
    const seen = byValue.get(value);
    if (seen === undefined) {
      byValue.set(value, [delivery]);
      continue;
    }
    seen.push(delivery);
    // A second delivery is at-least-once only in a session that replaced a lost one, and never
    // twice in one session.
    const sameSession = seen.slice(0, -1).some((d) => d.session === delivery.session);
    if (dir === Direction.C2S && !sameSession && lostSessions.has(delivery.session)) {
      stats.redelivered++;
    } else {
      stats.duplicated++;
      violate(
        'duplicated',
        `${dir}: value ${value} delivered ${seen.length} times (sessions ${seen.map((d) => d.session).join(', ')})`,
      );
    }
  }
  stats.delivered += byValue.size;

  // lost; failures must carry a known code and be of the kinds that direction allows
  for (const op of ops.values()) {
    if (op.status === OpStatus.OK) {
      stats.acknowledged++;
      if (!byValue.has(op.value)) {
        stats.lost++;
        violate('lost', `${dir}: value ${op.value} acknowledged as ${op.id}, never delivered`);
      }
    } else if (op.status === OpStatus.FAIL) {
      if (op.code === undefined || !KNOWN_CODES.has(op.code)) {
        violate('failure-without-code', `${dir}: value ${op.value} failed with code ${op.code}`);
      } else if (!SEND_FAILURES[dir].has(op.code)) {
        violate('send-failed', `${dir}: value ${op.value} failed with ${op.code}`);
      }
      if (op.code !== undefined && OVERFLOW.has(op.code)) {
        stats.overflows++;
        if (byValue.has(op.value))
          violate(
            'overflow-delivered',
            `${dir}: value ${op.value} rejected ${op.code} yet delivered`,
          );
      }
    } else {
      violate('never-settled', `${dir}: value ${op.value} still pending after everything closed`);
    }
  }

  // reordered: per client incarnation, first deliveries in arrival order must follow send order
  const last = new Map<number, number>();
  for (const delivery of deliveries) {
    const value = delivery.value;
    if (value === undefined) continue;
    const op = ops.get(value);
    if (op === undefined || byValue.get(value)?.[0] !== delivery) continue;
    const incarnation = dir === Direction.C2S ? op.incarnation : (delivery.incarnation ?? -1);
    const previous = last.get(incarnation);
    if (previous !== undefined && value < previous) {
      stats.reordered++;
      violate(
        'reordered',
        `${dir}: value ${value} delivered after ${previous} (incarnation ${incarnation})`,
      );
    } else {
      last.set(incarnation, value);
    }
  }
}

function checkQueue(history: History, limits: RunLimits, stats: RunStats, violate: Violate): void {
  for (const sample of history.queue) {
    stats.maxQueueDepth = Math.max(stats.maxQueueDepth, sample.depth);
    if (sample.depth > limits.maxQueuedMessages)
      violate('queue-cap', `outbox depth ${sample.depth} > cap ${limits.maxQueuedMessages}`);
    if (sample.bytes > limits.maxQueuedBytes)
      violate('queue-cap', `outbox bytes ${sample.bytes} > cap ${limits.maxQueuedBytes}`);
  }
  // Every drop (drop-oldest) is reported twice: a `drop` event and the MESSAGE_DROPPED rejection
  // of that send or request.
  const dropped = [
    ...history.sends
      .filter((op) => op.dir === Direction.C2S && op.code === ErrorCode.MESSAGE_DROPPED)
      .map((op) => `v:${op.value}`),
    ...history.requests
      .filter((op) => op.code === ErrorCode.MESSAGE_DROPPED)
      .map((op) => `q:${op.value}`),
  ].sort();
  const events = [...history.drops].sort();
  if (dropped.join() !== events.join()) {
    const missing = dropped.filter((d) => !events.includes(d));
    const extra = events.filter((d) => !dropped.includes(d));
    violate(
      'overflow-unreported',
      `${events.length} drop events for ${dropped.length} MESSAGE_DROPPED rejections (no event: [${missing.slice(0, 8).join()}], no rejection: [${extra.slice(0, 8).join()}])`,
    );
  }
  for (const op of history.requests) {
    if (op.code === undefined || !OVERFLOW.has(op.code)) continue;
    stats.overflows++;
    if (history.served.some((s) => s.value === op.value))
      violate('overflow-delivered', `request ${op.value} rejected ${op.code} yet served`);
  }
  const codes = new Set(
    history.sends.map((op) => op.code).concat(history.requests.map((r) => r.code)),
  );
  const forbidden =
    limits.overflow === 'reject'
      ? [ErrorCode.MESSAGE_DROPPED]
      : limits.overflow === 'wait'
        ? [ErrorCode.MESSAGE_DROPPED, ErrorCode.QUEUE_FULL]
        : [];
  for (const code of forbidden)
    if (codes.has(code))
      violate('overflow-policy', `${code} under overflow policy ${limits.overflow}`);
}

function checkRequests(history: History, violate: Violate): void {
  const invoked = new Set(history.requests.map((r) => r.value));
  for (const served of history.served) {
    if (served.value === undefined || !invoked.has(served.value))
      violate(
        'request-unexpected',
        `server served ${JSON.stringify(served.raw.slice(0, 40))}, never requested`,
      );
  }
  for (const op of history.requests) {
    if (op.status === OpStatus.OK) {
      const reply = op.reply === undefined ? undefined : replyValue(op.reply);
      if (reply !== op.value) violate('request-reply', `request ${op.value} got reply ${op.reply}`);
    } else if (op.status === OpStatus.FAIL) {
      if (op.code === undefined || !KNOWN_CODES.has(op.code)) {
        violate('failure-without-code', `request ${op.value} failed with code ${op.code}`);
      } else if (op.code === ErrorCode.REQUEST_TIMEOUT) {
        if (!requestExcused(history, op.incarnation, op.invokedAt))
          violate('request-unanswered', `request ${op.value} timed out without a session loss`);
      } else if (!SEND_FAILURES.c2s.has(op.code)) {
        violate('request-failed', `request ${op.value} failed with ${op.code}`);
      }
    } else {
      violate('never-settled', `request ${op.value} still pending after everything closed`);
    }
  }
}

function replyValue(raw: string): number | undefined {
  try {
    const value = (JSON.parse(raw) as { r?: unknown }).r;
    return typeof value === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A request may go unanswered only when its session was lost after it was sent (server restart
 * or TTL): the reply lived in the lost session. Used by the workload's quiescence wait too.
 */
export function requestExcused(history: History, incarnation: number, invokedAt: number): boolean {
  return history.sessions.some((s) => s.incarnation === incarnation && s.lost && s.at >= invokedAt);
}

function checkFiles(history: History, stats: RunStats, violate: Violate): void {
  const offered = new Map(history.files.map((f) => [`${f.dir}:${f.name}`, f]));
  const lostSessions = new Set(history.sessions.filter((s) => s.lost).map((s) => s.sessionId));
  const received = new Map<string, FileDelivery[]>();
  for (const file of history.fileDeliveries) {
    const key = `${file.dir}:${file.name}`;
    const earlier = received.get(key) ?? [];
    received.set(key, [...earlier, file]);
    const op = offered.get(key);
    stats.files++;
    stats.fileBytes += file.size;
    if (op === undefined) {
      violate('file-unexpected', `${file.dir}: received ${file.name}, never sent`);
    } else if (op.sha256 !== file.sha256 || op.size !== file.size) {
      violate(
        'file-corrupt',
        `${file.dir}: ${file.name} not byte-identical (${file.size} bytes, sha256 ${file.sha256.slice(0, 12)} != ${op.size} bytes, ${op.sha256.slice(0, 12)})`,
      );
    }
    // Like messages: stored again only in a session that replaced a lost one (client to server).
    if (
      earlier.length > 0 &&
      !(
        file.dir === Direction.C2S &&
        lostSessions.has(file.session) &&
        earlier.every((e) => e.session !== file.session)
      )
    )
      violate('file-duplicated', `${file.dir}: ${file.name} received ${earlier.length + 1} times`);
  }
  for (const op of history.files) {
    const copies = received.get(`${op.dir}:${op.name}`) ?? [];
    if (op.status === OpStatus.OK && copies.length === 0)
      violate('file-lost', `${op.dir}: ${op.name} acknowledged, never received`);
    if (op.dueBy !== undefined) {
      // Complete means both ends know: the receiver stored it intact and the sender's transfer
      // resolved, each by the deadline.
      const dueBy = op.dueBy;
      const intact = copies.find((c) => c.sha256 === op.sha256 && c.size === op.size);
      const late = (at: number): string => `${(at - dueBy).toFixed(0)} ms late`;
      const problems: string[] = [];
      if (intact === undefined) problems.push('never received intact');
      else if (intact.at > dueBy) problems.push(`received ${late(intact.at)}`);
      if (op.status === OpStatus.PENDING) problems.push("the sender's transfer never resolved");
      else if (op.status === OpStatus.FAIL)
        problems.push(`the sender's transfer failed (${op.code})`);
      else if ((op.completedAt ?? 0) > dueBy)
        problems.push(`the sender's transfer resolved ${late(op.completedAt ?? 0)}`);
      if (problems.length > 0) {
        const committed =
          op.committed === undefined ? '' : `; receiver had committed ${op.committed} B`;
        violate(
          'file-late',
          `${op.dir}: ${op.name} (${op.size} B) ${problems.join(', ')}; due ${op.due ?? 'by a deadline'}${committed}`,
        );
      }
    }
    if (op.status === OpStatus.PENDING)
      violate('never-settled', `${op.dir}: file ${op.name} still pending after everything closed`);
    if (op.status === OpStatus.FAIL) {
      if (op.code === undefined || !KNOWN_CODES.has(op.code))
        violate('failure-without-code', `${op.dir}: file ${op.name} failed with code ${op.code}`);
      else if (!FILE_FAILURES[op.dir].has(op.code))
        violate('file-failed', `${op.dir}: file ${op.name} failed with ${op.code}`);
    }
  }
}

function checkDetection(
  history: History,
  limits: RunLimits,
  stats: RunStats,
  violate: Violate,
): void {
  const sorted = history.faults.filter((f) => !f.background).sort((a, b) => a.startAt - b.startAt);
  for (const [i, fault] of sorted.entries()) {
    const heal = fault.healAt ?? Number.POSITIVE_INFINITY;
    if (fault.silent) {
      const { client: clientBound, server: serverBound } = detectionBounds(fault, limits);
      if (fault.clientConnected) {
        const noticed = history.clientStates.find(
          (s) => s.at >= fault.startAt && s.previous === 'connected',
        )?.at;
        judge('client', noticed, clientBound);
      }
      if (fault.serverConnected) {
        const noticed = history.serverEvents.find(
          (e) => e.kind === 'disconnect' && e.at >= fault.startAt,
        )?.at;
        judge('server', noticed, serverBound);
      }
    }
    // Recovery: the first delivery after healing, unless the next fault came first.
    if (fault.healAt !== undefined) {
      const healAt = fault.healAt;
      const nextStart = sorted[i + 1]?.startAt ?? Number.POSITIVE_INFINITY;
      const first = Math.min(
        ...history.deliveries.filter((d) => d.at >= healAt).map((d) => d.at),
        ...history.served.filter((d) => d.at >= healAt).map((d) => d.at),
      );
      if (first < nextStart) stats.recoveriesMs.push(first - healAt);
    }

    function judge(side: 'client' | 'server', noticed: number | undefined, bound: number): void {
      const indirect = fault.oneWay === (side === 'client' ? Direction.C2S : Direction.S2C);
      if (noticed !== undefined && noticed <= heal) {
        const took = noticed - fault.startAt;
        if (indirect) stats.indirectDetectionsMs.push(took);
        else stats.detectionsMs.push(took);
        if (took > bound)
          violate(
            'detection-late',
            `${side} found fault #${i} ${describe(fault)} dead after ${took.toFixed(0)} ms > ${bound.toFixed(0)} ms`,
          );
      } else if (heal - fault.startAt > bound) {
        violate(
          'detection-missing',
          `${side} never found fault #${i} ${describe(fault)} dead in ${(heal - fault.startAt).toFixed(0)} ms (bound ${bound.toFixed(0)} ms)`,
        );
      }
    }
  }
}

/**
 * How long each side may take to find a silent fault, from its start: its own deadline + 10% +
 * the allowance when the fault cuts what it receives (both-way cuts, and the receiving side of a
 * one-way cut). A side whose only cut is outbound still hears its peer, and a side with nothing
 * to send cannot tell that its replies vanish: it learns when the peer, having found the link
 * dead, stops talking (or its close gets through), so its bound is both deadlines + 10% + the
 * allowance. With kernel TCP the peer's FIN is stuck behind unacknowledged segments until the
 * link heals, so that is the best any heartbeat can do without a protocol change.
 */
export function detectionBounds(
  fault: Pick<FaultRecord, 'oneWay'>,
  limits: Pick<RunLimits, 'clientDeadlineMs' | 'serverDeadlineMs'>,
): { client: number; server: number } {
  const own = (deadlineMs: number): number => deadlineMs * DETECTION_SLACK + DETECTION_ALLOWANCE_MS;
  const both =
    (limits.clientDeadlineMs + limits.serverDeadlineMs) * DETECTION_SLACK + DETECTION_ALLOWANCE_MS;
  return {
    client: fault.oneWay === Direction.C2S ? both : own(limits.clientDeadlineMs),
    server: fault.oneWay === Direction.S2C ? both : own(limits.serverDeadlineMs),
  };
}

function describe(fault: FaultRecord): string {
  return `${fault.kind}${fault.detail === '' ? '' : ` (${fault.detail})`}`;
}

function checkFinal(history: History, violate: Violate): void {
  for (const change of history.clientStates) {
    if (change.state === 'closed' && !change.closeAsked)
      violate(
        'client-closed',
        `client ${change.incarnation} closed without being asked (${change.code})`,
      );
  }
  for (const error of history.clientErrors) violate('client-closed', `client error: ${error}`);
  for (const hang of history.teardownHangs) violate('close-hangs', hang);
  const final = history.final;
  if (final === undefined) {
    violate('incomplete', 'the run recorded no final facts');
    return;
  }
  if (!final.quiescent)
    violate(
      'not-quiescent',
      `after healing, still unsettled: ${final.unsettled.slice(0, 8).join(', ')}`,
    );
  if (final.clientState !== 'connected')
    violate('client-not-connected', `client ended ${final.clientState} after healing`);
  const quiet = final.serverQuiet;
  if (quiet !== undefined) {
    if (quiet.connections !== 1)
      violate('server-connections', `server has ${quiet.connections} connections, 1 expected`);
    if (!quiet.currentSessionConnected)
      violate('server-sessions', "the client's session is not connected on the server");
    if (final.expectedSessions !== undefined && quiet.sessions !== final.expectedSessions)
      violate(
        'server-sessions',
        `server reports ${quiet.sessions} sessions, its events say ${final.expectedSessions}`,
      );
  }
  const after = final.serverAfterTtl;
  if (after === undefined) {
    violate('incomplete', 'server gauges after the session TTL were not taken');
  } else if (after.connections !== 0 || after.sessions !== 0) {
    violate(
      'leaked-sessions',
      `after close and TTL: ${after.connections} connections, ${after.sessions} sessions`,
    );
  }
  const leaked = Object.entries(final.leakedHandles).filter(([, n]) => n > 0);
  if (leaked.length > 0)
    violate('leaked-handles', leaked.map(([type, n]) => `${n} ${type}`).join(', '));
  const exit = final.childExit;
  if (exit !== undefined && (exit.timedOut || exit.code !== 0))
    violate(
      'child-exit',
      exit.timedOut
        ? 'server process still alive 3 s after its server closed'
        : `server process exited with ${exit.code ?? exit.signal}`,
    );
}
