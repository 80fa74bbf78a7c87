import { timingSafeEqual } from 'node:crypto';
import type { Scheduler } from '@tether/core';
import { ErrorCode, TetherError } from '@tether/protocol';
import type { PeerSession } from './peer-session.js';

/** Why a session left the store: its `expire` reason and the error its pending sends get. */
export interface SessionEnd {
  reason: string;
  error: TetherError | undefined;
}

/**
 * Where the server keeps its sessions: looked up by resume token, bounded by the session caps,
 * kept for `sessionTtlMs` while disconnected. The stream state of each session goes through its
 * {@link SessionLog}; this is the index of sessions. Calls may return promises, so a store shared
 * by several server instances fits behind it; the in-memory store answers at once.
 */
export interface SessionStore {
  /** Sessions kept, connected or waiting for a resume. */
  readonly size: number;
  /** Every session kept. */
  values(): IterableIterator<PeerSession>;
  /**
   * The live session `token` resumes, if it belongs to this client id and identity (a token only
   * resumes for the identity, and client id, that opened the session).
   */
  find(
    token: string,
    clientId: string,
    identity: string,
  ): PeerSession | undefined | Promise<PeerSession | undefined>;
  /**
   * Makes room under the caps for a new session of `identity`, ending the sessions that must go;
   * returns the refusal (TOO_MANY_SESSIONS) when every session in the way is connected.
   */
  makeRoom(identity: string): TetherError | undefined | Promise<TetherError | undefined>;
  /**
   * Keeps a new session; a shared store may refuse it here (TOO_MANY_SESSIONS: its caps are
   * checked with the add, atomically).
   */
  add(session: PeerSession): TetherError | undefined | Promise<TetherError | undefined>;
  /** The session lost its connection: it waits for a resume until the TTL. */
  disconnected(session: PeerSession): void;
  /** The session's client is back. */
  resumed(session: PeerSession): void;
  /** Forgets the session (ended by `error`); returns false when it was not kept. */
  remove(session: PeerSession, error?: TetherError): boolean;
}

/** Settings of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  scheduler: Scheduler;
  sessionTtlMs: number;
  maxSessions: number;
  maxSessionsPerIdentity: number;
  /** A session the store ends by itself (TTL passed, replaced under a cap). */
  ended(session: PeerSession, end: SessionEnd): void;
}

/**
 * Sessions in this process's memory: the default, for a single server. A session disconnected
 * the longest is the first to go when a cap is reached.
 */
export class MemorySessionStore implements SessionStore {
  readonly #options: MemorySessionStoreOptions;
  readonly #byId = new Map<string, PeerSession>();
  /** The newest session of each client id (`sendTo`). */
  readonly #byClient = new Map<string, PeerSession>();
  /**
   * Sessions of each identity, oldest first (the per-identity cap). An identity with one session
   * (each client its own, the usual case) maps to it alone: a Set each would cost 190 bytes of
   * heap per session.
   */
  readonly #byIdentity = new Map<string, PeerSession | Set<PeerSession>>();
  /** Disconnected sessions, longest disconnected first. */
  readonly #idle = new Set<PeerSession>();

  constructor(options: MemorySessionStoreOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#byId.size;
  }

  values(): IterableIterator<PeerSession> {
    return this.#byId.values();
  }

  // Tokens are `${sessionId}.${secret}`: the id finds the session, the secret is compared in
  // constant time.
  find(token: string, clientId: string, identity: string): PeerSession | undefined {
    const dot = token.indexOf('.');
    const session = dot > 0 ? this.#byId.get(token.slice(0, dot)) : undefined;
    if (session === undefined || session.clientId !== clientId || session.identity !== identity) {
      return undefined;
    }
    return tokensEqual(session.resumeToken, token) ? session : undefined;
  }

  makeRoom(identity: string): TetherError | undefined {
    const { maxSessions, maxSessionsPerIdentity, ended } = this.#options;
    const own = this.#sessionsOf(identity);
    if (own.length >= maxSessionsPerIdentity) {
      const oldest = own.find((session) => session.connection === undefined);
      if (oldest === undefined) {
        return tooManySessions(`${own.length} sessions of this identity are connected`);
      }
      this.remove(oldest);
      ended(oldest, {
        reason: 'session limit of its identity reached',
        error: tooManySessions('a newer session of the same identity took its place'),
      });
    }
    if (this.#byId.size >= maxSessions) {
      const oldest = this.#idle.values().next().value;
      if (oldest === undefined) return tooManySessions('every session is connected');
      this.remove(oldest);
      ended(oldest, {
        reason: 'session limit reached',
        error: tooManySessions('the server ended the longest-disconnected session for a new one'),
      });
    }
    return undefined;
  }

  add(session: PeerSession): undefined {
    this.#byId.set(session.id, session);
    this.#byClient.set(session.clientId, session);
    const own = this.#byIdentity.get(session.identity);
    if (own === undefined) this.#byIdentity.set(session.identity, session);
    else if (own instanceof Set) own.add(session);
    else if (own !== session) this.#byIdentity.set(session.identity, new Set([own, session]));
    return undefined;
  }

  // The sessions of `identity`, oldest first.
  #sessionsOf(identity: string): PeerSession[] {
    const own = this.#byIdentity.get(identity);
    if (own === undefined) return [];
    return own instanceof Set ? [...own] : [own];
  }

  /** The newest session of `clientId`, if it lives. */
  newest(clientId: string): PeerSession | undefined {
    return this.#byClient.get(clientId);
  }

  disconnected(session: PeerSession): void {
    if (!this.#byId.has(session.id)) return;
    this.#idle.add(session);
    const { scheduler, sessionTtlMs, ended } = this.#options;
    scheduler.clearTimeout(session.ttlTimer);
    session.ttlTimer = scheduler.setTimeout(() => {
      if (this.remove(session)) ended(session, { reason: 'session TTL passed', error: undefined });
    }, sessionTtlMs);
  }

  resumed(session: PeerSession): void {
    this.#idle.delete(session);
    this.#options.scheduler.clearTimeout(session.ttlTimer);
    session.ttlTimer = undefined;
  }

  remove(session: PeerSession): boolean {
    if (!this.#byId.delete(session.id)) return false;
    if (this.#byClient.get(session.clientId) === session) this.#byClient.delete(session.clientId);
    this.resumed(session);
    const own = this.#byIdentity.get(session.identity);
    if (own === session) this.#byIdentity.delete(session.identity);
    else if (own instanceof Set) {
      own.delete(session);
      if (own.size === 1)
        this.#byIdentity.set(session.identity, own.values().next().value as PeerSession);
    }
    return true;
  }
}

function tooManySessions(message: string): TetherError {
  return new TetherError(ErrorCode.TOO_MANY_SESSIONS, message);
}

/** Compares two resume tokens in constant time. */
export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
