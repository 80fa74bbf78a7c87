export type { Scheduler, Transport } from '@tether/core';
export type {
  FileOfferInfo,
  ReceivedFile,
  SendFileOptions,
  TransferProgress,
  TransferResult,
} from '@tether/files';
export { Transfer } from '@tether/files';
export type { Payload, RttStats } from '@tether/protocol';
export { ErrorCode, Message, ProtocolError, TetherError } from '@tether/protocol';
export type {
  ClientStats,
  CloseOptions,
  FlushOptions,
  PublishOptions,
  RequestOptions,
  SendOptions,
  SendReceipt,
} from './client.js';
export { TetherClient } from './client.js';
export type {
  ClientEvents,
  DropInfo,
  PublishFailure,
  ReconnectInfo,
  SessionInfo,
  StateChange,
} from './events.js';
export { ClientState } from './events.js';
export type { ClientOptions, StoreOptions } from './options.js';
export { OverflowPolicy, StoreSync } from './options.js';
export type { RestoredMessage, StoreDamage, StoreStats } from './store/client-store.js';
export { DamageReason } from './store/client-store.js';
