import { type FileEngine, isFileFrame, TRANSFER_LOW_WATER, type TransferLink } from '@tether/files';
import {
  ErrorCode as Code,
  type ErrorCode,
  encodeError,
  encodeGoaway,
  type Frame,
  FrameDecoder,
  type HeartbeatOptions,
  type OutboundEntry,
  ProtocolError,
  ReliableLink,
  TetherError,
} from '@tether/protocol';
import type { Deadlines, Scheduled } from './deadlines.js';
import type { Scheduler } from './scheduler.js';
import type { Session } from './session.js';
import type { Transport } from './transport.js';

/**
 * What a connection asks of the side that owns it (the server, or one attempt of the client).
 * Every call names the connection, so one owner serves many connections without a closure each.
 */
export interface ConnectionOwner<E extends OutboundEntry> {
  /** A frame arrived before the session is open: the side's handshake. */
  handshakeFrame(connection: Connection<E>, frame: Frame): void;
  /** The handshake deadline passed before the session opened. */
  handshakeExpired(connection: Connection<E>): void;
  /**
   * A frame of an open session that the core does not handle (ERROR, GOAWAY ...). Returns false
   * when the frame is not allowed here: the connection then fails with UNEXPECTED_FRAME.
   */
  control(connection: Connection<E>, frame: Frame): boolean;
  /** The connection ended, once; `silentMs` is set when the heartbeat found the link dead. */
  closed(connection: Connection<E>, error: TetherError, silentMs: number | undefined): void;
  /** A transport error, as the side reports it (a TLS alert is not a lost connection). */
  transportError?(connection: Connection<E>, error: Error): TetherError;
  /** Bytes were handed to the transport (the server enforces its per-peer cap here). */
  flushed?(connection: Connection<E>): void;
  /** The bytes this connection holds in incomplete frames changed by `delta`. */
  buffered?(connection: Connection<E>, delta: number): void;
}

/**
 * Settings of a connection, from its start. Nothing in it is the connection's own: a server
 * passes one object to all its connections (an object each cost some 100 bytes per connection).
 */
export interface ConnectionOptions<E extends OutboundEntry> {
  scheduler: Scheduler;
  /** Where the connection keeps its one deadline (a server shares one heap by all). */
  deadlines: Deadlines<Connection<E>>;
  /** Decoder limits until the session is open. */
  maxFrame: number;
  maxControl?: number;
  /** The handshake must be done within this long of the connection's start; none when undefined. */
  handshakeTimeoutMs?: number;
  /** A frame must arrive whole within this long of its first byte (slowloris); none when undefined. */
  frameTimeoutMs?: number;
  /**
   * Bytes waiting to be written beyond the session's messages in flight (replies: PONG, ACK,
   * FILE_STATUS ...). Past it the peer is not read until the transport drains: a peer that asks
   * for replies and does not read them holds at most this much. Infinity turns it off.
   */
  replyBacklogLimit: number;
}

/** Settings of the open session on this connection. */
export interface OpenOptions {
  heartbeat: HeartbeatOptions;
  maxInFlightBytes: number;
  /** Our frame limit from now on. */
  maxFrame: number;
  /** The peer's frame limit: what we send (file chunks) stays within it. */
  peerMaxFrame: number;
  /** The code of a link found dead: EVICTED on the server, HEARTBEAT_TIMEOUT on the client. */
  deadCode: ErrorCode;
  /** Also PING every this many ms for an RTT sample, even when the heartbeat would not. */
  rttPingIntervalMs?: number;
}

const Phase = { HANDSHAKE: 'handshake', OPEN: 'open', CLOSED: 'closed' } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

// Why the transport is paused (a bit each): reading resumes once no reason is left.
const PauseReason = {
  /** The owner's budget for incomplete inbound frames is spent. */
  INBOUND_BUDGET: 1,
  /** The peer does not read what it is sent. */
  OUTBOUND_BACKLOG: 2,
  /** This connection read its share of the current event-loop turn. */
  TURN_BUDGET: 4,
  /** The session log holds what it can until its store catches up. */
  SESSION_LOG: 8,
} as const;
type PauseReason = (typeof PauseReason)[keyof typeof PauseReason];

