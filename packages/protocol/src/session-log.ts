import type { OutboundEntry } from './reliable-outbound.js';

/**
 * Where a session's stream positions are made durable, and when. A {@link ReliableLink} records
 * every change through it and waits for `commit` before anything that depends on a record leaves:
 * new DATA only once its sequence numbers are recorded (after a crash the numbering resumes where
 * the peer saw it), an ACK only once the delivered position it carries is recorded (a message
 * acknowledged is never delivered again). In memory (`MEMORY_LOG`) the state is the record and
 * `commit` has nothing to wait for; a journal on disk or a remote store batches the records of a
 * burst into one write and resolves `commit` when it is durable.
 */
export interface SessionLog {
  /** Outbound messages got their sequence numbers and are about to be sent for the first time. */
  sent(entries: readonly OutboundEntry[]): void;
  /** The peer acknowledged every message up to `seq`. */
  acked(seq: number): void;
  /** Inbound messages up to `seq` were handed to the application. */
  delivered(seq: number): void;
  /**
   * Makes what was recorded durable. Returns undefined when it already is, or a promise that
   * settles when it is; a rejected promise ends the link (the store is unavailable).
   */
  commit(): Promise<void> | undefined;
}

/** The log of a session held in memory: nothing to record, nothing to wait for. */
export const MEMORY_LOG: SessionLog = {
  sent() {},
  acked() {},
  delivered() {},
  commit() {
    return undefined;
  },
};
