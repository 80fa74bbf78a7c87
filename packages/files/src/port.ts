/**
 * Bytes a link may hold unsent before it stops taking file chunks (`TransferLink.writable`).
 * Small, so a message queued behind file chunks waits for at most this much to drain.
 */
export const TRANSFER_LOW_WATER: number = 256 * 1024;

/**
 * How long an offer waits for its answer before it goes out again, on a link that does not say
 * (`TransferLink.reofferMs`): the default ping interval, so a lost FILE_OFFER or FILE_ACCEPT is
 * repaired well within the default dead deadline (15 s).
 */
export const DEFAULT_REOFFER_MS = 5000;

/**
 * The engine's view of the current connection, shared by its sending and receiving halves.
 * `generation` changes on every attach and detach, so work started on one connection can tell,
 * when it finishes, that the connection it answers to is gone.
 */
export interface Port {
  readonly attached: boolean;
  readonly generation: number;
  /** The peer's frame limit (0 while detached). */
  readonly maxFrame: number;
  /** How long an unanswered offer waits before it goes out again on this link. */
  readonly reofferMs: number;
  /** Queues a frame to the peer; dropped while detached. */
  send(frame: Buffer): void;
  /** Whether the link takes more bulk data now. */
  writable(): boolean;
  /** Records that FILE_OFFER for `id` went out on the current connection. */
  offered(id: string): void;
  /** Whether FILE_OFFER for `id` went out on the current connection. */
  wasOffered(id: string): boolean;
  /** File data now waits for the peer's progress (see {@link TransferLink.awaiting}). */
  awaiting(): void;
  /** Transfers moved (see {@link TransferLink.progressed}). */
  progressed(stillAwaiting: boolean): void;
}

/** What the engine needs from the current connection. */
export interface TransferLink {
  /** Queues an encoded frame to the peer (batched, in order with DATA frames). */
  write(frame: Buffer): void;
  /**
   * True while the link holds less than `TRANSFER_LOW_WATER` bytes unsent. While false the engine sends no
   * chunk until `pump()` (control frames still go out: they are small).
   */
  writable(): boolean;
  /** The peer's frame limit: a FILE_CHUNK's `length` (30 + data) stays within it. */
  readonly maxFrame: number;
  /**
   * An offer with no answer (FILE_ACCEPT, FILE_COMPLETE or FILE_FAILED) this long goes out again
   * on this link, and again each such interval until it is answered, cancelled or the link is
   * detached: a FILE_OFFER or FILE_ACCEPT lost inside a live link is repaired without ending the
   * link (an offer's wait is not silence, see `awaiting`). Give the link's ping interval, so the
   * repair comes well within its dead deadline. A positive number of ms; default 5000.
   */
  readonly reofferMs?: number;
  /**
   * The sender put FILE_CHUNKs or FILE_END on the link that wait for the receiver's FILE_STATUS
   * or FILE_COMPLETE, and nothing waited before. Called once per such start, not per chunk. A
   * connection can count this as silence, as it counts DATA awaiting its ACK, so that a
   * transfer stuck on a lost frame makes the link dead (and resumes on reconnect) instead of
   * stalling. An offer waiting for FILE_ACCEPT does not count: the receiver's application may
   * take its time to decide (a lost FILE_OFFER or FILE_ACCEPT is repaired by offering again, see
   * `reofferMs`).
   */
  awaiting?(): void;
  /**
   * A FILE_ACCEPT, a FILE_STATUS that advanced, a FILE_COMPLETE, a FILE_FAILED or a cancel moved
   * a transfer; `stillAwaiting` says whether any transfer's data still waits for progress (then
   * the silence clock restarts now; otherwise it stops). A rewind is not progress.
   */
  progressed?(stillAwaiting: boolean): void;
}

/** A {@link Port} over whichever link is attached. */
export class LinkPort implements Port {
  #link: TransferLink | undefined;
  #generation = 0;
  /** Transfer ids offered on the current connection; it only grows until the next `set`. */
  #offered = new Set<string>();

  get attached(): boolean {
    return this.#link !== undefined;
  }

  get generation(): number {
    return this.#generation;
  }

  get maxFrame(): number {
    return this.#link?.maxFrame ?? 0;
  }

  get reofferMs(): number {
    return this.#link?.reofferMs ?? DEFAULT_REOFFER_MS;
  }

  /** Sets (or clears) the link; either way a new generation starts. */
  set(link: TransferLink | undefined): void {
    const reofferMs = link?.reofferMs;
    if (reofferMs !== undefined && !(reofferMs > 0 && Number.isFinite(reofferMs))) {
      throw new TypeError(`link.reofferMs must be a positive finite number, got ${reofferMs}`);
    }
    this.#link = link;
    this.#generation++;
    this.#offered = new Set();
  }

  send(frame: Buffer): void {
    this.#link?.write(frame);
  }

  writable(): boolean {
    return this.#link?.writable() ?? false;
  }

  offered(id: string): void {
    if (this.#link !== undefined) this.#offered.add(id);
  }

  wasOffered(id: string): boolean {
    return this.#offered.has(id);
  }

  awaiting(): void {
    this.#link?.awaiting?.();
  }

  progressed(stillAwaiting: boolean): void {
    this.#link?.progressed?.(stillAwaiting);
  }
}