// A peer that never reads must not hold a closed connection's transport open.
const LINGER_MS = 1000;

// What one connection may take in one turn of the event loop: past both limits, it waits for the
// next turn. A transport may hand over up to 2 MiB in one turn (32 reads of 64 KiB), and a peer
// that floods tiny frames (messages, PONGs) would otherwise hold the loop while every other
// connection waits: 256 KiB of them is some 10,000 frames. Large frames cost little per byte
// (their pieces are kept as views, each copied once), so a connection whose reads completed
// fewer than TURN_BUDGET_FRAMES frames reads on: pausing every 256 KiB cost a 1 MiB message four
// pauses and resumes of the socket, and a quarter of the receiver's throughput.
const TURN_BUDGET_BYTES = 256 * 1024;
const TURN_BUDGET_FRAMES = 64;

// Bytes of queued frames handed to the transport in one write while it takes them at once.
const WRITE_SLICE_BYTES = 192 * 1024;

// The transport's listeners are shared by every connection (each finds its own on the
// transport): an idle connection should cost as little memory as possible, and each closure
// would cost some.
const kConnection = Symbol('tether.connection');
type OwnedTransport = Transport & { [kConnection]: Connection<OutboundEntry> };

function onTransportData(this: Transport, chunk: Uint8Array): void {
  (this as OwnedTransport)[kConnection].received(chunk);
}

function onDecodedFrame(this: Connection<OutboundEntry>, frame: Frame): void {
  this.decoded(frame);
}

function onTransportEnd(this: Transport): void {
  (this as OwnedTransport)[kConnection].transportEnded();
}

function onTransportError(this: Transport, error: Error): void {
  (this as OwnedTransport)[kConnection].transportFailed(error);
}

function onTransportClose(this: Transport): void {
  (this as OwnedTransport)[kConnection].destroy(
    new TetherError(Code.CONNECTION_LOST, 'connection closed'),
  );
}

function onTransportDrain(this: Transport): void {
  (this as OwnedTransport)[kConnection].transportDrained();
}

// The event-loop turns of each scheduler, and the connections whose batched writes wait for the
// end of the current one: one deferred callback per turn in which anything was read or queued
// counts the turn and writes every waiting batch. One callback per connection per read would cost
// an Immediate per PONG, and a closure each some 150 bytes of every idle connection.
class Turns {
  /** Turns ended so far (in which something was read or queued). */
  count = 0;
  #ending = false;
  #waiting: Connection<OutboundEntry>[] = [];
  readonly #scheduler: Scheduler;

  constructor(scheduler: Scheduler) {
    this.#scheduler = scheduler;
  }

  /** The number of the current turn; it ends once this turn's I/O callbacks have run. */
  current(): number {
    this.#end();
    return this.count;
  }

  /** `connection` writes its batch at the end of this turn. */
  flushAtEnd(connection: Connection<OutboundEntry>): void {
    this.#waiting.push(connection);
    this.#end();
  }

