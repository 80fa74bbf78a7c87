import { FILE_CHUNK_PREFIX, FileChunkBuffer, type FileSendState } from '@tether/protocol';
import type { Source } from './source.js';

// File bytes read ahead of the link, per transfer: while the socket drains one chunk the next
// ones are read, so a drain finds a chunk ready and the socket never waits for the disk. One
// read at a time per transfer: the disk outruns the link, and the thread pool stays free for
// other work (a stat, the receiving side's writes).
const READ_AHEAD_BYTES = 1024 * 1024;
// And at most this many chunks (small chunks when the peer's frame limit is small).
const READ_AHEAD_CHUNKS = 8;

/** A chunk polled from the state machine: being read, then ready to send. */
interface ChunkRead {
  readonly state: FileSendState;
  readonly epoch: number;
  readonly offset: number;
  readonly length: number;
  /** The sealed FILE_CHUNK once its bytes are read. */
  frame: Buffer | undefined;
}

/** What {@link ReadAhead.next} has ready. */
export type ReadyItem =
  | { kind: 'chunk'; frame: Buffer; offset: number; length: number }
  | { kind: 'end' };

/**
 * The chunks of one outgoing transfer between its state machine and the link: polled in offset
 * order, read straight into their FILE_CHUNK frames one read at a time, fed into the file's hash
 * in order, and handed out from the front. A rewind or a new offer makes the chunks polled before
 * it stale (their epoch or state differ): they are dropped, never sent.
 */
export class ReadAhead {
  readonly #id: string;
  readonly #file: Source;
  /** The offer's state machine while the transfer sends; undefined otherwise. */
  readonly #current: () => FileSendState | undefined;
  /** A read finished: the front chunk or FILE_END may be ready to send. */
  readonly #ready: () => void;
  /** A read of a chunk still wanted failed. */
  readonly #failed: (error: unknown) => void;
  #reads: ChunkRead[] = [];
  #bytes = 0;
  #reading = false;
  /** FILE_END is due after the chunks in `#reads`: the epoch it was polled in, else -1. */
  #endEpoch = -1;

  constructor(
    id: string,
    file: Source,
    current: () => FileSendState | undefined,
    ready: () => void,
    failed: (error: unknown) => void,
  ) {
    this.#id = id;
    this.#file = file;
    this.#current = current;
    this.#ready = ready;
    this.#failed = failed;
  }

  /** Drops every chunk read or being read, and a pending FILE_END. */
  clear(): void {
    this.#reads = [];
    this.#bytes = 0;
    this.#endEpoch = -1;
  }

  /**
   * Polls the next chunk of the current offer and starts its read, unless a read is in flight or
   * enough is read already; each finished read starts the next.
   */
  fill(): void {
    const state = this.#current();
    if (state === undefined || this.#reading) return;
    this.#dropStale(state);
    if (this.#bytes >= READ_AHEAD_BYTES || this.#reads.length >= READ_AHEAD_CHUNKS) return;
    const action = state.poll();
    if (action === undefined) return;
    if (action.kind === 'end') {
      this.#endEpoch = state.epoch;
      return;
    }
    const read: ChunkRead = {
      state,
      epoch: action.epoch,
      offset: action.offset,
      length: action.length,
      frame: undefined,
    };
    this.#reads.push(read);
    this.#bytes += read.length;
    this.#reading = true;
    void this.#read(read);
  }

  /**
   * The next thing to send for `state`: the front chunk once read, or FILE_END once every chunk
   * before it is out. Undefined while the front chunk is being read (or nothing is due).
   */
  peek(state: FileSendState): ReadyItem | undefined {
    this.#dropStale(state);
    const next = this.#reads[0];
    if (next === undefined) return this.#endEpoch === state.epoch ? { kind: 'end' } : undefined;
    if (next.frame === undefined) return undefined;
    return { kind: 'chunk', frame: next.frame, offset: next.offset, length: next.length };
  }

  /** The item `peek` returned went out. */
  shift(item: ReadyItem): void {
    if (item.kind === 'end') {
      this.#endEpoch = -1;
      return;
    }
    this.#reads.shift();
    this.#bytes -= item.length;
  }

  /** Reads one chunk straight into its frame, then the next; the front chunk's arrival pumps. */
  async #read(read: ChunkRead): Promise<void> {
    const chunk = new FileChunkBuffer(read.length);
    try {
      await this.#file.read(chunk.data, read.offset);
    } catch (error) {
      this.#reading = false;
      if (this.#reads.includes(read)) this.#failed(error);
      else this.fill();
      return;
    }
    this.#reading = false;
    // A rewind, a reconnect or the end of the transfer dropped it meanwhile.
    if (this.#reads.includes(read)) {
      read.frame = chunk.seal(this.#id, read.offset);
      this.#hashReads();
    }
    this.fill();
    if (this.#reads[0]?.frame !== undefined || this.#endEpoch !== -1) this.#ready();
  }

  /**
   * Feeds the chunks read so far into the file's hash, in offset order, while the link drains
   * rather than between a drain and the next write.
   */
  #hashReads(): void {
    for (const read of this.#reads) {
      if (read.frame === undefined) return;
      if (!this.#file.feed(read.offset, read.frame.subarray(FILE_CHUNK_PREFIX))) return;
    }
  }

  /** Forgets chunks polled before a rewind or on an earlier connection (epoch or offer changed). */
  #dropStale(state: FileSendState): void {
    const first = this.#reads[0];
    if (first === undefined || (first.state === state && first.epoch === state.epoch)) return;
    this.#reads = this.#reads.filter((r) => r.state === state && r.epoch === state.epoch);
    this.#bytes = this.#reads.reduce((sum, r) => sum + r.length, 0);
  }
}
