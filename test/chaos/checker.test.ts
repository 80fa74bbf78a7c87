import { describe, expect, it } from 'vitest';
import { check, DETECTION_ALLOWANCE_MS, detectionBounds } from './checker.js';
import { Direction, History, OpStatus, type RunLimits, type SendOp } from './history.js';

const limits: RunLimits = {
  clientDeadlineMs: 250,
  serverDeadlineMs: 250,
  maxQueuedMessages: 10,
  maxQueuedBytes: 1000,
  overflow: 'reject',
};

const raw = (key: string, value: number): string => JSON.stringify({ [key]: value, p: '' });

/** A clean history: two messages each way, one request, a tidy ending. */
function clean(): History {
  const h = new History();
  h.sessions.push({ at: 0, incarnation: 1, sessionId: 'S1', resumed: false, lost: false });
  for (const value of [1, 2]) {
    send(h, Direction.C2S, value, OpStatus.OK, `client:${value}`);
    deliver(h, Direction.C2S, value, `client:${value}`, 'S1');
    send(h, Direction.S2C, value, OpStatus.OK, `S1:${value}`);
    deliver(h, Direction.S2C, value, `S1:${value}`, 'S1');
  }
  h.requests.push({
    value: 1,
    incarnation: 1,
    invokedAt: 5,
    status: OpStatus.OK,
    reply: raw('r', 1),
    completedAt: 6,
  });
  h.served.push({ value: 1, raw: raw('q', 1), session: 'S1', at: 5.5 });
  h.queue.push({ at: 1, incarnation: 1, depth: 3, bytes: 100 });
  h.final = {
    quiescent: true,
    unsettled: [],
    clientState: 'connected',
    serverQuiet: { connections: 1, sessions: 1, currentSessionConnected: true },
    serverAfterTtl: { connections: 0, sessions: 0 },
    expectedSessions: 1,
    leakedHandles: {},
  };
  return h;
}

function send(
  h: History,
  dir: Direction,
  value: number,
  status: SendOp['status'],
  idOrCode: string,
): SendOp {
  const op: SendOp = { dir, value, incarnation: 1, bytes: 10, invokedAt: value, status };
  if (status === OpStatus.OK) op.id = idOrCode;
  if (status === OpStatus.FAIL) op.code = idOrCode;
  h.sends.push(op);
  return op;
}

function deliver(h: History, dir: Direction, value: number, id: string, session: string): void {
  h.deliveries.push({
    dir,
    value,
    raw: raw('v', value),
    id,
    session,
    incarnation: 1,
    at: 100 + value + h.deliveries.length,
  });
}

/** The distinct checks that failed, sorted. */
function checks(h: History, l: RunLimits = limits): string[] {
  return [...new Set(check(h, l).violations.map((v) => v.check))].sort();
}