  #end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#scheduler.defer(this.#ended);
  }

  // Connections that queue again while this runs wait for the end of the next turn.
  readonly #ended = (): void => {
    this.#ending = false;
    this.count++;
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    this.#waiting = [];
    for (const connection of waiting) {
      try {
        connection.flushNow();
      } catch (error) {
        // One connection's failure must not cost the others their write; it is still reported.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  };
}

const turnsOf = new WeakMap<Scheduler, Turns>();

function turns(scheduler: Scheduler): Turns {
  let made = turnsOf.get(scheduler);
  if (made === undefined) {
    made = new Turns(scheduler);
    turnsOf.set(scheduler, made);
  }
  return made;
}

/**
 * One connection of a session, the same on both sides. It owns the transport's listeners and
 * the frame decoder; until the handshake opens the session it hands every frame to its owner's
 * handshake; then it runs the reliable link over the session (DATA, ACK, PING/PONG), its batched
 * writes, the heartbeat (dead-link detection, RTT probes), and routes file frames to the
 * session's transfer engine. It enforces the frame deadline and the reply backlog, and ends once.
 */
export class Connection<E extends OutboundEntry> implements Scheduled {
  /** @internal Bookkeeping of the {@link Deadlines} heap. */
  deadlineSlot = -1;
  /** @internal When this connection's next deadline is due. */
  deadlineAt = 0;
  readonly transport: Transport;
  readonly remoteAddress: string;
  readonly #owner: ConnectionOwner<E>;
  readonly #options: ConnectionOptions<E>;
  readonly #turns: Turns;
  readonly #decoder: FrameDecoder;
  #phase: Phase = Phase.HANDSHAKE;
  #session: Session<E> | undefined;
  #link: ReliableLink<E> | undefined;
  #open: OpenOptions | undefined;
  #flushQueued = false;
  /** PauseReason bits: the transport is paused while any is set. */
  #pausedFor = 0;
  /** Bytes held for an incomplete frame (decoder and unread transport data). */
  #buffered = 0;
  /** Bytes read in the event-loop turn `#turnAt` (see {@link Turns}). */
  #turnBytes = 0;
  /** Frames decoded in the turn `#turnAt`. */
  #turnFrames = 0;
  #turnAt = -1;
  /** The time of the read being handled; NaN between reads. */
  #readAt = Number.NaN;
  /** Frames decoded so far: tells the frame deadline that a frame completed. */
  #frames = 0;
  #handshakeAt: number;
  #frameDeadlineAt = Number.POSITIVE_INFINITY;
  #heartbeatAt = Number.POSITIVE_INFINITY;
  #rttPingAt = Number.POSITIVE_INFINITY;

  /** `remoteAddress`: how the remote end is named in errors and stats. */
  constructor(
    transport: Transport,
    owner: ConnectionOwner<E>,
    options: ConnectionOptions<E>,
    remoteAddress: string,
  ) {
    this.transport = transport;
    this.remoteAddress = remoteAddress;
    this.#owner = owner;
    this.#options = options;
    this.#turns = turns(options.scheduler);
    this.#decoder = new FrameDecoder({
      maxFrame: options.maxFrame,
      ...(options.maxControl === undefined ? {} : { maxControl: options.maxControl }),
    });
    this.#handshakeAt =
      options.handshakeTimeoutMs === undefined
        ? Number.POSITIVE_INFINITY
        : options.scheduler.now() + options.handshakeTimeoutMs;
    (transport as OwnedTransport)[kConnection] = this as unknown as Connection<OutboundEntry>;
    transport.on('data', onTransportData);
    transport.on('end', onTransportEnd);
    transport.on('error', onTransportError);
    transport.on('close', onTransportClose);
    transport.on('drain', onTransportDrain);
    this.#reschedule();
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.#phase === Phase.CLOSED;
  }

  /** Whether the session is open on this connection. */
  get established(): boolean {
    return this.#phase === Phase.OPEN;
  }

  /** The session this connection runs, once open. */
  get session(): Session<E> | undefined {
    return this.#session;
  }

  /** The open link (undefined during the handshake). */
  get link(): ReliableLink<E> | undefined {
    return this.#link;
  }

  /** Bytes waiting in the transport's buffer, plus those not yet handed to it. */
  get backlogBytes(): number {
    return this.transport.writableLength + (this.#link?.batch.bytes ?? 0);
  }

  /** Memory held for an incomplete frame (decoder buffer and unread transport data). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Writes a frame: through the link's batch once open, straight to the transport before. */
  write(frame: Buffer): void {
    if (this.#phase === Phase.CLOSED) return;
    if (this.#link !== undefined) this.#link.write(frame);
    else this.transport.write(frame);
  }

  /**
   * Opens `session` on this connection: `first` (WELCOME, on the server) goes out before
   * anything else, then the messages to send again, then what is queued. Called synchronously
   * from the handshake, before any frame that followed in the same read is handled.
   */
  open(session: Session<E>, options: OpenOptions, resend: readonly E[], first?: Buffer): void {
    if (this.#phase !== Phase.HANDSHAKE) return;
    const now = this.#options.scheduler.now();
    this.#session = session;
    this.#open = options;
    session.connection = this;
    this.#link = new ReliableLink<E>(session, options, session, this, now);
    this.#phase = Phase.OPEN;
    this.#decoder.maxFrame = options.maxFrame;
    this.#handshakeAt = Number.POSITIVE_INFINITY;
    if (first !== undefined) this.#link.write(first);
    this.#link.start(resend, now);
    const files = session.filesIfStarted;
    if (files !== undefined) this.attachFiles(files);
    this.#heartbeatAt =
      now + Math.min(options.heartbeat.pingIntervalMs, options.heartbeat.deadAfterMs);
    if (options.rttPingIntervalMs !== undefined) this.#rttPingAt = this.#heartbeatAt;
    this.#reschedule();
  }

  /**
   * Writes queued messages while the link's window has room. Called while a read is handled
   * (an application that answers a message from its handler), it takes the read's time instead
   * of reading the clock again.
   */
  pump(): void {
    if (this.#phase !== Phase.OPEN) return;
    const readAt = this.#readAt;
    this.#link?.pump(Number.isNaN(readAt) ? this.#options.scheduler.now() : readAt);
  }

  /** @internal Attaches the session's file engine to this connection (at open, or once made). */
  attachFiles(files: FileEngine): void {
    if (this.#phase === Phase.OPEN) files.attach(this.#transferLink());
  }

  /** Tells the peer to reconnect after `retryAfterMs` (server draining). */
  goaway(reason: string, retryAfterMs: number): void {
    this.write(encodeGoaway({ reason, retryAfterMs }));
  }

  /** Sends ERROR with the code (and when to come back, if given) and closes: the peer learns why. */
  fail(error: TetherError, retryAfterMs?: number): void {
    if (this.#phase === Phase.CLOSED) return;
    this.#drainBatch(true);
    const { code, message } = error;
    this.transport.end(
      encodeError(retryAfterMs === undefined ? { code, message } : { code, message, retryAfterMs }),
    );
    this.#linger();
    this.#finish(error, undefined);
  }

  /** Writes what is queued, then closes the sending side (a graceful end). */
  end(error: TetherError): void {
    if (this.#phase === Phase.CLOSED) return;
    this.#drainBatch(true);
    this.transport.end();
    this.#linger();
    this.#finish(error, undefined);
  }

  /** Closes at once, without a word. */
  destroy(error: TetherError, silentMs?: number): void {
    if (this.#phase === Phase.CLOSED) return;
    this.transport.destroy();
    this.#finish(error, silentMs);
  }

  /** Stop reading (the owner's inbound budget is spent); the frame deadline keeps running. */
  pauseReading(): void {
    this.#pause(PauseReason.INBOUND_BUDGET);
  }

  resumeReading(): void {
    this.#resume(PauseReason.INBOUND_BUDGET);
  }

  /**
   * Stop or restart reading for the session log (a remote store holds what it can until it
   * catches up). A reason of its own: the inbound budget cannot lift this pause, nor this one
   * the budget's.
   */
  holdForLog(hold: boolean): void {
    if (hold) this.#pause(PauseReason.SESSION_LOG);
    else this.#resume(PauseReason.SESSION_LOG);
  }

  /** @internal Bytes from the transport. */
  received(chunk: Uint8Array): void {
    if (this.#phase === Phase.CLOSED) return; // the peer may still send after we ended our side
    const now = this.#options.scheduler.now();
    const session = this.#session;
    if (session !== undefined) {
      session.bytesIn += chunk.length;
      session.lastSeen = Date.now();
    }
    this.#link?.heartbeat.inbound(now);
    const framesBefore = this.#frames;
    // Every frame of one read counts as received at the read's time (no closure per read: the
    // decoder calls the shared handler with this connection as `this`).
    this.#readAt = now;
    let error: TetherError | undefined;
    try {
      error = this.#decoder.push(
        chunk,
        onDecodedFrame,
        this as unknown as Connection<OutboundEntry>,
      );
    } finally {
      // Also when a handler threw: a stale read time would stand in for the clock from then on.
      this.#readAt = Number.NaN;
    }
    if (this.closed) return; // a frame ended the connection
    this.#spendTurn(chunk.length, this.#frames - framesBefore);
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    const held = this.#decoder.retainedBytes + this.transport.readableLength;
    this.#trackBuffered(held, this.#frames > framesBefore, now);
    this.#link?.endOfBurst();
    this.#checkReplyBacklog();
  }

  /** @internal The peer closed its sending side: a frame cut short is a protocol error. */
  transportEnded(): void {
    const error = this.#decoder.end();
    this.destroy(error ?? new TetherError(Code.CONNECTION_LOST, 'the peer closed the connection'));
  }

  /** @internal The transport failed. */
  transportFailed(error: Error): void {
    // A transport that knows what went wrong (a WebSocket's text message) says so with a code.
    if (error instanceof TetherError) {
      this.destroy(error);
      return;
    }
    this.destroy(
      this.#owner.transportError?.(this, error) ??
        new TetherError(Code.CONNECTION_LOST, `connection error: ${error.message}`, {
          cause: error,
        }),
    );
  }

  /** @internal The transport drained: bulk senders (file chunks) may continue. */
  transportDrained(): void {
    if (this.#phase === Phase.OPEN && !this.#flushQueued && (this.#link?.batch.bytes ?? 0) > 0) {
      this.flushNow();
    }
    this.#resume(PauseReason.OUTBOUND_BACKLOG);
    if (this.#phase === Phase.OPEN) this.#session?.filesIfStarted?.pump();
  }

  /** @internal The deadline this connection scheduled is due. */
  deadline(dueAt: number): void {
    if (this.#phase === Phase.CLOSED) return;
    const now = this.#options.scheduler.now();
    if (now >= this.#frameDeadlineAt) {
      const timeoutMs = this.#options.frameTimeoutMs;
      this.fail(new TetherError(Code.FRAME_TIMEOUT, `frame incomplete after ${timeoutMs} ms`));
      return;
    }
    if (this.#phase === Phase.HANDSHAKE) {
      if (now >= this.#handshakeAt) {
        this.#handshakeAt = Number.POSITIVE_INFINITY;
        this.#owner.handshakeExpired(this);
      }
    } else if (now >= this.#heartbeatAt) {
      this.#heartbeat(now, Math.min(dueAt, this.#heartbeatAt));
    } else if (now >= this.#rttPingAt) {
      this.#link?.ping(now);
      this.#rttPingAt = now + (this.#open?.rttPingIntervalMs ?? Number.POSITIVE_INFINITY);
    }
    this.#reschedule();
  }

  /**
   * @internal Where this connection's deadline stands now (the {@link Deadlines} schedule asks
   * before the deadline comes due): the heartbeat's check moves later with every inbound byte,
   * and is not rescheduled for each.
   */
  currentDeadline(): number {
    if (this.#phase === Phase.CLOSED) return Number.POSITIVE_INFINITY;
    if (this.#phase === Phase.OPEN) {
      this.#heartbeatAt = (this.#link as ReliableLink<E>).heartbeat.nextCheckAt();
    }
    return Math.min(this.#handshakeAt, this.#frameDeadlineAt, this.#heartbeatAt, this.#rttPingAt);
  }

  /** Called by the link: frames wait in its batch. */
  flush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Written after this turn's I/O callbacks, not in a microtask: every read of the turn adds
    // its ACK and replies to the same write.
    this.#turns.flushAtEnd(this as unknown as Connection<OutboundEntry>);
  }

  /** Called by the link: the session log could not commit. */
  logFailed(error: unknown): void {
    this.destroy(
      new TetherError(Code.CONNECTION_LOST, `the session store failed: ${String(error)}`, {
        cause: error,
      }),
    );
  }

  /** @internal The end of the turn: writes what the batch holds (see {@link flush}). */
  flushNow(): void {
    this.#flushQueued = false;
    if (this.#phase === Phase.CLOSED) return;
    this.#drainBatch();
    this.#owner.flushed?.(this);
    this.#checkReplyBacklog();
  }

  // Hands the batch to the transport, a slice at a time while the transport takes it (`all`: on
  // the way out, before ERROR or FIN). A slice the transport cannot hand on at once leaves the
  // rest queued (still encoded as little as possible) until its 'drain': the bytes to copy stay
  // within what the operating system is taking, and a staging buffer the transport has let go
  // of is written again instead of fresh memory.
  #drainBatch(all = false): void {
    const link = this.#link;
    const transport = this.transport;
    if (link === undefined || transport.destroyed) return;
    const batch = link.batch;
    let bytes = 0;
    while (batch.bytes > 0) {
      // Nothing waiting in the transport: it holds none of the buffers it was given before.
      const released = transport.writableLength === 0;
      const buffers = batch.take(all ? Number.POSITIVE_INFINITY : WRITE_SLICE_BYTES);
      // The staging buffer goes back for reuse once the transport let go of this take's buffers:
      // the last one's write callback says so (writes complete in order).
      const giveBack = batch.lend();
      const last = buffers.length - 1;
      let room = true;
      if (last > 0) transport.cork();
      for (let i = 0; i <= last; i++) {
        const buffer = buffers[i] as Buffer;
        bytes += buffer.length;
        if (!transport.write(buffer, i === last ? giveBack : undefined)) room = false;
      }
      if (last > 0) transport.uncork();
      // Handed to the operating system already (a socket's synchronous write): no need to wait.
      if (released && transport.writableLength === 0) giveBack?.();
      // A write that returned false promises a 'drain' (transportDrained writes the rest).
      if (!room && transport.writableLength > 0) break;
    }
    if (this.#session !== undefined) this.#session.bytesOut += bytes;
  }

  /** @internal A frame of the read being handled (see {@link received}). */
  decoded(frame: Frame): void {
    this.#onFrame(frame, this.#readAt);
  }

  #onFrame(frame: Frame, now: number): void {
    this.#frames++;
    if (this.#phase === Phase.CLOSED) return;
    if (this.#phase === Phase.HANDSHAKE) {
      this.#owner.handshakeFrame(this, frame);
      return;
    }
    const handled = (this.#link as ReliableLink<E>).handle(frame, now);
    if (handled instanceof ProtocolError) {
      this.fail(handled);
      return;
    }
    if (handled) return;
    if (isFileFrame(frame)) {
      const refused = (this.#session as Session<E>).files.handle(frame);
      if (refused !== undefined) this.fail(refused);
      return;
    }
    if (!this.#owner.control(this, frame)) {
      this.fail(
        new ProtocolError(
          Code.UNEXPECTED_FRAME,
          `frame 0x${frame.type.toString(16)} is not allowed in an open session`,
        ),
      );
    }
  }

  #heartbeat(now: number, dueAt: number): void {
    const link = this.#link as ReliableLink<E>;
    const decision = link.check(now, dueAt);
    if (decision.dead) {
      if (this.#pausedFor & PauseReason.OUTBOUND_BACKLOG) {
        // Silent because we stopped reading it: it has read none of what it was sent all along.
        this.fail(
          new TetherError(
            Code.SLOW_CONSUMER,
            `the peer read none of its ${this.backlogBytes} waiting bytes for ${Math.round(decision.silentMs)} ms`,
          ),
        );
        return;
      }
      const open = this.#open as OpenOptions;
      this.destroy(
        new TetherError(open.deadCode, `no sign of life for ${Math.round(decision.silentMs)} ms`),
        decision.silentMs,
      );
      return;
    }
    // Any PING sent now restarts the RTT period.
    if (decision.ping && this.#open?.rttPingIntervalMs !== undefined) {
      this.#rttPingAt = now + this.#open.rttPingIntervalMs;
    }
    this.#heartbeatAt = decision.wakeAt;
  }

  #reschedule(): void {
    if (this.#phase === Phase.CLOSED) return;
    const at = Math.min(
      this.#handshakeAt,
      this.#frameDeadlineAt,
      this.#heartbeatAt,
      this.#rttPingAt,
    );
    const deadlines = this.#options.deadlines;
    if (at === Number.POSITIVE_INFINITY) deadlines.cancel(this);
    else if (this.deadlineSlot === -1 || at !== this.deadlineAt) deadlines.schedule(this, at);
  }

  // Keeps the owner's count of held inbound bytes and the frame deadline in step. The deadline
  // is per frame: it starts when a frame's first byte is held and restarts whenever a frame
  // completes, so steady traffic whose reads end mid-frame is never cut.
  #trackBuffered(bytes: number, frameCompleted: boolean, now: number): void {
    const delta = bytes - this.#buffered;
    this.#buffered = bytes;
    if (delta !== 0) this.#owner.buffered?.(this, delta);
    const timeoutMs = this.#options.frameTimeoutMs;
    if (timeoutMs === undefined) return;
    const before = this.#frameDeadlineAt;
    if (bytes === 0 || frameCompleted) this.#frameDeadlineAt = Number.POSITIVE_INFINITY;
    if (bytes > 0 && this.#frameDeadlineAt === Number.POSITIVE_INFINITY) {
      this.#frameDeadlineAt = now + timeoutMs;
    }
    if (this.#frameDeadlineAt !== before) this.#reschedule();
  }

  /**
   * Bytes queued toward the peer beyond its messages in flight: past the limit the peer does not
   * read its replies, so it is not read either until the transport drains.
   */
  #checkReplyBacklog(): void {
    const session = this.#session;
    if (session === undefined || this.#phase !== Phase.OPEN) return;
    if (this.backlogBytes > session.outbound.inFlightBytes + this.#options.replyBacklogLimit) {
      this.#pause(PauseReason.OUTBOUND_BACKLOG);
    }
  }

  // Counts bytes read and frames decoded this turn; past both budgets, reading waits for the next
  // turn.
  #spendTurn(bytes: number, frames: number): void {
    const turn = this.#turns.current();
    if (turn !== this.#turnAt) {
      this.#turnAt = turn;
      this.#turnBytes = 0;
      this.#turnFrames = 0;
    }
    this.#turnBytes += bytes;
    this.#turnFrames += frames;
    if (
      this.#turnBytes >= TURN_BUDGET_BYTES &&
      this.#turnFrames >= TURN_BUDGET_FRAMES &&
      !(this.#pausedFor & PauseReason.TURN_BUDGET)
    ) {
      this.#pause(PauseReason.TURN_BUDGET);
      // Made at first use: most connections never read this much in one turn.
      this.#nextTurn ??= () => this.#resume(PauseReason.TURN_BUDGET);
      this.#options.scheduler.defer(this.#nextTurn);
    }
  }

  #nextTurn: (() => void) | undefined;

  #pause(reason: PauseReason): void {
    if (this.#phase === Phase.CLOSED || this.#pausedFor & reason) return;
    if (this.#pausedFor === 0) this.transport.pause();
    this.#pausedFor |= reason;
  }

  #resume(reason: PauseReason): void {
    if (this.#phase === Phase.CLOSED || !(this.#pausedFor & reason)) return;
    this.#pausedFor &= ~reason;
    if (this.#pausedFor === 0) this.transport.resume();
  }

  #transferLink(): TransferLink {
    const link = this.#link as ReliableLink<E>;
    const scheduler = this.#options.scheduler;
    const open = this.#open as OpenOptions;
    return {
      write: (frame) => link.write(frame),
      writable: () => this.backlogBytes < TRANSFER_LOW_WATER,
      maxFrame: open.peerMaxFrame,
      // An unanswered offer goes out again each ping interval: a lost FILE_OFFER or FILE_ACCEPT
      // is repaired well within the dead deadline, without ending the link.
      reofferMs: open.heartbeat.pingIntervalMs,
      awaiting: () => link.heartbeat.transferAwaiting(scheduler.now()),
      progressed: (stillAwaiting) =>
        link.heartbeat.transferProgress(scheduler.now(), stillAwaiting),
    };
  }

  #linger(): void {
    const transport = this.transport;
    this.#options.scheduler.setTimeout(() => transport.destroy(), LINGER_MS, true);
  }

  #finish(error: TetherError, silentMs: number | undefined): void {
    this.#phase = Phase.CLOSED;
    this.#options.deadlines.cancel(this);
    this.#link?.close();
    // A transport closed with end() lingers up to a second: its half-received frame need not.
    this.#decoder.discard();
    this.#trackBuffered(0, false, 0);
    const session = this.#session;
    if (session !== undefined && session.connection === this) {
      session.connection = undefined;
      session.filesIfStarted?.detach();
    }
    this.#owner.closed(this, error, silentMs);
  }
}
