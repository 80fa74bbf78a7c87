import type { ClientRecord } from './fleet.js';
import type { JournalLine } from './journal.js';
import type { ClusterEvent } from './rig.js';

/** One line of the verification table. */
export interface Check {
  name: string;
  detail: string;
  ok: boolean;
}

/** Counts the checks are made of (also reported). */
export interface Tally {
  clientSends: number;
  clientResolved: number;
  clientRejected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  redelivered: number;
  /** Second deliveries not marked `redelivered`. */
  unmarkedDuplicates: number;
  /** Marked deliveries whose earlier copy was on an instance that was not killed in between. */
  unexplainedRedeliveries: number;
  unexpected: number;
  serverAttempts: number;
  serverAccepted: number;
  serverDelivered: number;
  serverLost: number;
  serverDuplicates: number;
  serverUnexpected: number;
  sessionsLost: number;
  /** Per kill: ms until every client the instance had was welcomed elsewhere. */
  resumeMs: number[];
  /** Clients of a killed instance that never resumed. */
  notResumed: number;
  /** What went wrong, in words (the first few of each kind), for a failing run's report. */
  problems: string[];
}

/**
 * The checks of a cluster run, Jepsen-style, over the instances' journals (what each
 * application saw, written before its handler returned) and the clients' records:
 * client→server, every resolved send delivered, a value delivered twice only when the instance
 * that had it first was killed in between and the second copy is marked `redelivered`;
 * server→client, every send the store accepted delivered exactly once, nothing delivered that
 * was not sent; no session lost.
 */
export function tally(
  journals: Map<string, JournalLine[]>,
  clients: ClientRecord[],
  events: ClusterEvent[],
): Tally {
  const kills = events.filter((e) => e.kind === 'kill');
  const problems: string[] = [];
  const note = (text: string): void => {
    if (problems.length < 20) problems.push(text);
  };
  // Client → server.
  const copies = new Map<string, { instance: string; at: number; redelivered: boolean }[]>();
  let redelivered = 0;
  for (const [instance, lines] of journals) {
    for (const line of lines) {
      if (line.kind !== 'm') continue;
      if (line.redelivered) redelivered++;
      let list = copies.get(line.value);
      if (list === undefined) {
        list = [];
        copies.set(line.value, list);
      }
      list.push({ instance, at: line.at, redelivered: line.redelivered });
    }
  }
  let lost = 0;
  let clientSends = 0;
  let clientResolved = 0;
  let clientRejected = 0;
  const sentValues = new Set<string>();
  for (const client of clients) {
    clientSends += client.sent.length;
    clientResolved += client.resolved.size;
    clientRejected += client.rejected.size;
    for (const value of client.sent) sentValues.add(value);
    for (const value of client.resolved.keys()) {
      if (copies.has(value)) continue;
      lost++;
      note(`client message ${value} resolved (${client.resolved.get(value)}) but never delivered`);
    }
  }
  let duplicates = 0;
  let unmarkedDuplicates = 0;
  let unexplainedRedeliveries = 0;
  let unexpected = 0;
  for (const [value, list] of copies) {
    if (!sentValues.has(value)) unexpected++;
    list.sort((a, b) => a.at - b.at);
    for (let i = 1; i < list.length; i++) {
      duplicates++;
      const copy = list[i] as (typeof list)[number];
      const first = list[i - 1] as (typeof list)[number];
      if (!copy.redelivered) unmarkedDuplicates++;
      const killed = kills.some(
        (k) => k.instance === first.instance && k.at >= first.at && k.at <= copy.at,
      );
      if (!killed) {
        unexplainedRedeliveries++;
        const near = events
          .filter((e) => Math.abs(e.at - copy.at) < 5000)
          .map(
            (e) =>
              `${e.kind}${e.instance === undefined ? '' : ` ${e.instance}`} ${e.at - first.at} ms`,
          )
          .join(', ');
        note(
          `client message ${value} seen on ${first.instance}, then ${copy.at - first.at} ms later on ${copy.instance}${copy.redelivered ? ' (marked)' : ''}, no kill of ${first.instance} between; events near: ${near || 'none'}`,
        );
      }
    }
  }
  // Server → client.
  const attempts = new Map<string, string>();
  const accepted = new Map<string, string>();
  const acceptedWhere = new Map<string, string>();
  for (const [instance, lines] of journals) {
    for (const line of lines) {
      if (line.kind === 't') attempts.set(line.value, line.clientId);
      else if (line.kind === 'a') {
        accepted.set(line.value, line.id);
        acceptedWhere.set(line.value, `${instance} at ${line.at}`);
      }
    }
  }

  const deliveredTimes = new Map<string, number>();
  let serverUnexpected = 0;
  let serverDelivered = 0;
  for (const client of clients) {
    for (const message of client.received) {
      serverDelivered++;
      deliveredTimes.set(message.value, (deliveredTimes.get(message.value) ?? 0) + 1);
      const target = attempts.get(message.value);
      const id = accepted.get(message.value);
      if (target !== client.clientId || (id !== undefined && id !== message.id)) serverUnexpected++;
    }
  }
  let serverLost = 0;
  for (const [value, id] of accepted) {
    if (deliveredTimes.has(value)) continue;
    serverLost++;
    const clientId = attempts.get(value) ?? '?';
    const client = clients.find((c) => c.clientId === clientId);
    const last = client?.received.filter((m) => m.id.split(':')[0] === id.split(':')[0]).at(-1);
    note(
      `server message ${value} (${id}) to ${clientId} accepted on ${acceptedWhere.get(value)}, never delivered; the client's last from that session: ${last?.id ?? 'none'}; its welcomes: ${client?.welcomes.join(', ')}`,
    );
  }
  let serverDuplicates = 0;
  for (const times of deliveredTimes.values()) if (times > 1) serverDuplicates += times - 1;
  // Resume after each kill: the clients whose last welcome before the kill was on the killed
  // instance, until each was welcomed on another.
  const connections: { instance: string; at: number; clientId: string }[] = [];
  for (const [instance, lines] of journals) {
    for (const line of lines) {
      if (line.kind === 'c') connections.push({ instance, at: line.at, clientId: line.clientId });
    }
  }
  connections.sort((a, b) => a.at - b.at);
  const resumeMs: number[] = [];
  let notResumed = 0;
  for (const kill of kills) {
    const last = new Map<string, string>();
    for (const c of connections) if (c.at <= kill.at) last.set(c.clientId, c.instance);
    let worst = 0;
    for (const [clientId, instance] of last) {
      if (instance !== kill.instance) continue;
      const next = connections.find((c) => c.clientId === clientId && c.at > kill.at);
      if (next === undefined) notResumed++;
      else worst = Math.max(worst, next.at - kill.at);
    }
    resumeMs.push(worst);
  }
  return {
    clientSends,
    clientResolved,
    clientRejected,
    delivered: [...copies.values()].reduce((n, list) => n + list.length, 0),
    lost,
    duplicates,
    redelivered,
    unmarkedDuplicates,
    unexplainedRedeliveries,
    unexpected,
    serverAttempts: attempts.size,
    serverAccepted: accepted.size,
    serverDelivered,
    serverLost,
    serverDuplicates,
    serverUnexpected,
    sessionsLost: clients.reduce((n, c) => n + c.sessionsLost, 0),
    resumeMs,
    notResumed,
    problems,
  };
}

