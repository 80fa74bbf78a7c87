import { EventEmitter } from 'eventemitter3';
import type { Scheduler } from './scheduler.js';
import type { Transport } from './transport.js';

/**
 * One end of an in-memory byte pipe: a {@link Transport} for tests that run a client and a server
 * (or two connections) in one process, in fake time. Bytes written on one end arrive at the other
 * in a deferred callback of the scheduler, as from a network: never inside the writer's call.
 * A paused end holds what arrives (`readableLength`) and the writer's `writableLength` grows
 * past `highWaterMark` (its `write` returns false) until the reader takes it.
 */
export class MemoryTransport extends EventEmitter implements Transport {
  peer!: MemoryTransport;
  destroyed = false;
  /** Bytes this end took in and did not deliver yet (paused, or not yet delivered). */
  readonly #inbox: Uint8Array[] = [];
  #inboxBytes = 0;
  #paused = false;
  #corked = 0;
  #corkedChunks: Uint8Array[] = [];
  #corkedCallbacks: ((error?: Error | null) => void)[] = [];
  #ended = false;
  #peerEnded = false;
  #deliveryQueued = false;
  #wantsDrain = false;
  readonly #scheduler: Scheduler;
  readonly highWaterMark: number;

  constructor(scheduler: Scheduler, highWaterMark: number = 64 * 1024) {
    super();
    this.#scheduler = scheduler;
    this.highWaterMark = highWaterMark;
  }

  /** Bytes written here that the other end has not delivered to its reader yet. */
  get writableLength(): number {
    return this.peer.#inboxBytes;
  }

  get readableLength(): number {
    return this.#paused ? this.#inboxBytes : 0;
  }

  /** `callback` follows in a deferred callback once the chunk is copied (as a socket's). */
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    if (this.destroyed || this.#ended) return false;
    if (this.#corked > 0) {
      this.#corkedChunks.push(chunk);
      if (callback !== undefined) this.#corkedCallbacks.push(callback);
      return true;
    }
    this.peer.#receive(Uint8Array.from(chunk));
    if (callback !== undefined) this.#scheduler.defer(() => callback());
    const room = this.writableLength < this.highWaterMark;
    if (!room) this.#wantsDrain = true;
    return room;
  }

  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked === 0 || --this.#corked > 0) return;
    const chunks = this.#corkedChunks;
    const callbacks = this.#corkedCallbacks;
    this.#corkedChunks = [];
    this.#corkedCallbacks = [];
    if (chunks.length > 0) this.write(Buffer.concat(chunks));
    for (const callback of callbacks) this.#scheduler.defer(() => callback());
  }

  end(chunk?: Uint8Array): void {
    if (this.destroyed || this.#ended) return;
    if (chunk !== undefined) this.write(chunk);
    this.#ended = true;
    this.peer.#peerEnded = true;
    this.peer.#scheduleDelivery();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#scheduler.defer(() => this.emit('close'));
    // The other end sees the connection reset.
    const peer = this.peer;
    if (!peer.destroyed) {
      peer.destroyed = true;
      this.#scheduler.defer(() => peer.emit('close'));
    }
  }

  /** As a socket: bytes wait until there is a `data` listener to take them. */
  // biome-ignore lint/suspicious/noExplicitAny: the signature of eventemitter3's `on`
  override on(event: string | symbol, listener: (...args: any[]) => void, context?: unknown): this {
    super.on(event, listener, context);
    if (event === 'data') this.#scheduleDelivery();
    return this;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#scheduleDelivery();
  }

  #receive(chunk: Uint8Array): void {
    this.#inbox.push(chunk);
    this.#inboxBytes += chunk.length;
    this.#scheduleDelivery();
  }

  #scheduleDelivery(): void {
    if (this.#deliveryQueued) return;
    this.#deliveryQueued = true;
    this.#scheduler.defer(() => {
      this.#deliveryQueued = false;
      this.#deliver();
    });
  }

  #deliver(): void {
    if (this.destroyed) return;
    if (this.listenerCount('data') === 0) return;
    while (!this.#paused && this.#inbox.length > 0) {
      const chunk = this.#inbox.shift() as Uint8Array;
      this.#inboxBytes -= chunk.length;
      this.emit('data', Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      if (this.destroyed) return;
    }
    const writer = this.peer;
    if (writer.#wantsDrain && this.#inboxBytes < writer.highWaterMark) {
      writer.#wantsDrain = false;
      writer.emit('drain');
    }
    if (this.#peerEnded && this.#inbox.length === 0 && !this.#paused) {
      this.#peerEnded = false;
      this.emit('end');
    }
  }
}

/** Two connected in-memory transports (say a client's and a server's end). */
export function memoryTransportPair(
  scheduler: Scheduler,
  highWaterMark?: number,
): [MemoryTransport, MemoryTransport] {
  const a = new MemoryTransport(scheduler, highWaterMark);
  const b = new MemoryTransport(scheduler, highWaterMark);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
