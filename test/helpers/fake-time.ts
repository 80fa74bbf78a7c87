import { TetherClient } from '@tether/client';
import { type MemoryTransport, memoryTransportPair, VirtualScheduler } from '@tether/core';
import { TetherServer } from '@tether/server';

type ClientOptions = ConstructorParameters<typeof TetherClient>[0];
type ServerOptions = NonNullable<ConstructorParameters<typeof TetherServer>[0]>;

/**
 * A server and clients in one process, in fake time: every timer runs on one VirtualScheduler
 * and every connection is an in-memory pipe, so timing logic is tested to the millisecond without
 * waiting for it.
 */
export class FakeTime {
  readonly scheduler: VirtualScheduler = new VirtualScheduler();
  /** Each client connection, as [client end, server end], newest last. */
  readonly links: [MemoryTransport, MemoryTransport][] = [];
  readonly #servers: TetherServer[] = [];
  readonly #clients: TetherClient[] = [];

  get now(): number {
    return this.scheduler.now();
  }

  /** Runs deferred callbacks and promise continuations until the process is quiet. */
  async settle(rounds = 30): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      this.scheduler.runDeferred();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Moves time forward `ms`, in steps of `step` ms, letting I/O and promises run between steps. */
  async advance(ms: number, step = 5): Promise<void> {
    const end = this.scheduler.now() + ms;
    while (this.scheduler.now() < end) {
      this.scheduler.advance(Math.min(step, end - this.scheduler.now()));
      await this.settle(3);
    }
  }

  /** Advances in small steps until `predicate` holds; fails after `limitMs` of fake time. */
  async until(predicate: () => boolean, limitMs = 20_000, step = 1): Promise<number> {
    const start = this.scheduler.now();
    await this.settle(3);
    while (!predicate()) {
      if (this.scheduler.now() - start > limitMs) {
        throw new Error(`condition not met within ${limitMs} ms of fake time`);
      }
      this.scheduler.advance(step);
      await this.settle(3);
    }
    return this.scheduler.now();
  }

  /**
   * Waits for `promise` while driving the fake world (nothing moves in fake time unless the test
   * drives it): runs what is due, then moves time 1 ms at a time, up to `limitMs`.
   */
  async wait<T>(promise: Promise<T>, limitMs = 20_000): Promise<T> {
    let settled = false;
    const tracked = promise.finally(() => {
      settled = true;
    });
    tracked.catch(() => {});
    await this.until(() => settled, limitMs);
    return tracked;
  }

  server(options: ServerOptions = {}): TetherServer {
    const server = new TetherServer({ ...options, scheduler: this.scheduler });
    this.#servers.push(server);
    return server;
  }

  /** A client whose every connection attempt opens a pipe to `server` (refused when `down()`). */
  client(server: TetherServer, options: Partial<ClientOptions> = {}): TetherClient {
    const client = new TetherClient({
      port: 1,
      ...options,
      scheduler: this.scheduler,
      transport: async () => {
        if (this.refusing) throw new Error('connection refused (fake)');
        const [clientEnd, serverEnd] = memoryTransportPair(this.scheduler);
        this.links.push([clientEnd, serverEnd]);
        server.accept(serverEnd, { remoteAddress: `memory:${this.links.length}` });
        return clientEnd;
      },
    });
    this.#clients.push(client);
    return client;
  }

  /** While set, client connection attempts fail at once, as to a port nobody listens on. */
  refusing = false;

  /** Resets the newest connection. */
  cut(): void {
    this.links.at(-1)?.[0].destroy();
  }

  async close(): Promise<void> {
    for (const client of this.#clients) void client.close();
    for (const server of this.#servers) void server.close({ drainTimeoutMs: 0 });
    await this.advance(2000, 100);
  }
}
