/**
 * Bytes a link may hold unsent before it stops taking file chunks (`TransferLink.writable`).
 * Small, so a message queued behind file chunks waits for at most this much to drain.
 */
export const TRANSFER_LOW_WATER: number = 256 * 1024;

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
  /** Queues a frame to the peer; dropped while detached. */
  send(frame: Buffer): void;
  /** Whether the link takes more bulk data now. */
  writable(): boolean;
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
  /** File data went out that waits for the receiver's progress (the link's liveness clock). */
  awaiting?(): void;
  /** A transfer made progress; `stillAwaiting` says whether file data still waits for some. */
  progressed?(stillAwaiting: boolean): void;
}

/** A {@link Port} over whichever link is attached. */
export class LinkPort implements Port {
  #link: TransferLink | undefined;
  #generation = 0;

  get attached(): boolean {
    return this.#link !== undefined;
  }

  get generation(): number {
    return this.#generation;
  }

  get maxFrame(): number {
    return this.#link?.maxFrame ?? 0;
  }

  /** Sets (or clears) the link; either way a new generation starts. */
  set(link: TransferLink | undefined): void {
    this.#link = link;
    this.#generation++;
  }

  send(frame: Buffer): void {
    this.#link?.write(frame);
  }

  writable(): boolean {
    return this.#link?.writable() ?? false;
  }
}
