import { encodeFileStatus } from '@tether/protocol';
import type { Incoming } from './incoming.js';
import type { Port } from './port.js';

// A transfer's FILE_STATUS goes out once it committed this many bytes more than it last reported
// (or at once for a rewind or the end of the file); a smaller advance goes out after
// STATUS_DELAY_MS. 1 MiB is an eighth of the default window: the sender never waits on it.
const STATUS_STEP = 1024 * 1024;
const STATUS_DELAY_MS = 5;

/**
 * Sends the receiver's FILE_STATUS frames, coalesced: at most one per transfer per event-loop
 * turn however many chunks it wrote, and smaller advances batched (see `FileReceiveState.
 * statusDue`), so a fast transfer costs a status per STATUS_STEP bytes rather than one per
 * write, and a sender whose window is smaller than a step still hears of every advance within
 * a few milliseconds. It also sends the rewind a gap owes (see `Incoming.gapRewind`).
 */
export class StatusReporter {
  readonly #port: Port;
  readonly #dirty = new Set<Incoming>();
  #flush: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(port: Port) {
    this.#port = port;
  }

  /** `incoming` wrote bytes, discarded a chunk or saw a gap: a status may be due. */
  mark(incoming: Incoming): void {
    if (incoming.stopped) return;
    this.#dirty.add(incoming);
    this.#flush ??= setImmediate(this.#send);
  }

  /** `incoming` stopped: it reports nothing more. */
  forget(incoming: Incoming): void {
    this.#dirty.delete(incoming);
  }

  /** Stops the timers; nothing more is sent. */
  close(): void {
    if (this.#flush !== undefined) clearImmediate(this.#flush);
    this.#flush = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dirty.clear();
  }

  /**
   * Sends the statuses that are due; with `all`, every advance owed. A rewind for lost chunks
   * goes out once the writes before it settled, after the status that reports the offset.
   */
  #send = (all = false): void => {
    this.#flush = undefined;
    for (const dirty of this.#dirty) {
      if (dirty.stopped || this.#port.generation !== dirty.generation) {
        this.#dirty.delete(dirty);
        continue;
      }
      const { state } = dirty;
      // A gap rewind waits for the writes in flight (their end marks the transfer again).
      const gap = dirty.gapRewind && state.pending === 0;
      if (!all && !gap && !state.statusDue(STATUS_STEP)) continue;
      this.#dirty.delete(dirty);
      const offsets = state.takeStatus();
      // takeStatus reported the committed offset if it had moved: the same offset again rewinds.
      if (gap) {
        dirty.gapRewind = false;
        offsets.push(state.committed);
      }
      for (const offset of offsets) {
        this.#port.send(encodeFileStatus({ id: dirty.id, offset }));
      }
    }
    if (this.#dirty.size > 0) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#send(true);
      }, STATUS_DELAY_MS);
    } else if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  };
}
