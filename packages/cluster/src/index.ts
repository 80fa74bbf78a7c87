export { freePort, waitForPort } from './free-port.js';
export { RedisServer, type RedisServerOptions } from './redis-server.js';
export { which } from './which.js';
