import type { FileSendState, TetherError } from '@tether/protocol';
import { ReadAhead } from './read-ahead.js';
import type { Source } from './source.js';
import type { Transfer, TransferResult } from './transfer.js';

/**
 * Where an outgoing transfer stands, on this side. The wire state of the current offer (offsets,
 * window, epoch) is its `FileSendState`; this is the transfer's own life, across connections.
 */
export const OutgoingPhase = {
  /** Waiting for one of the engine's `concurrency` places. */
  QUEUED: 'queued',
  /** Opening the file and checking it did not change. */
  OPENING: 'opening',
  /** Open; not offered on the current connection (none is up yet). */
  READY: 'ready',
  /**
   * FILE_OFFER went out on the current connection; waiting for FILE_ACCEPT. Unanswered, it goes
   * out again each re-offer interval.
   */
  OFFERED: 'offered',
  /** FILE_ACCEPT came: checking the file and hashing the bytes before the resume offset. */
  ACCEPTING: 'accepting',
  /** Chunks, then FILE_END, go out from the receiver's committed offset; FILE_COMPLETE is due. */
  SENDING: 'sending',
  /** Every chunk is out: finishing the SHA-256 (and checking the file) before FILE_END. */
  SEALING: 'sealing',
  /** FILE_COMPLETE matched: `done` resolved. */
  DONE: 'done',
  /** Failed, cancelled or aborted: `done` rejected. */
  FAILED: 'failed',
} as const;
export type OutgoingPhase = (typeof OutgoingPhase)[keyof typeof OutgoingPhase];

const P = OutgoingPhase;
// Every transition, in one place. A connection that drops sends an offered transfer back to
// READY; the next connection offers it again.
const TRANSITIONS: Record<OutgoingPhase, readonly OutgoingPhase[]> = {
  [P.QUEUED]: [P.OPENING, P.FAILED],
  [P.OPENING]: [P.READY, P.FAILED],
  [P.READY]: [P.OFFERED, P.FAILED],
  [P.OFFERED]: [P.ACCEPTING, P.READY, P.DONE, P.FAILED],
  [P.ACCEPTING]: [P.SENDING, P.READY, P.DONE, P.FAILED],
  [P.SENDING]: [P.SEALING, P.READY, P.DONE, P.FAILED],
  [P.SEALING]: [P.SENDING, P.READY, P.DONE, P.FAILED],
  [P.DONE]: [],
  [P.FAILED]: [],
};

/** Phases in which the transfer is offered on the current connection. */
const ON_THE_WIRE: ReadonlySet<OutgoingPhase> = new Set([
  P.OFFERED,
  P.ACCEPTING,
  P.SENDING,
  P.SEALING,
]);

/** What an outgoing transfer starts with. */
export interface OutgoingInit {
  transfer: Transfer;
  resolve: (result: TransferResult) => void;
  reject: (error: TetherError) => void;
  file: Source;
  startedAt: number;
  /** A chunk (or FILE_END) is ready to send. */
  ready: () => void;
  /** Reading a chunk failed. */
  readFailed: (error: unknown) => void;
}

/**
 * One outgoing file: its phase, the source file, the offer on the current connection (its
 * `FileSendState` and the chunks read ahead for it), and what `progress` reports.
 */
export class Outgoing {
  readonly transfer: Transfer;
  readonly resolve: (result: TransferResult) => void;
  readonly reject: (error: TetherError) => void;
  readonly file: Source;
  readonly startedAt: number;
  /** The chunks read ahead for the offer on the current connection. */
  readonly reads: ReadAhead;
  #phase: OutgoingPhase = P.QUEUED;
  /** The offer on the current connection; undefined in QUEUED, OPENING, READY and when over. */
  state: FileSendState | undefined;
  /** Port generation of the connection `state` belongs to. */
  generation = -1;
  /** When FILE_OFFER last went out on the current connection (the sender's clock). */
  offeredAt = 0;
  /**
   * The receiver answered the offer on the current connection with FILE_COMPLETE (checked while
   * the file is hashed): it is not offered again. FILE_ACCEPT and FILE_FAILED end OFFERED.
   */
  answered = false;
  /** End offset of the chunks put on the wire since the last accept or rewind. */
  sentTo = 0;
  /** FILE_END went out since the last accept or rewind: FILE_COMPLETE is awaited. */
  endSent = false;
  /** File bytes put on the wire, re-sent bytes included. */
  bytesSent = 0;
  /** The receiver's latest committed offset. */
  committed = 0;
  /** The first FILE_ACCEPT's offset. */
  resumedFrom: number | undefined;
  /** Committed offsets over time, for the rate. */
  samples: { at: number; bytes: number }[] = [];
  /** Removes the abort listener. */
  unlisten: () => void = () => {};

  constructor(init: OutgoingInit) {
    this.transfer = init.transfer;
    this.resolve = init.resolve;
    this.reject = init.reject;
    this.file = init.file;
    this.startedAt = init.startedAt;
    this.reads = new ReadAhead(
      init.transfer.id,
      init.file,
      () => (this.is(P.SENDING, P.SEALING) ? this.state : undefined),
      init.ready,
      init.readFailed,
    );
  }

  get id(): string {
    return this.transfer.id;
  }

  get name(): string {
    return this.transfer.name;
  }

  get size(): number {
    return this.file.size;
  }

  get phase(): OutgoingPhase {
    return this.#phase;
  }

  /** Done or failed. */
  get finished(): boolean {
    return this.#phase === P.DONE || this.#phase === P.FAILED;
  }

  /** Offered on the connection of port generation `generation`. */
  offeredOn(generation: number): boolean {
    return ON_THE_WIRE.has(this.#phase) && this.generation === generation;
  }

  /** Whether it is in one of `phases`. */
  is(...phases: OutgoingPhase[]): boolean {
    return phases.includes(this.#phase);
  }

  /** Moves to `phase`; a transition not in the table is a bug. */
  to(phase: OutgoingPhase): void {
    if (!TRANSITIONS[this.#phase].includes(phase)) {
      throw new Error(
        `outgoing transfer ${this.id}: ${this.#phase} -> ${phase} is not a transition`,
      );
    }
    this.#phase = phase;
    if (!ON_THE_WIRE.has(phase)) {
      this.state = undefined;
      this.reads.clear();
    }
  }

  /** Whether data it put on the current link waits for the receiver's progress. */
  get awaiting(): boolean {
    const state = this.state;
    return state !== undefined && (this.endSent || this.sentTo > state.committed);
  }
}