describe('chaos checker - total queue', () => {
  it('passes a clean history', () => {
    const result = check(clean(), limits);
    expect(result.violations).toEqual([]);
    expect(result.stats).toMatchObject({ messages: 4, acknowledged: 4, delivered: 4 });
  });

  it('flags an acknowledged message that was never delivered as lost', () => {
    const h = clean();
    send(h, Direction.C2S, 3, OpStatus.OK, 'client:3');
    expect(checks(h)).toEqual(['lost']);
    expect(check(h, limits).stats.lost).toBe(1);
  });

  it('does not count a message failed with CLOSED as lost', () => {
    const h = clean();
    send(h, Direction.C2S, 3, OpStatus.FAIL, 'CLOSED');
    expect(checks(h)).toEqual([]);
  });

  it('flags a delivery that was never sent, or that is not ours, as unexpected', () => {
    const h = clean();
    deliver(h, Direction.S2C, 9, 'S1:9', 'S1');
    h.deliveries.push({
      dir: Direction.C2S,
      value: undefined,
      raw: 'garbage',
      id: 'x',
      session: 'S1',
      at: 200,
    });
    expect(checks(h)).toEqual(['unexpected']);
    expect(check(h, limits).stats.unexpected).toBe(2);
  });

  it('flags a delivery under another id than its receipt', () => {
    const h = clean();
    (h.sends[0] as SendOp).id = 'client:77';
    expect(checks(h)).toEqual(['unexpected']);
  });

  it('flags a second delivery in the same session as duplicated', () => {
    const h = clean();
    deliver(h, Direction.C2S, 2, 'client:2', 'S1');
    expect(checks(h)).toEqual(['duplicated']);
  });

  it('allows a redelivery in a session that replaced a lost one, and counts it', () => {
    const h = clean();
    h.sessions.push({ at: 50, incarnation: 1, sessionId: 'S2', resumed: false, lost: true });
    deliver(h, Direction.C2S, 2, 'client:2', 'S2');
    const result = check(h, limits);
    expect(result.violations).toEqual([]);
    expect(result.stats.redelivered).toBe(1);
  });

  it('flags a redelivery in a new session that was not a session loss', () => {
    const h = clean();
    h.sessions.push({ at: 50, incarnation: 1, sessionId: 'S2', resumed: false, lost: false });
    deliver(h, Direction.C2S, 2, 'client:2', 'S2');
    expect(checks(h)).toEqual(['duplicated']);
  });

  it('never allows a server-to-client duplicate', () => {
    const h = clean();
    h.sessions.push({ at: 50, incarnation: 1, sessionId: 'S2', resumed: false, lost: true });
    deliver(h, Direction.S2C, 2, 'S1:2', 'S2');
    expect(checks(h)).toEqual(['duplicated']);
  });

  it('flags deliveries that go backwards in send order', () => {
    const h = clean();
    // Server-to-client 2 arrives before 1.
    const c2s = h.deliveries.filter((d) => d.dir === Direction.C2S);
    const s2c = h.deliveries.filter((d) => d.dir === Direction.S2C).reverse();
    h.deliveries.splice(0, h.deliveries.length, ...c2s, ...s2c);
    expect(checks(h)).toEqual(['reordered']);
  });

  it('orders per client incarnation, not across a client restart', () => {
    const h = clean();
    const op = send(h, Direction.C2S, 3, OpStatus.FAIL, 'CLOSED');
    op.incarnation = 1;
    const late = send(h, Direction.C2S, 4, OpStatus.OK, 'client:4');
    late.incarnation = 2;
    // 4 (new incarnation) arrives before 3 (the old one's last, rejected CLOSED).
    deliver(h, Direction.C2S, 4, 'client:4', 'S9');
    deliver(h, Direction.C2S, 3, 'client:3', 'S1');
    expect(checks(h)).toEqual([]);
  });
});

describe('chaos checker - requests, queue and overflow', () => {
  it('flags a wrong reply, an unexpected served request and a reply timeout', () => {
    const h = clean();
    (h.requests[0] as { reply: string }).reply = raw('r', 2);
    h.served.push({ value: 42, raw: raw('q', 42), session: 'S1', at: 9 });
    h.requests.push({
      value: 2,
      incarnation: 1,
      invokedAt: 7,
      status: OpStatus.FAIL,
      code: 'REQUEST_TIMEOUT',
    });
    expect(checks(h)).toEqual(['request-reply', 'request-unanswered', 'request-unexpected']);
  });

  it('excuses a request timeout after a session loss', () => {
    const h = clean();
    h.requests.push({
      value: 2,
      incarnation: 1,
      invokedAt: 7,
      status: OpStatus.FAIL,
      code: 'REQUEST_TIMEOUT',
    });
    h.sessions.push({ at: 8, incarnation: 1, sessionId: 'S2', resumed: false, lost: true });
    expect(checks(h)).toEqual([]);
  });

  it('flags an outbox above its caps', () => {
    const h = clean();
    h.queue.push({ at: 2, incarnation: 1, depth: 11, bytes: 10 });
    h.queue.push({ at: 3, incarnation: 1, depth: 1, bytes: 1001 });
    expect(checks(h)).toEqual(['queue-cap']);
  });

  it('flags a drop without its event, a failure without a code and a delivered overflow', () => {
    const h = clean();
    send(h, Direction.C2S, 3, OpStatus.FAIL, 'MESSAGE_DROPPED');
    const op = send(h, Direction.C2S, 4, OpStatus.FAIL, 'x');
    op.code = undefined;
    send(h, Direction.C2S, 5, OpStatus.FAIL, 'QUEUE_FULL');
    deliver(h, Direction.C2S, 5, 'client:5', 'S1');
    expect(checks(h, { ...limits, overflow: 'drop-oldest' })).toEqual([
      'failure-without-code',
      'overflow-delivered',
      'overflow-unreported',
    ]);
  });

  it('accepts a drop reported by both its event and its rejection', () => {
    const h = clean();
    send(h, Direction.C2S, 3, OpStatus.FAIL, 'MESSAGE_DROPPED');
    h.drops.push('v:3');
    expect(checks(h, { ...limits, overflow: 'drop-oldest' })).toEqual([]);
    expect(checks(h, { ...limits, overflow: 'reject' })).toEqual(['overflow-policy']);
  });

  it('flags operations that never settled and failures of an unexpected kind', () => {
    const h = clean();
    send(h, Direction.S2C, 3, OpStatus.PENDING, '');
    send(h, Direction.C2S, 4, OpStatus.FAIL, 'MESSAGE_EXPIRED');
    expect(checks(h)).toEqual(['never-settled', 'send-failed']);
  });
});

