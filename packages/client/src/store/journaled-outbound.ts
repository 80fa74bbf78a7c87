import { ProtocolError, ReliableOutbound } from '@tether/protocol';
import type { PendingSend } from '../outbox.js';
import type { JournalWriter } from './journal-writer.js';
import { QUEUED_OVERHEAD, type RecordArena } from './record-codec.js';

// A snapshot's records besides the entries: header, client id, base, one SENT.
const SNAPSHOT_OVERHEAD = 512;

/**
 * The client's outbound stream, journaled: every change of its state is recorded at the moment
 * it happens, in the same order: a message queued (with its payload), seqs given to the oldest
 * queued messages, an acknowledgement, queued messages taken out (TTL, overflow, withdrawn). So
 * the journal replays to exactly this state, and a removal is always recorded before the seq
 * assignment that follows it. Messages failed at `close()` stay in the journal: the next client
 * on the store sends them.
 */
export class JournaledOutbound extends ReliableOutbound<PendingSend> {
  readonly #wallExpiry: (expiresAt: number) => number;
  #writer: JournalWriter | undefined;
  #nextId: number;

  /**
   * @param acked highest seq acknowledged (seqs continue after it)
   * @param nextId the journal id the next message gets
   * @param wallExpiry a message's expiry as wall-clock ms (0 for none), for the journal
   */
  constructor(acked: number, nextId: number, wallExpiry: (expiresAt: number) => number) {
    super(acked);
    this.#nextId = nextId;
    this.#wallExpiry = wallExpiry;
  }

  /**
   * Puts back messages restored from the journal, without recording them again: `inFlight` get
   * the seqs after the acknowledged base in order (their journaled seqs), `queued` wait. Call
   * before `attach`.
   */
  restore(inFlight: readonly PendingSend[], queued: readonly PendingSend[]): void {
    for (const entry of inFlight) super.enqueue(entry);
    super.takeSendable();
    for (const entry of queued) super.enqueue(entry);
  }

  /** Starts recording into `writer`'s journal. */
  attach(writer: JournalWriter): void {
    this.#writer = writer;
  }

  /** Bytes a snapshot of this state takes, about (for the compaction trigger). */
  get liveBytes(): number {
    return this.bytes + this.count * QUEUED_OVERHEAD + SNAPSHOT_OVERHEAD;
  }

  /** Encodes the whole state as a journal: header, client, base, in-flight, queued. */
  snapshot(arena: RecordArena, clientId: string, requestIds: number, diverged: boolean): void {
    arena.header();
    arena.client(clientId);
    arena.base(this.acked, this.#nextId, requestIds);
    // restart() hands out a copy of the messages in flight and changes nothing.
    const inFlight = this.restart();
    for (const entry of inFlight) this.#record(arena, entry);
    const first = inFlight[0];
    const last = inFlight[inFlight.length - 1];
    if (first !== undefined && last !== undefined) {
      arena.sent(first.journalId, last.journalId, this.sent);
    }
    for (const entry of this.queued()) this.#record(arena, entry);
    if (diverged) arena.diverged();
  }

  override enqueue(entry: PendingSend): PendingSend {
    const writer = this.#writer;
    if (writer !== undefined) {
      entry.journalId = this.#nextId++;
      this.#record(writer.arena, entry);
      writer.touch();
    }
    return super.enqueue(entry);
  }

  override takeSendable(maxInFlightBytes?: number): PendingSend[] {
    const taken = super.takeSendable(maxInFlightBytes);
    const writer = this.#writer;
    const first = taken[0];
    const last = taken[taken.length - 1];
    if (writer !== undefined && first !== undefined && last !== undefined) {
      writer.arena.sent(first.journalId, last.journalId, last.seq);
      writer.touch();
    }
    return taken;
  }

  override ack(seq: number): PendingSend[] | ProtocolError {
    const released = super.ack(seq);
    const writer = this.#writer;
    if (writer !== undefined && !(released instanceof ProtocolError) && released.length > 0) {
      writer.arena.acked(seq);
      writer.touch();
    }
    return released;
  }

  override dropQueued(predicate: (entry: PendingSend) => boolean): PendingSend[] {
    const dropped = super.dropQueued(predicate);
    if (dropped.length > 0) this.#removed(dropped.map((entry) => entry.journalId));
    return dropped;
  }

  override dropOldestQueued(): PendingSend | undefined {
    const dropped = super.dropOldestQueued();
    if (dropped !== undefined) this.#removed([dropped.journalId]);
    return dropped;
  }

  #removed(ids: number[]): void {
    const writer = this.#writer;
    if (writer === undefined) return;
    writer.arena.removed(ids);
    writer.touch();
  }

  #record(arena: RecordArena, entry: PendingSend): void {
    const expiresAt = this.#wallExpiry(entry.expiresAt);
    arena.queued(entry.journalId, entry.flags, entry.requestId, expiresAt, entry.payload);
  }
}
