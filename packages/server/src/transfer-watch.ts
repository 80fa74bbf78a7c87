import {
  type FileFrame,
  TransferEngine,
  type TransferEngineOptions,
  type TransferLink,
} from '@tether/files';
import {
  FRAME_HEADER_SIZE,
  FrameType,
  type ProtocolError,
  type TetherError,
} from '@tether/protocol';

/** Which way a file moves: `in` from the client (an upload), `out` to it (`peer.sendFile`). */
export const TransferDirection = { IN: 'in', OUT: 'out' } as const;
export type TransferDirection = (typeof TransferDirection)[keyof typeof TransferDirection];

/** Where a transfer stands, in a {@link TransferUpdate}. */
export const TransferState = {
  /** The receiver accepted the offer (again, after a reconnect): `bytes` is where it resumes. */
  STARTED: 'started',
  /** The receiver committed more bytes. */
  PROGRESS: 'progress',
  /** The receiver verified and stored the file. */
  COMPLETED: 'completed',
  /** Refused or failed (`code` says why), or the session ended with it unfinished. */
  FAILED: 'failed',
  /** One side abandoned it. */
  CANCELLED: 'cancelled',
} as const;
export type TransferState = (typeof TransferState)[keyof typeof TransferState];

/** Payload of the server's `transfer` event: one step of a file transfer of a session. */
export interface TransferUpdate {
  /** Transfer id (32 hex characters). */
  id: string;
  direction: TransferDirection;
  /** The name the file was offered under (a client chooses it: escape it before display). */
  name: string;
  /** File size in bytes. */
  size: number;
  /** Bytes the receiver has committed (stored durably). */
  bytes: number;
  state: TransferState;
  /** With `failed`: the receiver's error code, or the code that ended the session. */
  code?: string;
}

// Offers from the client waiting for the receiver's answer: a client flooding offers cannot make
// the watch hold more names than this (the oldest is forgotten; its answer is then not reported).
const MAX_PENDING_OFFERS = 64;

interface Offer {
  name: string;
  size: number;
}

/**
 * The server's transfer engine, reporting each transfer's steps. It sees the file frames both
 * ways (what the engine handles, what it writes) and reads only the small control frames: offers,
 * acceptances, committed offsets and outcomes; the chunks pass untouched.
 */
export class WatchedTransferEngine extends TransferEngine {
  readonly #report: (update: TransferUpdate) => void;
  /** Offers made and not yet accepted, by direction and id. */
  readonly #offered = new Map<string, Offer>();
  /** Transfers accepted and not finished, by direction and id. */
  readonly #running = new Map<string, TransferUpdate>();
  /**
   * Transfers reported `started` on the current connection: a repeated offer's second
   * FILE_ACCEPT is no new step (a resume on the next connection is).
   */
  readonly #startedOnLink = new Set<string>();
  #pendingIn = 0;

  constructor(options: TransferEngineOptions, report: (update: TransferUpdate) => void) {
    super(options);
    this.#report = report;
  }

  override attach(link: TransferLink): void {
    const write = (frame: Buffer): void => {
      this.#written(frame);
      link.write(frame);
    };
    super.attach({ ...link, write });
  }

  override detach(): void {
    super.detach();
    this.#startedOnLink.clear();
    // The client offers its uploads again on its next connection.
    for (const key of this.#offered.keys()) {
      if (key.startsWith(TransferDirection.IN)) this.#offered.delete(key);
    }
    this.#pendingIn = 0;
  }

  override handle(frame: FileFrame): ProtocolError | undefined {
    const refused = super.handle(frame);
    if (refused !== undefined) return refused;
    this.#watch(frame);
    return undefined;
  }

