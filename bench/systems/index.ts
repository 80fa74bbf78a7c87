import type { SystemName } from '../lib/common.js';
import type { System } from './types.js';

/** Loads only the adapter asked for: a worker process then starts without every peer's code. */
export async function system(name: SystemName): Promise<System> {
  switch (name) {
    case 'tether':
    case 'tether-twin':
    case 'tether-tls':
    case 'tether-watched':
    case 'tether-ws':
      return (await import('./tether.js')).tether({
        tls: name === 'tether-tls',
        watched: name === 'tether-watched',
        webSocket: name === 'tether-ws',
      });
    case 'tether-publish':
      return (await import('./tether-publish.js')).tetherPublish;
    case 'tether-cluster':
      return (await import('./tether-cluster.js')).tetherCluster;
    case 'raw-net':
      return (await import('./raw-net.js')).rawNet;
    case 'raw-net-heartbeat':
      return (await import('./raw-net-heartbeat.js')).rawNetHeartbeat;
    case 'raw-tls':
      return (await import('./raw-tls.js')).rawTls;
    case 'ws':
      return (await import('./ws.js')).ws;
    case 'socket.io':
      return (await import('./socketio.js')).socketIo;
    case 'mqtt-qos0':
    case 'mqtt-qos1':
      return (await import('./mqtt.js')).mqttSystem(name === 'mqtt-qos0' ? 0 : 1);
    case 'nats':
      return (await import('./nats.js')).nats;
  }
}
