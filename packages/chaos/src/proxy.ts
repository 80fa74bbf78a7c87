import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import type { ChaosProxyEvents } from './events.js';
import { Link, type LinkHost, type LinkInfo } from './link.js';
import { randomSeed } from './prng.js';
import { type Flow, resolveToxic, type Toxic, type ToxicDefinition } from './toxic.js';

/** Options of {@link ChaosProxy}. */
export interface ChaosProxyOptions {
  /** Where the proxy listens. Default 127.0.0.1, port 0 (any free port). */
  listen?: { host?: string; port?: number };
  /** Where it connects for each client. Host default 127.0.0.1. */
  target: { host?: string; port: number };
  /**
   * Seed (32-bit unsigned integer) of every random choice: toxicity draws, jitter, slicer sizes.
   * Default: a random one, readable as `proxy.seed`, so a failing run can be replayed.
   */
  seed?: number;
  /**
   * Bytes a direction of a link may hold inside toxics before the proxy stops reading from that
   * side (backpressure). Default 1 MiB.
   */
  highWaterMark?: number;
}

/** Snapshot returned by `stats()`. */
export interface ChaosProxyStats {
  /** Connections accepted since start. */
  connections: number;
  /** Links open now. */
  active: number;
  /** Bytes written to the target (upstream) and to clients (downstream), over all links. */
  bytes: { upstream: number; downstream: number };
  /** Bytes read and then discarded by toxics, per direction, over all links. */
  dropped: { upstream: number; downstream: number };
}

const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

function checkPort(name: string, port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`${name} must be an integer from 0 to 65535, got ${String(port)}`);
  }
  return port;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  // The callback fires once every accepted connection has closed; an error only means the server
  // was not listening, which is just as closed.
  return new Promise((resolve) => {
    if (server === undefined) resolve();
    else server.close(() => resolve());
  });
}

/**
 * A server's 'close' event comes before libuv has released its handle (that happens in the
 * close-callbacks phase at the end of the loop turn). Two check phases later it is surely gone, so
 * `stop()` can promise that nothing is left.
 */
