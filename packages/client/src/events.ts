import type { ReceivedFile } from '@tether/files';
import type { ErrorCode, Message, RttStats, TetherError } from '@tether/protocol';
import type { StoreDamage } from './store/client-store.js';

/** States of a client; one `state` event per change. */
export const ClientState = {
  IDLE: 'idle',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  RECONNECTING: 'reconnecting',
  CLOSED: 'closed',
} as const;
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

/** Payload of the `state` event. */
export interface StateChange {
  state: ClientState;
  previous: ClientState;
  /** Why, in words: 'connected', 'connection closed', 'no sign of life for 15012 ms', ... */
  reason: string;
  /** The error behind a change to reconnecting or closed, if any. */
  error?: TetherError;
}

/** Payload of the `reconnecting` event, fired before each wait. */
export interface ReconnectInfo {
  /** Attempt number within this outage, from 1. */
  attempt: number;
  /** How long the client waits before this attempt. */
  delayMs: number;
  reason: string;
}

/** Payload of the `session` event, fired on every WELCOME. */
export interface SessionInfo {
  sessionId: string;
  /** True when the server still had the session: delivery stayed exactly-once. */
  resumed: boolean;
  /**
   * True when a previous session was lost (server restarted or its TTL passed): unacknowledged
   * messages were sent again in the new session and may arrive twice (dedupe by message id).
   */
  lost: boolean;
  previousSessionId: string | undefined;
  /** Messages sent again on this connection. */
  resent: number;
}

/** Payload of the `drop` event (overflow policy 'drop-oldest'). */
export interface DropInfo {
  payload: Buffer;
  reason: 'overflow';
}

/**
 * Payload of the `publishFailed` event: a message from `publish()` ended without being
 * acknowledged by the server.
 */
export interface PublishFailure {
  /** The number `publish()` returned for the message. */
  id: number;
  /** Its seq if it was transmitted (its message id was then `${clientId}:${seq}`), else 0. */
  seq: number;
  /** The payload, as published (a Buffer; a string was encoded as UTF-8). */
  payload: Buffer;
  /** `error.code`: CLOSED, MESSAGE_EXPIRED, MESSAGE_DROPPED, RETRIES_EXHAUSTED, STORE_FAILED ... */
  code: ErrorCode;
  error: TetherError;
}

/** Events of {@link TetherClient}. */
export interface ClientEvents {
  state: (change: StateChange) => void;
  message: (message: Message) => void;
  heartbeat: (rtt: RttStats) => void;
  reconnecting: (info: ReconnectInfo) => void;
  session: (info: SessionInfo) => void;
  drop: (info: DropInfo) => void;
  /**
   * A message from `publish()` ended without an acknowledgement; reported after the call that
   * caused it returned (in a microtask), once per message.
   */
  publishFailed: (failure: PublishFailure) => void;
  /** A file from the server was received, verified by SHA-256 and stored in `downloadDir`. */
  file: (file: ReceivedFile) => void;
  /**
   * Opening the store (the `store` option) found damage and cut it away: fired once per damaged
   * file, right after the constructor returns.
   */
  damage: (info: StoreDamage) => void;
  close: (reason: string) => void;
  error: (error: TetherError) => void;
}