describe('chaos checker - detection, files and the ending', () => {
  const fault = (startAt: number, healAt: number, oneWay?: Direction) => ({
    kind: 'blackhole',
    silent: true,
    background: false,
    detail: '',
    startAt,
    healAt,
    clientConnected: true,
    serverConnected: true,
    ...(oneWay === undefined ? {} : { oneWay }),
  });
  const bound = 250 * 1.1 + DETECTION_ALLOWANCE_MS;

  it('accepts detection within the deadline + 10% + allowance on both sides', () => {
    const h = clean();
    h.faults.push(fault(1000, 2000));
    h.clientStates.push({
      at: 1000 + bound - 1,
      incarnation: 1,
      state: 'reconnecting',
      previous: 'connected',
      closeAsked: false,
    });
    h.serverEvents.push({ at: 1000 + bound - 1, session: 'S1', kind: 'disconnect' });
    expect(check(h, limits).violations).toEqual([]);
    expect(check(h, limits).stats.detectionsMs).toHaveLength(2);
  });

  it('flags late detection and missing detection', () => {
    const h = clean();
    h.faults.push(fault(1000, 2000));
    h.clientStates.push({
      at: 1000 + bound + 1,
      incarnation: 1,
      state: 'reconnecting',
      previous: 'connected',
      closeAsked: false,
    });
    expect(checks(h)).toEqual(['detection-late', 'detection-missing']);
  });

  it('does not require detection of a fault healed before the bound', () => {
    const h = clean();
    h.faults.push(fault(1000, 1000 + bound - 5));
    expect(checks(h)).toEqual([]);
  });

  it('gives the side that only lost its outbound direction both deadlines', () => {
    const bounds = detectionBounds({ oneWay: Direction.S2C }, limits);
    expect(bounds.client).toBe(bound);
    expect(bounds.server).toBe(500 * 1.1 + DETECTION_ALLOWANCE_MS);
    const h = clean();
    h.faults.push(fault(1000, 2000, Direction.S2C));
    h.clientStates.push({
      at: 1250,
      incarnation: 1,
      state: 'reconnecting',
      previous: 'connected',
      closeAsked: false,
    });
    h.serverEvents.push({ at: 1500, session: 'S1', kind: 'disconnect' });
    expect(checks(h)).toEqual([]);
    h.serverEvents[0] = { at: 1000 + bounds.server + 1, session: 'S1', kind: 'disconnect' };
    expect(checks(h)).toEqual(['detection-late']);
  });

  it('measures recovery from healing to the first delivery', () => {
    const h = clean();
    h.faults.push({ ...fault(10, 50), silent: false });
    expect(check(h, limits).stats.recoveriesMs).toEqual([51]);
  });

  it('flags a lost file, a file that is not byte-identical and an unknown file', () => {
    const h = clean();
    const op = {
      dir: Direction.C2S,
      name: 'a',
      size: 3,
      sha256: 'aa',
      incarnation: 1,
      invokedAt: 1,
      status: OpStatus.OK,
    };
    h.files.push(op, { ...op, name: 'b' });
    h.fileDeliveries.push({
      dir: Direction.C2S,
      name: 'b',
      size: 3,
      sha256: 'bb',
      session: 'S1',
      at: 2,
    });
    h.fileDeliveries.push({
      dir: Direction.S2C,
      name: 'c',
      size: 3,
      sha256: 'cc',
      session: 'S1',
      at: 2,
    });
    expect(checks(h)).toEqual(['file-corrupt', 'file-lost', 'file-unexpected']);
  });

  it('accepts an identical file, flags a second copy and a failure of the wrong kind', () => {
    const h = clean();
    const op = {
      dir: Direction.C2S,
      name: 'd',
      size: 3,
      sha256: 'dd',
      incarnation: 1,
      invokedAt: 1,
      status: OpStatus.OK,
    };
    h.files.push(op);
    h.fileDeliveries.push({
      dir: Direction.C2S,
      name: 'd',
      size: 3,
      sha256: 'dd',
      session: 'S1',
      at: 2,
    });
    expect(checks(h)).toEqual([]);
    expect(check(h, limits).stats.fileBytes).toBe(3);
    h.files.push({ ...op, name: 'e', status: OpStatus.FAIL, code: 'FILE_CHECKSUM_MISMATCH' });
    h.fileDeliveries.push({
      dir: Direction.C2S,
      name: 'd',
      size: 3,
      sha256: 'dd',
      session: 'S1',
      at: 3,
    });
    expect(checks(h)).toEqual(['file-duplicated', 'file-failed']);
  });

  it('flags a file not complete at both ends by its deadline as late', () => {
    const h = clean();
    const op = {
      dir: Direction.C2S,
      name: 'f',
      size: 3,
      sha256: 'ff',
      incarnation: 1,
      invokedAt: 1,
      status: OpStatus.OK,
      completedAt: 10,
      dueBy: 10,
      due: 'after the fault healed',
    };
    const arrived = (name: string, at: number, sha256 = 'ff') =>
      h.fileDeliveries.push({ dir: Direction.C2S, name, size: 3, sha256, session: 'S1', at });
    h.files.push(op);
    arrived('f', 10);
    expect(checks(h)).toEqual([]);
    h.files.push({ ...op, name: 'g' });
    arrived('g', 11);
    h.files.push({ ...op, name: 'h', status: OpStatus.FAIL, code: 'CLOSED', committed: 1 });
    h.files.push({ ...op, name: 'i', status: OpStatus.PENDING });
    arrived('i', 9);
    h.files.push({ ...op, name: 'j', completedAt: 12 });
    arrived('j', 9);
    const late = check(h, limits).violations.filter((v) => v.check === 'file-late');
    expect(late.map((v) => v.detail)).toEqual([
      'c2s: g (3 B) received 1 ms late; due after the fault healed (4 in all)',
      "c2s: h (3 B) never received intact, the sender's transfer failed (CLOSED); due after the fault healed; receiver had committed 1 B",
      "c2s: i (3 B) the sender's transfer never resolved; due after the fault healed",
      "c2s: j (3 B) the sender's transfer resolved 2 ms late; due after the fault healed",
    ]);
    // A corrupt copy on time does not count as received.
    const corrupt = clean();
    corrupt.files.push({ ...op, name: 'k' });
    corrupt.fileDeliveries.push({
      dir: Direction.C2S,
      name: 'k',
      size: 3,
      sha256: 'bad',
      session: 'S1',
      at: 5,
    });
    expect(checks(corrupt)).toEqual(['file-corrupt', 'file-late']);
  });

  it('flags a client that closed unasked or ended disconnected', () => {
    const h = clean();
    h.clientStates.push({
      at: 5,
      incarnation: 1,
      state: 'closed',
      previous: 'reconnecting',
      code: 'PREFACE_INVALID',
      closeAsked: false,
    });
    h.clientErrors.push('PREFACE_INVALID: ...');
    if (h.final) h.final.clientState = 'closed';
    expect(checks(h)).toEqual(['client-closed', 'client-not-connected']);
    h.clientStates[0] = {
      ...(h.clientStates[0] as (typeof h.clientStates)[number]),
      closeAsked: true,
    };
    h.clientErrors.length = 0;
    if (h.final) h.final.clientState = 'connected';
    expect(checks(h)).toEqual([]);
  });

  it('flags server gauges that disagree, leaked sessions and handles, and a child that hung', () => {
    const h = clean();
    if (h.final === undefined) throw new Error('no final facts');
    h.final.serverQuiet = { connections: 2, sessions: 2, currentSessionConnected: false };
    h.final.serverAfterTtl = { connections: 0, sessions: 1 };
    h.final.leakedHandles = { TCPSocketWrap: 1 };
    h.final.childExit = { code: null, signal: 'SIGKILL', timedOut: true };
    h.final.quiescent = false;
    h.final.unsettled = ['c2s 7'];
    expect(checks(h)).toEqual([
      'child-exit',
      'leaked-handles',
      'leaked-sessions',
      'not-quiescent',
      'server-connections',
      'server-sessions',
    ]);
  });
});
