/** Heartbeat settings, in milliseconds. */
export interface HeartbeatOptions {
  /** Send a PING after this long without inbound bytes (or without ACK progress). */
  pingIntervalMs: number;
  /** Declare the link dead after this long without proof of life. */
  deadAfterMs: number;
  /**
   * After a timer fired late (blocked event loop, laptop sleep), how long a PING may go
   * unanswered before the link is declared dead. Default: deadAfterMs - pingIntervalMs.
   */
  probeTimeoutMs?: number;
  /** A timer this late is treated as a wake from suspension. Default: pingIntervalMs / 2. */
  lateToleranceMs?: number;
}

/** What the I/O layer should do after {@link HeartbeatMonitor.check}. */
export interface HeartbeatDecision {
  /** Send a PING now. */
  ping: boolean;
  /** The link is dead: close it. */
  dead: boolean;
  /** The check ran late: the process was suspended or its event loop blocked. */
  late: boolean;
  /** How long the link has been silent, by the rules below. */
  silentMs: number;
  /** When to call `check` next. */
  wakeAt: number;
}

/**
 * Dead-link detection without I/O; time is passed in.
 *
 * Proof of life is any inbound byte. Outbound DATA that waits for an ACK makes the silence
 * clock run from the last ACK progress instead, so a side that keeps sending while the peer is
 * gone (or while only the other direction works) still finds the link dead; a steady outbound
 * stream can never mask a dead peer. File data works the same way with its own clock: chunks (or
 * a FILE_END) that wait for the receiver's FILE_STATUS (or FILE_COMPLETE) make the silence run
 * from the last transfer progress, so a transfer whose frames were lost inside a live link ends
 * the link instead of stalling for good, and resumes on the next one.
 *
 * A check that runs more than `lateToleranceMs` after it was due means this process was not
 * running; the bytes that would prove life may sit unread in the socket. The monitor then neither
 * trusts the link nor declares it dead: it asks for a PING at once and allows `probeTimeoutMs`
 * for any answer.
 */
export class HeartbeatMonitor {
  readonly pingIntervalMs: number;
  readonly deadAfterMs: number;
  readonly probeTimeoutMs: number;
  readonly lateToleranceMs: number;
  #lastInbound: number;
  /** Set while outbound data waits for an ACK: start of the wait or last ACK progress. */
  #ackClock: number | undefined;
  /** Set while file data waits for the receiver's progress: start of the wait or last progress. */
  #transferClock: number | undefined;
  #lastPing = Number.NEGATIVE_INFINITY;

  constructor(options: HeartbeatOptions, now: number) {
    const { pingIntervalMs, deadAfterMs } = options;
    if (!(pingIntervalMs > 0 && Number.isFinite(pingIntervalMs))) {
      throw new TypeError(`pingIntervalMs must be a positive number, got ${pingIntervalMs}`);
    }
    if (!(deadAfterMs > pingIntervalMs && Number.isFinite(deadAfterMs))) {
      throw new TypeError(
        `deadAfterMs must exceed pingIntervalMs (${pingIntervalMs}), got ${deadAfterMs}`,
      );
    }
    this.pingIntervalMs = pingIntervalMs;
    this.deadAfterMs = deadAfterMs;
    this.probeTimeoutMs = options.probeTimeoutMs ?? deadAfterMs - pingIntervalMs;
    this.lateToleranceMs = options.lateToleranceMs ?? pingIntervalMs / 2;
    if (!(this.probeTimeoutMs > 0 && this.probeTimeoutMs <= deadAfterMs)) {
      throw new TypeError(`probeTimeoutMs must be in (0, deadAfterMs], got ${this.probeTimeoutMs}`);
    }
    this.#lastInbound = now;
  }

  /** Any inbound byte arrived. */
  inbound(now: number): void {
    if (now > this.#lastInbound) this.#lastInbound = now;
  }

  /** DATA was written; starts the ACK clock if nothing was waiting. */
  outboundPending(now: number): void {
    this.#ackClock ??= now;
  }

  /** An ACK released messages; `stillPending` says whether more wait for one. */
  ackProgress(now: number, stillPending: boolean): void {
    this.#ackClock = stillPending ? now : undefined;
  }

  /** File data was sent that waits for the receiver's progress; starts the transfer clock. */
  transferAwaiting(now: number): void {
    this.#transferClock ??= now;
  }

  /** A transfer made progress; `stillAwaiting` says whether file data still waits for some. */
  transferProgress(now: number, stillAwaiting: boolean): void {
    this.#transferClock = stillAwaiting ? now : undefined;
  }

  /** A PING was sent (by `check`'s request or otherwise). */
  pinged(now: number): void {
    this.#lastPing = now;
  }

  /** Evaluates the link at `now`; `dueAt` is when this check was scheduled to run. */
  check(now: number, dueAt: number = now): HeartbeatDecision {
    const late = now - dueAt > this.lateToleranceMs;
    if (late) {
      // Give the probe its full timeout from now; never before that can the link be dead.
      const floor = now - (this.deadAfterMs - this.probeTimeoutMs);
      this.#lastInbound = Math.max(this.#lastInbound, floor);
      if (this.#ackClock !== undefined) this.#ackClock = Math.max(this.#ackClock, floor);
      if (this.#transferClock !== undefined) {
        this.#transferClock = Math.max(this.#transferClock, floor);
      }
    }
    const evidence = Math.min(
      this.#lastInbound,
      this.#ackClock ?? Number.POSITIVE_INFINITY,
      this.#transferClock ?? Number.POSITIVE_INFINITY,
    );
    const silentMs = now - evidence;
    if (silentMs >= this.deadAfterMs) {
      return { ping: false, dead: true, late, silentMs, wakeAt: now };
    }
    const pingDue = evidence + this.pingIntervalMs;
    const ping = late || (now >= pingDue && now - this.#lastPing >= this.pingIntervalMs);
    if (ping) this.#lastPing = now;
    return { ping, dead: false, late, silentMs, wakeAt: this.#wakeAt(evidence) };
  }

  /**
   * When {@link check} has something to do next: the `wakeAt` a check would return now if it
   * found nothing due. Inbound bytes, ACK and transfer progress and PINGs only ever move it
   * later, so a check scheduled for an earlier time may ask this instead of running.
   */
  nextCheckAt(): number {
    return this.#wakeAt(
      Math.min(
        this.#lastInbound,
        this.#ackClock ?? Number.POSITIVE_INFINITY,
        this.#transferClock ?? Number.POSITIVE_INFINITY,
      ),
    );
  }

  #wakeAt(evidence: number): number {
    const nextPing = Math.max(evidence + this.pingIntervalMs, this.#lastPing + this.pingIntervalMs);
    return Math.min(evidence + this.deadAfterMs, nextPing);
  }
}
