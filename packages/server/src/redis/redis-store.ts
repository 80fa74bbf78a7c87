import { createHash, randomBytes } from 'node:crypto';
import type { Scheduler } from '@tether/core';
import {
  type DataFrame,
  ErrorCode,
  isErrorCode,
  type Payload,
  TetherError,
  toBuffer,
} from '@tether/protocol';
import type { PeerSendOptions, PeerSendReceipt } from '../peer.js';
import type { PeerPendingSend, PeerSession, SessionStoreHooks } from '../peer-session.js';
import { type SessionEnd, type SessionStore, tokensEqual } from '../session-store.js';
import { OutboundSequencer } from './outbound-sequencer.js';
import { decodeRecord, encodeRecord, type StoredMessage } from './record.js';
import type { ResolvedRedisOptions } from './redis-options.js';
import { type Positions, RedisSessionLog } from './redis-session-log.js';
import { RemoteSends } from './remote-sends.js';
import { StoreClient, Uncertain, unavailable } from './store-client.js';

/** What a new or loaded session is made from (the server's PeerSession constructor). */
export interface SessionInit {
  id: string;
  resumeToken: string;
  clientId: string;
  identity: string;
  remoteAddress: string;
  tlsIdentity: undefined;
  clientAcked: number;
  log?: RedisSessionLog;
  acked?: number;
  retained?: PeerPendingSend[];
}

/** What the store needs from the server. */
export interface RedisStoreHost {
  readonly scheduler: Scheduler;
  readonly sessionTtlMs: number;
  readonly maxSessions: number;
  readonly maxSessionsPerIdentity: number;
  /** Client messages one session may hold while they wait for the store; past it, reading stops. */
  readonly maxHeldBytes: number;
  /** Makes a PeerSession (the server's session host behind it). */
  makeSession(init: SessionInit): PeerSession;
  /** Hands a client message to the application. */
  deliver(session: PeerSession, frame: DataFrame): void;
  /** A session ended for good (TTL, a cap, closed by another instance). */
  ended(session: PeerSession, end: SessionEnd): void;
  /** A session left this instance (another instance took it): close its connection and files. */
  moved(session: PeerSession, error: TetherError): void;
}

/** A session this instance owns. */
interface Local {
  readonly session: PeerSession;
  readonly gen: string;
  readonly log: RedisSessionLog;
  readonly sequencer: OutboundSequencer;
  gapTimer: unknown;
  /** Another instance asked for it: it is being written out and released. */
  handingOver: boolean;
}

/** This instance's appends to one session: one in flight at a time, in order. */
interface AppendQueue {
  entries: PeerPendingSend[];
  busy: boolean;
  scheduled: boolean;
}

// Most messages in one append (one script call).
const APPEND_BATCH = 512;
// How long a gap in a session's seqs may stay open before it is read from the store.
const GAP_WAIT_MS = 50;
// Sessions kept idle in Redis expire by themselves this long after their TTL, if no instance
// is left to end them.
const KEEP_EXTRA_MS = 60_000;
const SWEEP_EVERY_MS = 1000;
// An idle session whose live owner did not end it this long after its TTL is ended by others.
const SWEEP_GRACE_MS = 5000;
const SWEEP_LIMIT = 500;
const POLL_EVERY_MS = 1000;
const MAX_SEQ = 2 ** 53 - 1;
// How long a take waits for a live owner to hand the session over before it fences it.
const HANDOFF_WAIT_MS = 1000;

/** The store answered that another instance owns the session now. */
class Fenced extends Error {}

/**
 * Sessions kept in Redis, shared by every server instance that uses the same Redis and key
 * prefix: a client resumes its session on any of them (behind a load balancer), nothing it was
 * told is delivered is lost when an instance dies, and sends to a client reach it wherever it
 * is connected. The data model and every check live in the Lua scripts (scripts.ts); this
 * class keeps the sessions this instance owns, their logs (redis-session-log.ts) and the
 * routing of messages between instances.
 */
