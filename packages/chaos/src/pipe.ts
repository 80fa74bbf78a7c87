import type { Socket } from 'node:net';
import { createStage, type Outlet, type Stage, type StageContext } from './stages.js';
import type { Flow, Toxic } from './toxic.js';

/** What a pipe needs from its link. */
export interface PipeHost {
  /** The destination wrote `bytes` more bytes. */
  forwarded(flow: Flow, bytes: number): void;
  /** A toxic discarded `bytes` bytes read from the source. */
  dropped(flow: Flow, bytes: number): void;
  /** End-of-stream reached the destination (FIN sent); close the link behind it if asked. */
  ended(flow: Flow, closeLink: boolean): void;
  close(): void;
  reset(): void;
}

interface Entry {
  readonly id: string;
  stage: Stage;
}

/**
 * One direction of a link: bytes read from `source` go through the stages of the toxics on this
 * direction, in the order the toxics were added, and are written to `destination`.
 *
 * Backpressure: `held` counts bytes read but not yet written (inside stages). Reading pauses while
 * `held` is over the high-water mark or the destination has not drained, so neither a slow peer nor
 * a slow toxic makes the proxy buffer without bound: at most about twice the mark per direction
 * (what the stages hold, plus what they released into the socket at once).
 */
export class Pipe {
  readonly flow: Flow;
  #entries: Entry[] = [];
  #held = 0;
  #needDrain = false;
  #started = false;
  #closed = false;
  #ended = false;
  #closeLinkOnEnd = false;
  #paused = false;
  readonly #source: Socket;
  readonly #destination: Socket;
  readonly #highWaterMark: number;
  readonly #host: PipeHost;

  constructor(
    flow: Flow,
    source: Socket,
    destination: Socket,
    highWaterMark: number,
    host: PipeHost,
  ) {
    this.flow = flow;
    this.#source = source;
    this.#destination = destination;
    this.#highWaterMark = highWaterMark;
    this.#host = host;
  }

  /** Bytes read from the source and not yet written to the destination or dropped. */
  get held(): number {
    return this.#held;
  }

  /** Starts reading the source (once both sockets exist and are connected). */
  start(): void {
    this.#started = true;
    this.#source.on('data', this.#onData);
    this.#source.on('end', this.#onEnd);
    // An accepted socket starts paused (pauseOnConnect) and a 'data' listener does not resume it.
    this.#paused = this.#source.readableFlowing !== true;
    this.#updateFlow();
  }

  /** Inserts a toxic at the end of this direction's chain. */
  add(toxic: Toxic, random: () => number): void {
    const entry: Entry = { id: toxic.id, stage: undefined as unknown as Stage };
    const out: Outlet = {
      push: (chunk) => this.#forward(entry, chunk),
      end: () => this.#forwardEnd(entry),
    };
    const ctx: StageContext = {
      out,
      random,
      drop: (bytes) => this.#drop(bytes),
      closeAfterEnd: () => {
        this.#closeLinkOnEnd = true;
      },
      close: () => this.#host.close(),
      reset: () => this.#host.reset(),
    };
    entry.stage = createStage(toxic, ctx);
    this.#entries.push(entry);
  }

  /** Takes a toxic out: what it holds moves on at once, what it dropped stays dropped. */
  remove(id: string): boolean {
    const entry = this.#entries.find((e) => e.id === id);
    if (entry === undefined) return false;
    entry.stage.flush();
    entry.stage.dispose();
    const index = this.#entries.indexOf(entry);
    if (index >= 0) this.#entries.splice(index, 1);
    return true;
  }

  /** Stops forwarding for good: stages are disposed, anything still read is discarded. */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#entries) entry.stage.dispose();
    this.#entries = [];
    this.#held = 0;
    this.#updateFlow();
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closed) return;
    this.#held += chunk.length;
    const first = this.#entries[0];
    if (first === undefined) this.#write(chunk);
    else first.stage.push(chunk);
    this.#updateFlow();
  };

  readonly #onEnd = (): void => {
    if (this.#closed) return;
    const first = this.#entries[0];
    if (first === undefined) this.#writeEnd();
    else first.stage.end();
  };

  readonly #onDrain = (): void => {
    this.#needDrain = false;
    this.#updateFlow();
  };

  #next(from: Entry): Entry | undefined | null {
    const index = this.#entries.indexOf(from);
    if (index < 0) return null; // a stage that is gone: nowhere to go
    return this.#entries[index + 1];
  }

  #forward(from: Entry, chunk: Buffer): void {
    if (this.#closed) return;
    const next = this.#next(from);
    if (next === null) this.#drop(chunk.length);
    else if (next === undefined) this.#write(chunk);
    else next.stage.push(chunk);
  }

  #forwardEnd(from: Entry): void {
    if (this.#closed) return;
    const next = this.#next(from);
    if (next === undefined) this.#writeEnd();
    else if (next !== null) next.stage.end();
  }

  #drop(bytes: number): void {
    this.#held -= bytes;
    this.#host.dropped(this.flow, bytes);
    this.#updateFlow();
  }

  #write(chunk: Buffer): void {
    this.#held -= chunk.length;
    const destination = this.#destination;
    if (this.#ended || !destination.writable) {
      this.#updateFlow();
      return;
    }
    this.#host.forwarded(this.flow, chunk.length);
    if (!destination.write(chunk) && !this.#needDrain) {
      this.#needDrain = true;
      destination.once('drain', this.#onDrain);
    }
    this.#updateFlow();
  }

  #writeEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#destination.writable) this.#destination.end();
    this.#host.ended(this.flow, this.#closeLinkOnEnd);
  }

  #updateFlow(): void {
    const source = this.#source;
    if (!this.#started || source.destroyed) return;
    const flowing = this.#closed || (!this.#needDrain && this.#held < this.#highWaterMark);
    if (flowing && this.#paused) {
      this.#paused = false;
      source.resume();
    } else if (!flowing && !this.#paused) {
      this.#paused = true;
      source.pause();
    }
  }
}