  #watch(frame: FileFrame): void {
    const { IN, OUT } = TransferDirection;
    switch (frame.type) {
      case FrameType.FILE_OFFER:
        this.#offer(IN, frame.body.id, frame.body.name, frame.body.size);
        return;
      case FrameType.FILE_ACCEPT:
        this.#accepted(OUT, frame.body.id, frame.body.offset);
        return;
      case FrameType.FILE_STATUS:
        this.#progress(OUT, frame.body.id, frame.body.offset);
        return;
      case FrameType.FILE_COMPLETE:
        this.#end(OUT, frame.body.id, TransferState.COMPLETED);
        return;
      case FrameType.FILE_FAILED:
        this.#end(OUT, frame.body.id, TransferState.FAILED, frame.body.code);
        return;
      case FrameType.FILE_CANCEL:
        if (!this.#end(OUT, frame.body.id, TransferState.CANCELLED)) {
          this.#end(IN, frame.body.id, TransferState.CANCELLED);
        }
        return;
    }
  }

  override async close(error: TetherError): Promise<void> {
    // Unfinished transfers end with the session (uploads keep their partials for a later one).
    for (const key of [...this.#running.keys(), ...this.#offered.keys()]) {
      const [direction, id] = key.split(':') as [TransferDirection, string];
      this.#end(direction, id, TransferState.FAILED, error.code);
    }
    await super.close(error);
  }

  // A frame the engine writes: only the control frames that say where a transfer stands are read.
  #written(frame: Buffer): void {
    const type = frame[4];
    if (type === FrameType.FILE_CHUNK || type === FrameType.FILE_END) return;
    const body = JSON.parse(frame.toString('utf8', FRAME_HEADER_SIZE)) as {
      id: string;
      name: string;
      size: number;
      offset: number;
      code: string;
    };
    const { IN, OUT } = TransferDirection;
    switch (type) {
      case FrameType.FILE_OFFER:
        this.#offer(OUT, body.id, body.name, body.size);
        return;
      case FrameType.FILE_ACCEPT:
        this.#accepted(IN, body.id, body.offset);
        return;
      case FrameType.FILE_STATUS:
        this.#progress(IN, body.id, body.offset);
        return;
      case FrameType.FILE_COMPLETE:
        this.#end(IN, body.id, TransferState.COMPLETED);
        return;
      case FrameType.FILE_FAILED:
        this.#end(IN, body.id, TransferState.FAILED, body.code);
        return;
      case FrameType.FILE_CANCEL:
        this.#end(OUT, body.id, TransferState.CANCELLED);
        return;
    }
  }

  #offer(direction: TransferDirection, id: string, name: string, size: number): void {
    const key = `${direction}:${id}`;
    if (this.#running.has(key)) {
      // Offered again after a reconnect: the running entry keeps its name.
      return;
    }
    if (direction === TransferDirection.IN && !this.#offered.has(key)) {
      if (this.#pendingIn >= MAX_PENDING_OFFERS) {
        for (const oldest of this.#offered.keys()) {
          if (!oldest.startsWith(TransferDirection.IN)) continue;
          this.#offered.delete(oldest);
          this.#pendingIn--;
          break;
        }
      }
      this.#pendingIn++;
    }
    this.#offered.set(key, { name, size });
  }

  #accepted(direction: TransferDirection, id: string, offset: number): void {
    const key = `${direction}:${id}`;
    const running = this.#running.get(key);
    if (running !== undefined) {
      if (this.#startedOnLink.has(key) && running.bytes === offset) return;
      this.#startedOnLink.add(key);
      running.bytes = offset;
      running.state = TransferState.STARTED;
      this.#report({ ...running });
      return;
    }
    const offer = this.#take(key);
    if (offer === undefined) return;
    const update: TransferUpdate = {
      id,
      direction,
      name: offer.name,
      size: offer.size,
      bytes: offset,
      state: TransferState.STARTED,
    };
    this.#running.set(key, update);
    this.#startedOnLink.add(key);
    this.#report({ ...update });
  }

  #progress(direction: TransferDirection, id: string, offset: number): void {
    const running = this.#running.get(`${direction}:${id}`);
    if (running === undefined || offset <= running.bytes) return;
    running.bytes = offset;
    running.state = TransferState.PROGRESS;
    this.#report({ ...running });
  }

  // Returns false when no such transfer was known.
  #end(direction: TransferDirection, id: string, state: TransferState, code?: string): boolean {
    const key = `${direction}:${id}`;
    let update = this.#running.get(key);
    if (update !== undefined) {
      this.#running.delete(key);
      this.#startedOnLink.delete(key);
      // The last FILE_STATUS may not have come before FILE_COMPLETE.
      if (state === TransferState.COMPLETED) update.bytes = update.size;
    } else {
      // Answered without an acceptance: refused, or stored by an earlier connection.
      const offer = this.#take(key);
      if (offer === undefined) return false;
      update = { id, direction, name: offer.name, size: offer.size, bytes: 0, state };
    }
    update.state = state;
    if (code !== undefined) update.code = code;
    this.#report(update);
    return true;
  }

  #take(key: string): Offer | undefined {
    const offer = this.#offered.get(key);
    if (offer === undefined) return undefined;
    this.#offered.delete(key);
    if (key.startsWith(TransferDirection.IN)) this.#pendingIn--;
    return offer;
  }
}
