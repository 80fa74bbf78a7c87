export type { ConnectionOptions, ConnectionOwner, OpenOptions } from './connection.js';
export { Connection } from './connection.js';
export type { DeadlinesOptions, Scheduled } from './deadlines.js';
export { Deadlines } from './deadlines.js';
export { MemoryTransport, memoryTransportPair } from './memory-transport.js';
export type { Scheduler, TimerHandle } from './scheduler.js';
export { schedulerWithClock, systemScheduler, VirtualScheduler } from './scheduler.js';
export { Session } from './session.js';
export type { Transport } from './transport.js';
export { atLeast, port, positive, positiveInteger } from './validate.js';
export type { WebSocketLike, WebSocketTransportOptions } from './websocket-transport.js';
export {
  WEBSOCKET_MAX_MESSAGE,
  WEBSOCKET_SUBPROTOCOL,
  WebSocketClose,
  WebSocketTransport,
} from './websocket-transport.js';
