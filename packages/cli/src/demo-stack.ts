import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChaosProxy } from '@tether/chaos';
import { ClientState, ErrorCode, type RttStats, TetherClient } from '@tether/client';
import { TetherServer } from '@tether/server';
import type { DemoContext, FileState } from './demo-context.js';
import { escapeText } from './safe-text.js';
import { formatBytes, formatMs } from './term.js';

// Short heartbeats on both sides, so black holes are found within about a second.
export const PING_INTERVAL_MS = 200;
export const DEAD_AFTER_MS = 1000;

/** The demo's server, as the later steps see it. */
export interface DemoServer {
  port: number;
  /** Indices of the messages the server's application received, in the order it got them. */
  received: number[];
}

/**
 * A server on a free port with the short heartbeat, echoing requests and storing uploads in
 * `dir/uploads`. Each file it stores is recorded in its {@link FileState}.
 */
export async function startServer(demo: DemoContext, files: FileState[]): Promise<DemoServer> {
  const { log } = demo;
  const received: number[] = [];
  const server = new TetherServer({
    port: 0,
    uploadDir: join(demo.dir, 'uploads'),
    pingIntervalMs: PING_INTERVAL_MS,
    evictAfterMs: DEAD_AFTER_MS,
    onRequest: (payload) => payload,
  });
  demo.defer(() => server.close({ drainTimeoutMs: 200 }));
  server.on('message', (message) => {
    received.push(Number(message.text().slice(4)));
  });
  server.on('evict', (_peer, info) =>
    log(`server: evicted peer, silent ${formatMs(info.silentMs)}`),
  );
  server.on('connection', (_peer, info) =>
    log(`server: peer connected${info.resumed ? ', session resumed' : ''}`),
  );
  server.on('file', (file) => {
    const state = files.find((f) => f.name === file.name);
    if (state !== undefined) state.stored = { path: file.path, sha256: file.sha256 };
    log(`server: stored ${file.name} (${formatBytes(file.size)}) sha256 ${file.sha256}`);
  });
  const address = await server.listen();
  return { port: address.port, received };
}

/** The chaos proxy in front of the server: the client connects through it. */
export async function startProxy(demo: DemoContext, serverPort: number): Promise<ChaosProxy> {
  const proxy = new ChaosProxy({
    target: { port: serverPort },
    seed: demo.seed,
    highWaterMark: 64 * 1024,
  });
  demo.defer(() => proxy.stop());
  await proxy.start();
  return proxy;
}

/** A dead link the heartbeat found: during which fault, and how long after it began. */
export interface Detection {
  fault: string;
  ms: number;
}

/** The demo's client and what it observed. */
export interface DemoClient {
  client: TetherClient;
  /** Dead links detected by the heartbeat, in order. */
  detections: Detection[];
  /** The last heartbeat's RTT, and how many heartbeats there were. */
  rtt: RttStats | undefined;
  heartbeats: number;
  /** Marks the moment a fault the heartbeat must detect was switched on. */
  armDetection(fault: string): void;
}

/**
 * A client through the proxy, with the short heartbeat (dead after 1 s) and a fast backoff (50 ms
 * to 500 ms). It logs its states, reconnects and resumed sessions, counts link drops in the
 * middle of each file, and times each dead-link detection from the armed fault. Not yet connected.
 */
export function startClient(demo: DemoContext, proxyPort: number, files: FileState[]): DemoClient {
  const { log } = demo;
  const client = new TetherClient({
    port: proxyPort,
    clientId: 'demo',
    pingIntervalMs: PING_INTERVAL_MS,
    deadAfterMs: DEAD_AFTER_MS,
    connectTimeoutMs: 1000,
    healthyAfterMs: 500,
    backoff: { minDelayMs: 50, maxDelayMs: 500 },
    maxQueuedMessages: demo.total + 100,
  });
  demo.defer(() => client.close());
  let faultStart: number | undefined;
  let faultName = '';
  const observed: DemoClient = {
    client,
    detections: [],
    rtt: client.stats().rtt,
    heartbeats: 0,
    armDetection(fault) {
      faultName = fault;
      faultStart = performance.now();
    },
  };
  client.on('heartbeat', (stats) => {
    observed.rtt = stats;
    observed.heartbeats++;
  });
  client.on('state', (change) => {
    const code = change.error?.code;
    // Reasons and codes can come from the server: printed escaped, as in every command.
    const shown = code ? ` [${escapeText(code)}]` : '';
    log(`client: ${change.previous} -> ${change.state}: ${escapeText(change.reason)}${shown}`);
    if (change.state === ClientState.RECONNECTING) {
      for (const f of files) {
        const committed = f.progress?.bytesCommitted ?? 0;
        if (f.result === undefined && committed > 0 && committed < f.size) f.cuts++;
      }
    }
    if (
      change.state === ClientState.RECONNECTING &&
      code === ErrorCode.HEARTBEAT_TIMEOUT &&
      faultStart !== undefined
    ) {
      const ms = performance.now() - faultStart;
      observed.detections.push({ fault: faultName, ms });
      faultStart = undefined;
      log(`client: dead link (${faultName}) detected ${formatMs(ms)} after the fault`);
    }
  });
  client.on('reconnecting', (info) =>
    log(`client: reconnect attempt ${info.attempt} in ${formatMs(info.delayMs)}`),
  );
  client.on('session', (info) => {
    if (info.resumed) log(`client: session resumed, ${info.resent} messages re-sent`);
  });
  return observed;
}

/** Resolves once the client is connected, or after `timeoutMs` (the checks judge the end). */
export async function connected(client: TetherClient, timeoutMs = 5000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (client.state !== ClientState.CONNECTED && performance.now() < until) await sleep(20);
}