async function handlesReleased(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A fault-injecting TCP proxy: clients connect to it, it connects to the target, and bytes flow
 * through the toxics added at run time. Bytes only: it knows nothing of the protocol on top.
 *
 * ```ts
 * const proxy = new ChaosProxy({ target: { port: 7000 }, seed: 42 });
 * await proxy.start();
 * const id = proxy.addToxic({ type: 'latency', direction: 'downstream', latency: 100 });
 * // connect your app to proxy.port ...
 * proxy.removeToxic(id);
 * await proxy.stop();
 * ```
 */
export class ChaosProxy extends EventEmitter<ChaosProxyEvents> {
  /** The seed in use (given or random): log it, pass it back to replay the same faults. */
  readonly seed: number;
  readonly #listenHost: string;
  readonly #listenPort: number;
  readonly #target: { host: string; port: number };
  readonly #highWaterMark: number;
  readonly #links = new Map<number, Link>();
  readonly #toxics = new Map<string, { toxic: Toxic; serial: number }>();
  readonly #linkHost: LinkHost;
  #server: Server | undefined;
  #listening: Promise<AddressInfo> | undefined;
  #address: AddressInfo | undefined;
  #down = false;
  #stopped = false;
  #toxicSerial = 0;
  #linkSerial = 0;
  #connections = 0;
  #bytes = { upstream: 0, downstream: 0 };
  #dropped = { upstream: 0, downstream: 0 };

  constructor(options: ChaosProxyOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('options must be an object with at least target.port');
    }
    const {
      listen: listenAt = {},
      target,
      seed,
      highWaterMark = DEFAULT_HIGH_WATER_MARK,
    } = options;
    if (typeof target !== 'object' || target === null) {
      throw new TypeError('target must be an object { host?, port }');
    }
    this.#target = {
      host: target.host ?? '127.0.0.1',
      port: checkPort('target.port', target.port),
    };
    this.#listenHost = listenAt.host ?? '127.0.0.1';
    this.#listenPort = checkPort('listen.port', listenAt.port ?? 0);
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff)) {
      throw new TypeError(`seed must be an integer from 0 to 2^32-1, got ${seed}`);
    }
    this.seed = seed ?? randomSeed();
    if (!(Number.isInteger(highWaterMark) && highWaterMark > 0)) {
      throw new TypeError(`highWaterMark must be a positive integer, got ${highWaterMark}`);
    }
    this.#highWaterMark = highWaterMark;
    this.#linkHost = {
      seed: this.seed,
      forwarded: (link: Link, flow: Flow, bytes: number) => {
        this.#bytes[flow] += bytes;
        if (this.listenerCount('forward') > 0) {
          this.emit('forward', { link: link.id, direction: flow, bytes });
        }
      },
      dropped: (_link: Link, flow: Flow, bytes: number) => {
        this.#dropped[flow] += bytes;
      },
      error: (link: Link, error: Error) => this.emit('error', error, link.id),
      closed: (link: Link) => {
        this.#links.delete(link.id);
        this.emit('disconnect', link.info());
      },
    };
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    if (this.#stopped) throw new Error('ChaosProxy: cannot start after stop()');
    if (this.#address !== undefined || this.#listening !== undefined) {
      throw new Error('ChaosProxy: already started');
    }
    this.#address = await this.#listen(this.#listenPort);
    return this.#address;
  }

  /** The port the proxy listens on (kept across `setDown`). Throws before `start()`. */
  get port(): number {
    if (this.#address === undefined) throw new Error('ChaosProxy: not started');
    return this.#address.port;
  }

  /** The bound address, or undefined before `start()`. */
  get address(): AddressInfo | undefined {
    return this.#address;
  }

  /** True while the proxy is down (see `setDown`). */
  get down(): boolean {
    return this.#down;
  }

  /**
   * Installs a toxic on every current link and every future one (each subject to its toxicity
   * draw); returns its id. Throws a TypeError for a bad definition or a duplicate name.
   */
  addToxic(definition: ToxicDefinition): string {
    const name = definition?.name;
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw new TypeError(`toxic name must be a non-empty string, got ${String(name)}`);
    }
    if (name !== undefined && this.#toxics.has(name)) {
      throw new TypeError(`a toxic named ${name} already exists`);
    }
    resolveToxic(definition, '');
    const serial = ++this.#toxicSerial;
    const id = name ?? `${definition.type}-${serial}`;
    const toxic = resolveToxic(definition, id);
    this.#toxics.set(id, { toxic, serial });
    for (const link of this.#links.values()) link.addToxic(toxic, serial);
    return id;
  }

  /**
   * Removes a toxic from every link. What it held (delayed data) moves on at once; data it dropped
   * (blackhole, timeout, half_open, limit_data, drop) stays dropped. Returns false for an unknown id.
   */
  removeToxic(id: string): boolean {
    if (!this.#toxics.delete(id)) return false;
    for (const link of this.#links.values()) link.removeToxic(id);
    return true;
  }

  /** Removes every toxic. */
  clearToxics(): void {
    for (const id of [...this.#toxics.keys()]) this.removeToxic(id);
  }

  /** The toxics installed, in the order they were added, with defaults filled in. */
  get toxics(): Toxic[] {
    return [...this.#toxics.values()].map((entry) => entry.toxic);
  }

  /** Snapshots of the open links, oldest first. */
  get links(): LinkInfo[] {
    return [...this.#links.values()].map((link) => link.info());
  }

  stats(): ChaosProxyStats {
    return {
      connections: this.#connections,
      active: this.#links.size,
      bytes: { ...this.#bytes },
      dropped: { ...this.#dropped },
    };
  }

  /**
   * Down: closes the listener and destroys every link, so new connections are refused by the OS.
   * Up: listens again on the same port. Resolves when the change is complete.
   */
  async setDown(down: boolean): Promise<void> {
    if (this.#address === undefined) throw new Error('ChaosProxy: not started');
    if (this.#stopped || down === this.#down) return;
    this.#down = down;
    if (down) {
      await this.#listening?.catch(() => {});
      const server = this.#server;
      this.#server = undefined;
      await Promise.all([closeServer(server), this.#destroyLinks()]);
      return;
    }
    try {
      await this.#listen(this.#address.port);
    } catch (error) {
      this.#down = true;
      throw error;
    }
  }

  /** Sends a TCP RST to both sides of every open link. */
  resetAll(): void {
    for (const link of this.#links.values()) link.reset();
  }

  /** Closes the listener and every link, clears every timer; resolves when no handle is left. */
  async stop(): Promise<void> {
    this.#stopped = true;
    // A listen in flight would create its handle after we closed: let it finish first.
    await this.#listening?.catch(() => {});
    const server = this.#server;
    this.#server = undefined;
    await Promise.all([closeServer(server), this.#destroyLinks()]);
    await handlesReleased();
  }

  #destroyLinks(): Promise<void> {
    const links = [...this.#links.values()];
    for (const link of links) link.destroy();
    return Promise.all(links.map((link) => link.done)).then(() => undefined);
  }

  async #listen(port: number): Promise<AddressInfo> {
    const server = this.#createServer();
    this.#listening = listen(server, port, this.#listenHost);
    try {
      return await this.#listening;
    } catch (error) {
      if (this.#server === server) this.#server = undefined;
      throw error;
    } finally {
      this.#listening = undefined;
    }
  }

  #createServer(): Server {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      this.#onConnection(socket),
    );
    // Errors while binding reject start()/setDown(); later ones (EMFILE on accept, ...) are reported.
    server.on('error', (error) => {
      if (server.listening) this.emit('error', error, undefined);
    });
    this.#server = server;
    return server;
  }

  #onConnection(socket: Socket): void {
    if (this.#stopped || this.#down) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#connections++;
    const link = new Link(
      ++this.#linkSerial,
      socket,
      this.#target,
      this.#highWaterMark,
      this.#linkHost,
    );
    this.#links.set(link.id, link);
    for (const { toxic, serial } of this.#toxics.values()) link.addToxic(toxic, serial);
    this.emit('connection', link.info());
  }
}
