import type { Connection } from '@tether/core';
import type { PeerPendingSend } from './peer-session.js';

type ServerConnection = Connection<PeerPendingSend>;

/**
 * The server's budget for bytes held in incomplete frames, across every connection. Over it,
 * connections holding partial frames stop being read (their frame deadlines still run);
 * connections without a session go first: only if sessions alone hold more than the budget are
 * they paused too, so strangers cannot starve authenticated clients. Reading resumes when the
 * total falls to half.
 */
export class InboundBudget {
  readonly #budget: number;
  readonly #connections: ReadonlySet<ServerConnection>;
  readonly #paused = new Set<ServerConnection>();
  #held = 0;

  constructor(budget: number, connections: ReadonlySet<ServerConnection>) {
    this.#budget = budget;
    this.#connections = connections;
  }

  /** Bytes held in incomplete frames now. */
  get held(): number {
    return this.#held;
  }

  /** Whether the budget is spent: a newcomer is not read at all until memory frees. */
  get spent(): boolean {
    return this.#held > this.#budget;
  }

  /** `connection` now holds `delta` more bytes. */
  changed(delta: number): void {
    this.#held += delta;
    if (this.#held > this.#budget) {
      this.#pauseHolders();
    } else if (this.#paused.size > 0 && this.#held <= this.#budget / 2) {
      for (const connection of this.#paused) connection.resumeReading();
      this.#paused.clear();
    }
  }

  /** Stops reading `connection` until the budget frees. */
  pause(connection: ServerConnection): void {
    connection.pauseReading();
    this.#paused.add(connection);
  }

  /** `connection` ended. */
  forget(connection: ServerConnection): void {
    this.#paused.delete(connection);
  }

  #pauseHolders(): void {
    let sessionBytes = 0;
    for (const connection of this.#connections) {
      if (connection.established) sessionBytes += connection.bufferedBytes;
      else if (connection.bufferedBytes > 0) this.pause(connection);
    }
    if (sessionBytes <= this.#budget) return;
    for (const connection of this.#connections) {
      if (connection.established && connection.bufferedBytes > 0) this.pause(connection);
    }
  }
}
