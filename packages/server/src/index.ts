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
export type { DashboardOptions } from './dashboard/options.js';
export type {
  AuthContext,
  Authenticate,
  RequestHandler,
  ServerOptions,
  TlsIdentity,
} from './options.js';
export type { PeerSendOptions, PeerSendReceipt, PeerStats } from './peer.js';
export { Peer } from './peer.js';
export type { RedisStoreOptions } from './redis/redis-options.js';
export type { DisconnectInfo, ServerCloseOptions, ServerEvents, ServerStats } from './server.js';
export { TetherServer } from './server.js';
export type { TransferUpdate } from './transfer-watch.js';
export { TransferDirection, TransferState } from './transfer-watch.js';
export type { WebSocketOptions } from './websocket-options.js';