/** Counts the redelivered marks in journal lines written between `from` and `to`. */
export function redeliveredBetween(
  journals: Map<string, JournalLine[]>,
  from: number,
  to: number,
): number {
  let n = 0;
  for (const lines of journals.values()) {
    for (const line of lines)
      if (line.kind === 'm' && line.redelivered && line.at >= from && line.at <= to) n++;
  }
  return n;
}

/** The verification table of a run. */
export function checks(t: Tally, gracefulRedeliveries: number, settled: boolean): Check[] {
  return [
    {
      name: 'client sends settled',
      detail: `${t.clientResolved} resolved, ${t.clientRejected} rejected of ${t.clientSends}`,
      ok: settled && t.clientRejected === 0 && t.clientResolved === t.clientSends,
    },
    {
      name: 'client→server: nothing acknowledged lost',
      detail: `${t.delivered} deliveries, ${t.lost} lost, ${t.unexpected} unexpected`,
      ok: t.lost === 0 && t.unexpected === 0,
    },
    {
      name: 'client→server: twice only across a kill, marked',
      detail: `${t.redelivered} marked redelivered, ${t.duplicates} seen twice (${t.unmarkedDuplicates} unmarked, ${t.unexplainedRedeliveries} without a kill)`,
      ok: t.unmarkedDuplicates === 0 && t.unexplainedRedeliveries === 0,
    },
    {
      name: 'graceful close: no redelivery',
      detail: `${gracefulRedeliveries} marked during the rolling restart`,
      ok: gracefulRedeliveries === 0,
    },
    {
      name: 'server→client: accepted means delivered once',
      detail: `${t.serverAccepted} accepted of ${t.serverAttempts}, ${t.serverDelivered} delivered, ${t.serverLost} lost, ${t.serverDuplicates} duplicated, ${t.serverUnexpected} unexpected`,
      ok: t.serverLost === 0 && t.serverDuplicates === 0 && t.serverUnexpected === 0,
    },
    {
      name: 'sessions kept',
      detail: `${t.sessionsLost} lost`,
      ok: t.sessionsLost === 0,
    },
    {
      name: 'clients of a killed instance resumed elsewhere',
      detail: `${t.resumeMs.length} kills, slowest ${t.resumeMs.map((ms) => `${ms} ms`).join(', ') || '-'}; ${t.notResumed} not resumed`,
      ok: t.notResumed === 0,
    },
  ];
}
