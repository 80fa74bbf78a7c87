// MQTT.js against an Aedes broker; the receiving application is an in-broker subscription.
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { type ClientOptions, type ServerOptions, type System, Window } from './types.js';

export function mqttSystem(qos: 0 | 1): System {
  return {
    async startServer(options: ServerOptions) {
      const broker = await Aedes.createBroker();
      const reply = (d: Buffer) => {
        broker.publish(
          { cmd: 'publish', topic: 'bench/out', payload: d, qos, retain: false, dup: false },
          () => {},
        );
      };
      await new Promise<void>((resolve) =>
        broker.subscribe(
          'bench/in',
          (packet, cb) => {
            options.handler(packet.payload as Buffer, reply);
            cb();
          },
          resolve,
        ),
      );
      // Aedes leaves Nagle on; with it, QoS 1 round trips stall on delayed ACKs (about 40 ms each).
      const server = net.createServer((socket) => {
        socket.setNoDelay(true);
        broker.handle(socket);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      return {
        port,
        memoryPid: process.pid,
        helpers: [],
        close: () =>
          new Promise<void>((resolve) => {
            broker.close(() => server.close(() => resolve()));
          }),
      };
    },
    async connect(options: ClientOptions) {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${options.port}`, {
        reconnectPeriod: 1000,
      });
      client.on('error', () => {});
      // MQTT.js leaves Nagle on too (see the broker side).
      (client.stream as import('node:net').Socket).setNoDelay?.(true);
      await client.subscribeAsync('bench/out', { qos });
      const window = new Window();
      const publish = (data: Buffer) =>
        new Promise<void>((resolve) => client.publish('bench/in', data, { qos }, () => resolve()));
      return {
        send(data) {
          if (!window.due(data.length)) {
            client.publish('bench/in', data, { qos });
            return undefined;
          }
          return window.push(publish(data));
        },
        async flush() {
          await window.drain();
        },
        onMessage(cb) {
          client.on('message', (_topic, payload) => cb(payload));
        },
        onDead(cb) {
          client.on('offline', () => cb('offline'));
          client.on('close', () => cb('close'));
        },
        close: () => client.endAsync(true),
      };
    },
  };
}