export class RedisSessionStore implements SessionStore {
  readonly #host: RedisStoreHost;
  readonly #options: ResolvedRedisOptions;
  readonly #client: StoreClient;
  readonly #remote: RemoteSends;
  readonly #prefix: string;
  readonly #instance: string;
  readonly #local = new Map<string, Local>();
  /** Channel messages for sessions being taken, replayed once the take answered. */
  readonly #taking = new Map<string, Buffer[]>();
  readonly #appends = new Map<string, AppendQueue>();
  /** The bookkeeping of a session made by #build, until it is registered as local. */
  readonly #pendingLocal = new WeakMap<PeerSession, Local>();
  /** Takes waiting for an owner's hand-over (`H`), by session id. */
  readonly #handoffs = new Map<string, () => void>();
  /** Acknowledgements and ends to tell other instances, sent once per tick. */
  #acksOut = new Map<string, Map<string, number>>();
  #endsOut = new Map<string, Map<string, string>>();
  #notifyQueued = false;
  #appendWaiter: (() => void) | undefined;
  #appendIds = 0;
  readonly #appendNonce = randomBytes(6).toString('hex');
  #sweepTimer: unknown;
  #pollTimer: unknown;
  #closing = false;

  constructor(host: RedisStoreHost, options: ResolvedRedisOptions) {
    this.#host = host;
    this.#options = options;
    this.#prefix = options.prefix;
    this.#instance = options.instanceId;
    this.#client = new StoreClient({
      url: options.url,
      prefix: options.prefix,
      instanceId: options.instanceId,
      timeoutMs: options.timeoutMs,
      scheduler: host.scheduler,
      message: (message) => this.#message(message),
      ready: () => this.#reconnected(),
    });
    this.#remote = new RemoteSends((sids) => this.#readAcked(sids));
  }

  /** This instance's id in the store. */
  get instanceId(): string {
    return this.#instance;
  }

  /** Connects to Redis, subscribes to this instance's channel and takes its lease. */
  async start(): Promise<void> {
    await this.#client.connect();
    await this.#sweep();
    this.#scheduleSweep();
  }

  get size(): number {
    return this.#local.size;
  }

  *values(): IterableIterator<PeerSession> {
    for (const local of this.#local.values()) yield local.session;
  }

  // Tokens are `${sessionId}.${secret}`: the id finds the session; the store holds only the
  // token's SHA-256, compared by the take script.
  async find(token: string, clientId: string, identity: string): Promise<PeerSession | undefined> {
    const dot = token.indexOf('.');
    if (dot <= 0 || dot > 64) return undefined;
    const sid = token.slice(0, dot);
    const local = this.#local.get(sid);
    if (
      local !== undefined &&
      local.session.clientId === clientId &&
      local.session.identity === identity &&
      tokensEqual(local.session.resumeToken, token)
    ) {
      const resumed = await this.#resumeHere(local);
      if (resumed !== 'moved') return resumed;
    }
    return this.#take(sid, token, clientId, identity);
  }

  makeRoom(): undefined {
    return undefined; // the caps are checked in `add`, atomically with the new session
  }

  async add(session: PeerSession): Promise<TetherError | undefined> {
    const reply = (await this.#client.call((c) =>
      c.tetherCreate(
        this.#prefix,
        session.id,
        session.clientId,
        session.identity,
        hashToken(session.resumeToken),
        this.#instance,
        session.inbound.delivered,
        Date.now(),
        this.#host.sessionTtlMs,
        this.#host.maxSessions,
        this.#host.maxSessionsPerIdentity,
      ),
    )) as string[];
    if (reply[0] === 'full') {
      return new TetherError(
        ErrorCode.TOO_MANY_SESSIONS,
        reply[1] === 'identity'
          ? `${this.#host.maxSessionsPerIdentity} sessions of this identity are connected`
          : 'every session is connected',
      );
    }
    for (const victim of reply.slice(1)) this.#endedElsewhere(victim, ErrorCode.TOO_MANY_SESSIONS);
    this.#local.set(session.id, this.#localOf(session));
    return undefined;
  }

  /**
   * Makes a new session that lives in the store (`add` records it). `clientAcked` starts both
   * client positions; nothing was sent to the client yet.
   */
  newSession(init: Omit<SessionInit, 'log' | 'acked' | 'retained'>): PeerSession {
    return this.#build(init, '1', { ack: 0, mark: init.clientAcked, in: init.clientAcked }, 1, []);
  }

  disconnected(session: PeerSession): void {
    const local = this.#local.get(session.id);
    if (local === undefined || local.session !== session || this.#closing) return;
    const ttl = this.#host.sessionTtlMs;
    this.#client
      .call((c) =>
        c.tetherIdle(
          this.#prefix,
          session.id,
          this.#instance,
          local.gen,
          Date.now() + ttl,
          ttl + KEEP_EXTRA_MS,
        ),
      )
      .then(
        (result) => this.#owned(local, result),
        () => {}, // the TTL timer below ends it all the same
      );
    const scheduler = this.#host.scheduler;
    scheduler.clearTimeout(session.ttlTimer);
    session.ttlTimer = scheduler.setTimeout(() => this.#expire(local), ttl);
  }

  resumed(session: PeerSession): void {
    this.#host.scheduler.clearTimeout(session.ttlTimer);
    session.ttlTimer = undefined;
  }

  remove(session: PeerSession, error?: TetherError): boolean {
    const code = error?.code ?? ErrorCode.CLOSED;
    const local = this.#local.get(session.id);
    if (local === undefined || local.session !== session) {
      // A peer of this application whose session lives elsewhere: end it there.
      this.#endInStore(session.id, '', code);
      return false;
    }
    this.#forget(local, error ?? new TetherError(ErrorCode.CLOSED, 'the session ended'));
    this.#endInStore(session.id, local.gen, code);
    return true;
  }

  /**
   * Sends to the newest session of `clientId`, wherever it lives: resolves when the client
   * acknowledged it; NO_SESSION when the client has none.
   */
  async sendTo(
    clientId: string,
    payload: Payload,
    options?: PeerSendOptions,
  ): Promise<PeerSendReceipt> {
    const data = toBuffer(payload);
    const sid = await this.#client.call((c) => c.get(`${this.#prefix}client:${clientId}`));
    if (sid === null) {
      throw new TetherError(ErrorCode.NO_SESSION, 'no live session for this client id');
    }
    return this.#sendToSession(sid, data, options);
  }

  /** Sends to every session in the store; settles when each has acknowledged or failed. */
  async broadcast(payload: Payload): Promise<PromiseSettledResult<PeerSendReceipt>[]> {
    const data = toBuffer(payload);
    const sids = await this.#client.call((c) => c.zrange(`${this.#prefix}sessions`, 0, -1));
    return Promise.allSettled(sids.map((sid) => this.#sendToSession(sid, data)));
  }

  /**
   * A graceful close: every session's log is written out (what its application was handed is
   * recorded as delivered, so nothing is delivered twice), then handed back to the store for
   * the client to resume on another instance. Sends still waiting for their client's
   * acknowledgement fail here with SERVER_SHUTTING_DOWN; the store delivers them all the same.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const scheduler = this.#host.scheduler;
    scheduler.clearTimeout(this.#sweepTimer);
    scheduler.clearTimeout(this.#pollTimer);
    const locals = [...this.#local.values()];
    await Promise.allSettled(locals.map((local) => local.log.settle()));
    const ttl = this.#host.sessionTtlMs;
    await Promise.allSettled(
      locals.map((local) =>
        this.#client.call((c) =>
          c.tetherRelease(
            this.#prefix,
            local.session.id,
            this.#instance,
            local.gen,
            Date.now() + ttl,
            ttl + KEEP_EXTRA_MS,
          ),
        ),
      ),
    );
    const shuttingDown = new TetherError(
      ErrorCode.SERVER_SHUTTING_DOWN,
      'this server instance closed before the client acknowledged (the store still delivers it)',
    );
    for (const local of locals) {
      this.#forget(local, shuttingDown);
      for (const entry of [...local.session.outbound.clear(), ...local.sequencer.clear()]) {
        if (entry.fromStore !== true) entry.reject(shuttingDown);
      }
    }
    await this.#appendsDone();
    this.#remote.failAll(shuttingDown);
    this.#flushNotifications();
    await this.#client.call((c) => c.tetherLeave(this.#prefix, this.#instance)).catch(() => {});
    await this.#client.close();
  }

  // ---- resume ----------------------------------------------------------------------------

  // The client is back on the instance that owns its session: the old connection goes, the
  // log is written out (an ACK or WELCOME never says more than the store holds), and the store
  // confirms the ownership. 'moved' when another instance owns it now.
  async #resumeHere(local: Local): Promise<PeerSession | undefined | 'moved'> {
    const { session } = local;
    session.connection?.fail(
      new TetherError(ErrorCode.SESSION_TAKEN_OVER, 'another connection resumed this session'),
    );
    try {
      await local.log.settle();
    } catch (error) {
      if (this.#local.get(session.id) !== local) return 'moved';
      throw error instanceof TetherError ? error : unavailable('the session log failed', error);
    }
    const result = await this.#client.call((c) =>
      c.tetherTouch(this.#prefix, session.id, this.#instance, local.gen),
    );
    if (this.#local.get(session.id) !== local) return 'moved';
    if (result === 1) return session;
    this.#owned(local, result);
    return result === 0 ? 'moved' : undefined;
  }

  async #take(
    sid: string,
    token: string,
    clientId: string,
    identity: string,
  ): Promise<PeerSession | undefined> {
    const held: Buffer[] = [];
    this.#taking.set(sid, held);
    try {
      const take = (force: boolean) =>
        this.#client.call((c) =>
          c.tetherTakeBuffer(
            this.#prefix,
            sid,
            hashToken(token),
            clientId,
            identity,
            this.#instance,
            force ? '1' : '0',
          ),
        ) as Promise<[number, Buffer, Buffer, Buffer, Buffer, Buffer[]] | [Buffer] | null>;
      let reply = await take(false);
      if (reply !== null && reply.length === 1) {
        // The owner is alive: it writes out and releases the session, then we take it.
        await this.#handedOver(sid);
        held.length = 0; // what the old owner was told is moot: we load the state now
        reply = await take(true);
      }
      if (reply === null || reply.length === 1) return undefined;
      const [gen, delivered, mark, ack, next, records] = reply as [
        number,
        Buffer,
        Buffer,
        Buffer,
        Buffer,
        Buffer[],
      ];
      // A stale copy of ours (we missed the word that another instance took it) goes first.
      const stale = this.#local.get(sid);
      if (stale !== undefined) this.#drop(stale, takenOver());
      const acked = Number(ack);
      const retained = records.map((record, i) =>
        this.#storedEntry(sid, acked + 1 + i, decodeRecord(record)),
      );
      const session = this.#build(
        {
          id: sid,
          resumeToken: token,
          clientId,
          identity,
          remoteAddress: '',
          tlsIdentity: undefined,
          clientAcked: Number(delivered),
        },
        String(gen),
        { ack: acked, mark: Number(mark), in: Number(delivered) },
        Number(next) + 1,
        retained,
      );
      session.redeliverUpTo = Number(mark);
      this.#local.set(sid, this.#localOf(session));
      // Replayed once the session is local (not buffered again: that loop never ended).
      this.#taking.delete(sid);
      for (const message of held) this.#message(message);
      return session;
    } finally {
      this.#taking.delete(sid);
    }
  }

  // Resolves when the owner answered a hand-over request for `sid`, or after HANDOFF_WAIT_MS
  // (an owner that cannot reach Redis, or hangs, is then fenced instead).
  #handedOver(sid: string): Promise<void> {
    return new Promise((resolve) => {
      const scheduler = this.#host.scheduler;
      const waiters = this.#handoffs;
      const done = (): void => {
        scheduler.clearTimeout(timer);
        waiters.delete(sid);
        resolve();
      };
      const timer = scheduler.setTimeout(done, HANDOFF_WAIT_MS, true);
      waiters.set(sid, done);
    });
  }

  // Another instance has this session's client: write out what the application was handed
  // (recorded as delivered, so the other instance delivers nothing twice), release it, answer.
  async #handOver(local: Local, to: string): Promise<void> {
    if (local.handingOver) return;
    local.handingOver = true;
    const { session } = local;
    session.connection?.fail(takenOver());
    try {
      await local.log.settle();
      const ttl = this.#host.sessionTtlMs;
      await this.#client.call((c) =>
        c.tetherRelease(
          this.#prefix,
          session.id,
          this.#instance,
          local.gen,
          Date.now() + ttl,
          ttl + KEEP_EXTRA_MS,
        ),
      );
    } catch {
      // The other instance takes it by force after its wait; what we could not write is
      // redelivered there, marked.
    }
    if (this.#local.get(session.id) === local) this.#drop(local, takenOver());
    this.#publish(to, `H ${session.id}`);
  }

  #publish(instance: string, text: string): void {
    this.#client.call((c) => c.publish(`${this.#prefix}ch:${instance}`, text)).catch(() => {}); // the other side has its timeout, or polls
  }

  // A session and its store hooks. Registered as local by `add` (new) or `#take` (loaded).
  #build(
    init: Omit<SessionInit, 'log' | 'acked' | 'retained'>,
    gen: string,
    durable: Positions,
    next: number,
    retained: PeerPendingSend[],
  ): PeerSession {
    let session: PeerSession | undefined;
    const log = new RedisSessionLog(
      {
        write: (positions) => this.#write(init.id, gen, positions),
        deliver: (frame) => this.#host.deliver(session as PeerSession, frame),
        backpressure: (paused) => {
          session?.connection?.holdForLog(paused);
        },
      },
      durable,
      this.#host.maxHeldBytes,
    );
    session = this.#host.makeSession({ ...init, log, acked: durable.ack, retained });
    const made = session;
    const hooks: SessionStoreHooks = {
      append: (owner, entry) => this.#append(owner.id, entry),
      hold: (frame) => log.hold(frame),
    };
    made.store = hooks;
    this.#pendingLocal.set(made, {
      session: made,
      gen,
      log,
      sequencer: new OutboundSequencer(next, (entry) => made.queueStored(entry)),
      gapTimer: undefined,
      handingOver: false,
    });
    return made;
  }

  #localOf(session: PeerSession): Local {
    const local = this.#pendingLocal.get(session);
    if (local === undefined) throw new Error('session was not built by this store');
    return local;
  }

  // ---- the log's writes --------------------------------------------------------------------

  async #write(sid: string, gen: string, positions: Positions): Promise<void> {
    const result = await this.#client.call((c) =>
      c.tetherCommit(
        this.#prefix,
        sid,
        this.#instance,
        gen,
        positions.ack,
        positions.mark,
        positions.in,
      ),
    );
    if (result === 1) return;
    const local = this.#local.get(sid);
    if (local !== undefined && local.gen === gen) this.#owned(local, result);
    throw result === 0 ? new Fenced('another instance owns the session') : gone();
  }

  // Acts on a script's answer about ownership: 0 another instance owns it, -1 it is gone.
  #owned(local: Local, result: unknown): void {
    if (result === 1 || this.#local.get(local.session.id) !== local) return;
    if (result === 0) this.#drop(local, takenOver());
    else if (result === -1) this.#endLocal(local, ErrorCode.CLOSED, 'the session ended');
  }

  // ---- appends -----------------------------------------------------------------------------

  #sendToSession(sid: string, data: Buffer, options?: PeerSendOptions): Promise<PeerSendReceipt> {
    const local = this.#local.get(sid);
    if (local !== undefined) return local.session.peer.send(data, options);
    return new Promise((resolve, reject) =>
      this.#append(sid, {
        payload: data,
        flags: 0,
        requestId: 0,
        seq: 0,
        resolve,
        reject,
        accepted: options?.onAccepted,
      }),
    );
  }

  #append(sid: string, entry: PeerPendingSend): void {
    if (this.#closing) {
      entry.reject(new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down'));
      return;
    }
    let queue = this.#appends.get(sid);
    if (queue === undefined) {
      queue = { entries: [], busy: false, scheduled: false };
      this.#appends.set(sid, queue);
    }
    queue.entries.push(entry);
    if (queue.busy || queue.scheduled) return;
    queue.scheduled = true;
    // Every send of this tick goes into one append.
    this.#host.scheduler.defer(() => this.#sendAppend(sid, queue));
  }

  #sendAppend(sid: string, queue: AppendQueue): void {
    queue.scheduled = false;
    if (queue.busy || queue.entries.length === 0) return;
    const batch = queue.entries.splice(0, APPEND_BATCH);
    // Unique among every append this process makes (the store applies an id once), even if an
    // instance id were reused by a later process.
    const id = `${this.#appendNonce}.${++this.#appendIds}`;
    const records = batch.map((entry) =>
      encodeRecord({
        flags: entry.flags,
        requestId: entry.requestId,
        origin: this.#instance,
        payload: entry.payload,
      }),
    );
    queue.busy = true;
    this.#client
      .call(
        (c, epoch) => c.tetherAppend(this.#prefix, sid, this.#instance, epoch, id, ...records),
        Uncertain.WAIT,
      )
      .then(
        (reply) => this.#appended(sid, batch, reply as string[]),
        (error: Error) => {
          for (const entry of batch) entry.reject(error);
        },
      )
      .finally(() => {
        queue.busy = false;
        if (queue.entries.length > 0) this.#sendAppend(sid, queue);
        else this.#appends.delete(sid);
        this.#appendWaiter?.();
      });
  }

  #appended(sid: string, batch: PeerPendingSend[], reply: string[]): void {
    if (reply[0] !== 'ok') {
      const error = new TetherError(ErrorCode.CLOSED, 'the session has ended');
      for (const entry of batch) entry.reject(error);
      return;
    }
    const first = Number(reply[1]);
    const local = this.#local.get(sid);
    batch.forEach((entry, i) => {
      const seq = first + i;
      entry.storeSeq = seq;
      entry.accepted?.({ id: `${sid}:${seq}`, seq });
      if (local !== undefined) local.sequencer.add(seq, entry);
      else this.#remote.track(sid, seq, entry);
    });
    if (local !== undefined) this.#watchGap(local);
  }

  // Waits (up to the store timeout) for appends in flight: their answers settle promises.
  async #appendsDone(): Promise<void> {
    const deadline = this.#host.scheduler.now() + this.#options.timeoutMs;
    while (this.#appends.size > 0 && this.#host.scheduler.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#appendWaiter = resolve;
        this.#host.scheduler.setTimeout(resolve, 50, true);
      });
      this.#appendWaiter = undefined;
    }
  }

  // A message loaded from the store or announced on the channel: its promise lives with its
  // origin, who is told when it is acknowledged or dropped.
  #storedEntry(sid: string, seq: number, message: StoredMessage): PeerPendingSend {
    const origin = message.origin;
    return {
      payload: message.payload,
      flags: message.flags,
      requestId: message.requestId,
      seq: 0,
      storeSeq: seq,
      fromStore: true,
      resolve: () => this.#ackTo(origin, sid, seq),
      reject: (error) => this.#endTo(origin, sid, error),
    };
  }

  // ---- gaps --------------------------------------------------------------------------------

  #watchGap(local: Local): void {
    if (local.sequencer.gapEnd === undefined || local.gapTimer !== undefined) return;
    local.gapTimer = this.#host.scheduler.setTimeout(
      () => {
        local.gapTimer = undefined;
        const end = local.sequencer.gapEnd;
        if (end !== undefined) void this.#fill(local, end - 1);
      },
      GAP_WAIT_MS,
      true,
    );
  }

  // Reads the messages from the sequencer's next seq to `to` from the store.
  async #fill(local: Local, to: number): Promise<void> {
    const sid = local.session.id;
    const from = local.sequencer.next;
    if (to < from) return;
    let reply: [number, Buffer[]] | null;
    try {
      reply = (await this.#client.call((c) => c.tetherFetchBuffer(this.#prefix, sid, from, to))) as
        | [number, Buffer[]]
        | null;
    } catch {
      this.#watchGap(local); // the store is away: try again later
      return;
    }
    if (reply === null || this.#local.get(sid) !== local) return;
    const [ack, records] = reply;
    const start = Math.max(from, Number(ack) + 1);
    const ownAppendBusy = this.#appends.get(sid)?.busy === true;
    records.forEach((record, i) => {
      const message = decodeRecord(record);
      // Our own append in flight brings its messages with their promises.
      if (message.origin === this.#instance && ownAppendBusy) return;
      local.sequencer.add(start + i, this.#storedEntry(sid, start + i, message));
    });
    this.#watchGap(local);
  }

  // The connection came back: channel messages may have been missed and writes may have failed.
  #reconnected(): void {
    if (this.#closing) return;
    for (const local of this.#local.values()) {
      local.log.retry();
      void this.#fill(local, MAX_SEQ);
    }
  }

  // ---- the channel -------------------------------------------------------------------------

  #message(message: Buffer): void {
    const kind = message[0];
    if (kind === 0x61 /* a */) {
      for (const line of message.toString('latin1').split('\n')) {
        const [, sid, seq] = line.split(' ');
        if (sid !== undefined && seq !== undefined) this.#remote.acked(sid, Number(seq));
      }
      return;
    }
    const headerEnd = kind === 0x6e /* n */ ? message.indexOf(0x0a) : message.length;
    if (headerEnd < 0) return;
    const header = message.toString('latin1', 0, headerEnd).split(' ');
    const sid = header[1];
    if (sid === undefined) return;
    if (kind === 0x48 /* H */) {
      this.#handoffs.get(sid)?.();
      return;
    }
    if (kind === 0x68 /* h */) {
      const to = header[2];
      const owned = this.#local.get(sid);
      if (to === undefined) return;
      if (owned === undefined) this.#publish(to, `H ${sid}`);
      else void this.#handOver(owned, to);
      return;
    }
    const held = this.#taking.get(sid);
    if (held !== undefined) {
      held.push(message);
      return;
    }
    const local = this.#local.get(sid);
    if (kind === 0x6e /* n */) {
      if (local === undefined) return; // loaded from the store by whoever takes it
      const first = Number(header[2]);
      let offset = headerEnd + 1;
      header.slice(4).forEach((length, i) => {
        const end = offset + Number(length);
        const stored = decodeRecord(message.subarray(offset, end));
        offset = end;
        local.sequencer.add(first + i, this.#storedEntry(sid, first + i, stored));
      });
      this.#watchGap(local);
    } else if (kind === 0x74 /* t */) {
      if (local !== undefined) this.#drop(local, takenOver());
    } else if (kind === 0x65 /* e */) {
      const code = isErrorCode(header[2]) ? header[2] : ErrorCode.CLOSED;
      if (local !== undefined) this.#endLocal(local, code, 'the session ended on another instance');
      this.#remote.ended(sid, new TetherError(code, 'the session has ended'));
    }
  }

  #ackTo(origin: string, sid: string, seq: number): void {
    if (origin === this.#instance) {
      this.#remote.acked(sid, seq);
      return;
    }
    if (origin === '') return;
    let acks = this.#acksOut.get(origin);
    if (acks === undefined) {
      acks = new Map();
      this.#acksOut.set(origin, acks);
    }
    acks.set(sid, Math.max(acks.get(sid) ?? 0, seq));
    this.#queueNotifications();
  }

  #endTo(origin: string, sid: string, error: Error): void {
    const code = error instanceof TetherError ? error.code : ErrorCode.CLOSED;
    if (origin === this.#instance) {
      this.#remote.ended(sid, new TetherError(code, 'the session has ended'));
      return;
    }
    if (origin === '') return;
    let ends = this.#endsOut.get(origin);
    if (ends === undefined) {
      ends = new Map();
      this.#endsOut.set(origin, ends);
    }
    ends.set(sid, code);
    this.#queueNotifications();
  }

  #queueNotifications(): void {
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    this.#host.scheduler.defer(() => this.#flushNotifications());
  }

  // One PUBLISH per instance for all its acknowledgements of the tick; ends one by one.
  #flushNotifications(): void {
    this.#notifyQueued = false;
    const acks = this.#acksOut;
    const ends = this.#endsOut;
    this.#acksOut = new Map();
    this.#endsOut = new Map();
    const publish = (origin: string, text: string): void => this.#publish(origin, text);
    for (const [origin, bySession] of acks) {
      publish(origin, Array.from(bySession, ([sid, seq]) => `a ${sid} ${seq}`).join('\n'));
    }
    for (const [origin, bySession] of ends) {
      for (const [sid, code] of bySession) publish(origin, `e ${sid} ${code}`);
    }
  }

  async #readAcked(sids: string[]): Promise<(number | undefined)[]> {
    const replies = await this.#client.call((c) =>
      Promise.all(sids.map((sid) => c.hget(`${this.#prefix}s:${sid}`, 'ack'))),
    );
    return replies.map((ack) => (ack === null ? undefined : Number(ack)));
  }

  // ---- leaving -----------------------------------------------------------------------------

  // The session moved to another instance: what its application sent here is followed from
  // afar; its connection and files close.
  #drop(local: Local, error: TetherError): void {
    const { session } = local;
    this.#forget(local, error);
    for (const entry of [...session.outbound.clear(), ...local.sequencer.clear()]) {
      if (entry.fromStore !== true && entry.storeSeq !== undefined) {
        this.#remote.track(session.id, entry.storeSeq, entry);
      }
    }
    this.#host.moved(session, error);
  }

  // The session ended for good (on another instance's word, or the store lost it).
  #endLocal(local: Local, code: ErrorCode, reason: string): void {
    this.#forget(local, new TetherError(code, reason));
    this.#host.ended(local.session, {
      reason,
      error: code === ErrorCode.CLOSED ? undefined : new TetherError(code, reason),
    });
  }

  #forget(local: Local, error: TetherError): void {
    const { session } = local;
    if (this.#local.get(session.id) === local) this.#local.delete(session.id);
    const scheduler = this.#host.scheduler;
    scheduler.clearTimeout(session.ttlTimer);
    session.ttlTimer = undefined;
    scheduler.clearTimeout(local.gapTimer);
    local.gapTimer = undefined;
    local.log.stop(error);
  }

  async #expire(local: Local): Promise<void> {
    if (this.#local.get(local.session.id) !== local || local.session.connection !== undefined) {
      return;
    }
    let result: unknown;
    try {
      result = await this.#client.call((c) =>
        c.tetherEnd(this.#prefix, local.session.id, this.#instance, local.gen, ErrorCode.CLOSED),
      );
    } catch {
      // The store is away: try again shortly (the session must not outlive its TTL for good).
      local.session.ttlTimer = this.#host.scheduler.setTimeout(() => this.#expire(local), 1000);
      return;
    }
    if (this.#local.get(local.session.id) !== local) return;
    if (result === 1 || result === -1) {
      this.#forget(local, new TetherError(ErrorCode.CLOSED, 'session TTL passed'));
      this.#host.ended(local.session, { reason: 'session TTL passed', error: undefined });
    } else {
      this.#drop(local, takenOver());
    }
  }

  #endedElsewhere(sid: string, code: ErrorCode): void {
    const local = this.#local.get(sid);
    const reason =
      code === ErrorCode.TOO_MANY_SESSIONS
        ? 'the server ended the longest-disconnected session for a new one'
        : 'the session ended';
    if (local !== undefined) this.#endLocal(local, code, reason);
    this.#remote.ended(sid, new TetherError(code, reason));
  }

  // Ends a session in the store, retrying while the store is away.
  #endInStore(sid: string, gen: string, code: ErrorCode): void {
    this.#client
      .call((c) => c.tetherEnd(this.#prefix, sid, this.#instance, gen, code))
      .catch(() => {
        if (this.#closing) return;
        this.#host.scheduler.setTimeout(() => this.#endInStore(sid, gen, code), 1000, true);
      });
  }

  // ---- the sweep ---------------------------------------------------------------------------

  #scheduleSweep(): void {
    if (this.#closing) return;
    // Spread over the instances: none sweeps in step with another.
    const delay = SWEEP_EVERY_MS * (0.75 + Math.random() / 2);
    this.#sweepTimer = this.#host.scheduler.setTimeout(
      () => {
        void this.#sweep().finally(() => this.#scheduleSweep());
      },
      delay,
      true,
    );
    if (this.#remote.size > 0 && this.#pollTimer === undefined) {
      this.#pollTimer = this.#host.scheduler.setTimeout(
        () => {
          this.#pollTimer = undefined;
          void this.#remote.poll().catch(() => {});
        },
        POLL_EVERY_MS,
        true,
      );
    }
  }

  async #sweep(): Promise<void> {
    const { leaseMs } = this.#options;
    await this.#client
      .call((c) =>
        c.tetherSweep(
          this.#prefix,
          this.#instance,
          Date.now(),
          leaseMs,
          SWEEP_GRACE_MS,
          SWEEP_LIMIT,
          this.#client.upForMs() >= leaseMs ? '1' : '0',
        ),
      )
      .catch(() => {});
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function takenOver(): TetherError {
  return new TetherError(ErrorCode.SESSION_TAKEN_OVER, 'another instance took this session');
}

function gone(): TetherError {
  return new TetherError(ErrorCode.CLOSED, 'the session ended');
}
