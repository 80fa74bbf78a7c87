/**
 * A failing run's history as a readable timeline (ms from the run's start), written to a file in
 * the temp directory so the console stays short.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { History } from './history.js';

export function timeline(history: History, t0: number): string {
  const rows: [number, string][] = [];
  const add = (at: number | undefined, text: string): void => {
    if (at !== undefined) rows.push([at, text]);
  };
  for (const m of history.marks) add(m.at, `step ${m.text}`);
  for (const [i, f] of history.faults.entries()) {
    add(
      f.startAt,
      `FAULT #${i} ${f.kind} on (${f.detail}; client ${f.clientConnected ? 'up' : 'down'}, server ${f.serverConnected ? 'up' : 'down'})`,
    );
    add(f.healAt, `FAULT #${i} ${f.kind} healed`);
  }
  for (const s of history.clientStates)
    add(
      s.at,
      `client#${s.incarnation} ${s.previous} -> ${s.state}${s.code === undefined ? '' : ` (${s.code})`}`,
    );
  for (const s of history.sessions)
    add(
      s.at,
      `client#${s.incarnation} session ${s.sessionId}${s.resumed ? ' resumed' : ''}${s.lost ? ' LOST previous' : ''}`,
    );
  for (const e of history.serverEvents)
    add(
      e.at,
      `server ${e.kind} ${e.session}${e.code === undefined ? '' : ` (${e.code})`}${e.resumed ? ' resumed' : ''}`,
    );
  for (const op of history.sends) {
    add(op.invokedAt, `${op.dir} send ${op.value}`);
    add(
      op.completedAt,
      `${op.dir} send ${op.value} ${op.status}${op.code === undefined ? ` ${op.id}` : ` ${op.code}`}`,
    );
  }
  for (const d of history.deliveries)
    add(d.at, `${d.dir} delivered ${d.value ?? d.raw.slice(0, 30)} as ${d.id}`);
  for (const op of history.requests) {
    add(op.invokedAt, `request ${op.value}`);
    add(op.completedAt, `request ${op.value} ${op.status} ${op.reply ?? op.code}`);
  }
  for (const f of history.files) {
    add(
      f.invokedAt,
      `${f.dir} file ${f.name} (${f.size} B)${f.target === undefined ? '' : ` to ${f.target}`}`,
    );
    add(
      f.completedAt,
      `${f.dir} file ${f.name} ${f.status}${f.code === undefined ? '' : ` ${f.code}`}`,
    );
  }
  for (const f of history.fileDeliveries)
    add(f.at, `${f.dir} file ${f.name} received (${f.size} B, session ${f.session})`);
  for (const s of history.served) add(s.at, `server served ${s.value ?? s.raw.slice(0, 30)}`);
  rows.sort((a, b) => a[0] - b[0]);
  return rows.map(([at, text]) => `${(at - t0).toFixed(1).padStart(9)} ${text}`).join('\n');
}

/** Writes the timeline of a failing run; returns the file's path. */
export function writeTimeline(history: History, t0: number, suite: string, seed: number): string {
  const path = join(tmpdir(), `tether-chaos-${suite}-${seed}.log`);
  writeFileSync(path, `${timeline(history, t0)}\n`);
  return path;
}
