import type { PeerPage, PeerRow } from './peer-view.js';

/** A row's JSON and the row it was made from. */
interface Kept {
  row: PeerRow;
  json: string;
}

/**
 * Whether two rows of one session hold the same values (rows carry no RTT history here). At rest
 * a row changes once per ping interval (its bytes and last seen), the page is sent every second.
 * Field by field, the ones that change most first: this runs once a second per row, too seldom
 * for V8 to optimize it, and a `for...in` over the row cost several times more there. A test
 * changes each field of a row in turn.
 */
function sameRow(a: PeerRow, b: PeerRow): boolean {
  return (
    a.lastSeen === b.lastSeen &&
    a.bytesIn === b.bytesIn &&
    a.bytesOut === b.bytesOut &&
    a.srtt === b.srtt &&
    a.rttvar === b.rttvar &&
    a.messagesIn === b.messagesIn &&
    a.messagesOut === b.messagesOut &&
    a.queueDepth === b.queueDepth &&
    a.queueBytes === b.queueBytes &&
    a.connected === b.connected &&
    a.address === b.address &&
    a.clientId === b.clientId &&
    a.id === b.id &&
    // Transfers are a new array per row: equal only when both are empty.
    a.transfers.length === 0 &&
    b.transfers.length === 0
  );
}

/**
 * The JSON of a live update, as `JSON.stringify` gives it, with the JSON of each row kept from
 * one round of updates to the next and used again while the row's values stay the same: most of
 * an update's bytes are its rows, and at rest most rows did not change since the last second.
 * Rows kept: those of the last two rounds.
 */
export class UpdateJson {
  #kept = new Map<string, Kept>();
  #previous = new Map<string, Kept>();

  /** Rows whose JSON is kept (of the last two rounds). */
  get keptRows(): number {
    let n = this.#kept.size;
    for (const id of this.#previous.keys()) if (!this.#kept.has(id)) n++;
    return n;
  }

  /** Starts a round: rows not written since the one before last are forgotten. */
  round(): void {
    this.#previous = this.#kept;
    this.#kept = new Map();
  }

  /**
   * `JSON.stringify` of `update` with `histories[i]`, where given, as row i's `rtt` (after its
   * other fields, as `{ ...row, rtt }`). The rows themselves carry no `rtt`.
   */
  write(
    update: { time: number; totals: unknown; peers: PeerPage; log: unknown[] },
    histories: readonly (number[] | undefined)[],
  ): string {
    const { rows, ...meta } = update.peers;
    const parts: string[] = [];
    for (const [i, row] of rows.entries()) parts.push(this.#row(row, histories[i]));
    const page = JSON.stringify(meta);
    return `{"time":${JSON.stringify(update.time)},"totals":${JSON.stringify(update.totals)},"peers":${page.slice(0, -1)}${page.length > 2 ? ',' : ''}"rows":[${parts.join(',')}]},"log":${JSON.stringify(update.log)}}`;
  }

  #row(row: PeerRow, rtt: number[] | undefined): string {
    let kept = this.#kept.get(row.id) ?? this.#previous.get(row.id);
    if (kept === undefined || !sameRow(row, kept.row)) {
      kept = { row, json: JSON.stringify(row) };
    }
    this.#kept.set(row.id, kept);
    return rtt === undefined
      ? kept.json
      : `${kept.json.slice(0, -1)},"rtt":${JSON.stringify(rtt)}}`;
  }
}
