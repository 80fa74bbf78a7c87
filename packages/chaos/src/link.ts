import { connect, type Socket } from 'node:net';
import { Pipe, type PipeHost } from './pipe.js';
import { deriveSeed, mulberry32 } from './prng.js';
import type { Flow, Toxic } from './toxic.js';

/** After closing a link gracefully (FIN), how long to wait for the peers' FIN before destroying. */
const CLOSE_GRACE_MS = 1000;

/** What a link reports to its proxy. */
export interface LinkHost {
  readonly seed: number;
  forwarded(link: Link, flow: Flow, bytes: number): void;
  dropped(link: Link, flow: Flow, bytes: number): void;
  error(link: Link, error: Error): void;
  closed(link: Link): void;
}

/** Snapshot of one link (one client connection and its connection to the target). */
export interface LinkInfo {
  /** Sequence number of the link, from 1, in accept order. */
  id: number;
  /** The client's address and port as the proxy sees them. */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** Bytes written to the target (upstream) and to the client (downstream). */
  bytes: { upstream: number; downstream: number };
  /**
   * Bytes read and then discarded by toxics, per direction (blackhole, half_open, timeout, drop,
   * past a limit_data limit). Bytes still inside toxics when the link closes are not counted.
   */
  dropped: { upstream: number; downstream: number };
  /**
   * Bytes the proxy holds for this link now, per direction: inside toxics plus queued on the
   * destination socket. Bounded by about twice the high-water mark (backpressure).
   */
  held: { upstream: number; downstream: number };
  /** Ids of the toxics acting on this link (those whose toxicity draw said yes). */
  toxics: string[];
}

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  // After our FIN, Node never emits 'close' for resetAndDestroy(): destroy instead.
  if (socket.writableEnded) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/**
 * One proxied connection: the accepted client socket, a socket to the target, and a pipe for each
 * direction. Half-close is forwarded (both sockets allow half-open): a FIN from one side reaches the
 * other after the data before it. Socket errors never escape: they are reported to the host, and a
 * reset or error on one side resets the other, as a peer would see through a real path.
 */
export class Link {
  readonly id: number;
  readonly client: Socket;
  readonly target: Socket;
  readonly upstream: Pipe;
  readonly downstream: Pipe;
  /** Resolves once both sockets have closed and the link has let go of everything. */
  readonly done: Promise<void>;
  readonly #host: LinkHost;
  readonly #toxics = new Set<string>();
  readonly #bytes = { upstream: 0, downstream: 0 };
  readonly #dropped = { upstream: 0, downstream: 0 };
  readonly #remoteAddress: string | undefined;
  readonly #remotePort: number | undefined;
  #open = 2;
  #closing = false;
  #graceTimer: NodeJS.Timeout | undefined;
  #resolveDone!: () => void;

  constructor(
    id: number,
    client: Socket,
    target: { host: string; port: number },
    highWaterMark: number,
    host: LinkHost,
  ) {
    this.id = id;
    this.#host = host;
    this.client = client;
    this.#remoteAddress = client.remoteAddress;
    this.#remotePort = client.remotePort;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    this.target = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const pipeHost: PipeHost = {
      forwarded: (flow, bytes) => {
        this.#bytes[flow] += bytes;
        this.#host.forwarded(this, flow, bytes);
      },
      dropped: (flow, bytes) => {
        this.#dropped[flow] += bytes;
        this.#host.dropped(this, flow, bytes);
      },
      ended: (_flow, closeLink) => {
        if (closeLink) this.close();
      },
      close: () => this.close(),
      reset: () => this.reset(),
    };
    this.upstream = new Pipe('upstream', this.client, this.target, highWaterMark, pipeHost);
    this.downstream = new Pipe('downstream', this.target, this.client, highWaterMark, pipeHost);

    this.client.setNoDelay(true);
    this.client.on('error', (error) => this.#onError(error, this.target));
    this.client.on('close', this.#onClose);
    this.target.on('error', (error) => this.#onError(error, this.client));
    this.target.on('close', this.#onClose);
    this.target.once('connect', () => {
      this.target.setNoDelay(true);
      if (this.#closing) return;
      this.upstream.start();
      this.downstream.start();
    });
  }

  /**
   * Draws this link's toxicity for the toxic (from its own seeded stream, so the answer depends only
   * on the seed, the link number and the toxic's serial) and installs it if the draw says so.
   */
  addToxic(toxic: Toxic, serial: number): boolean {
    if (this.#closing) return false;
    const seed = this.#host.seed;
    const applies =
      toxic.toxicity >= 1 ||
      (toxic.toxicity > 0 && mulberry32(deriveSeed(seed, this.id, serial))() < toxic.toxicity);
    if (!applies) return false;
    this.#toxics.add(toxic.id);
    if (toxic.direction !== 'downstream') {
      this.upstream.add(toxic, mulberry32(deriveSeed(seed, this.id, serial, 1)));
    }
    if (toxic.direction !== 'upstream') {
      this.downstream.add(toxic, mulberry32(deriveSeed(seed, this.id, serial, 2)));
    }
    return true;
  }

  removeToxic(id: string): void {
    if (!this.#toxics.delete(id)) return;
    this.upstream.remove(id);
    this.downstream.remove(id);
  }

  info(): LinkInfo {
    return {
      id: this.id,
      remoteAddress: this.#remoteAddress,
      remotePort: this.#remotePort,
      bytes: { ...this.#bytes },
      dropped: { ...this.#dropped },
      held: {
        upstream: this.upstream.held + this.target.writableLength,
        downstream: this.downstream.held + this.client.writableLength,
      },
      toxics: [...this.#toxics],
    };
  }

  /**
   * Closes both sides with a FIN after what was already written; data still inside toxics is
   * discarded, and whatever the peers still send is read and dropped (so the kernel does not answer
   * it with a RST). Sockets whose peer does not close in turn are destroyed after a grace period.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#dispose();
    for (const socket of [this.client, this.target]) {
      if (socket.destroyed) continue;
      if (!socket.writableEnded) socket.end();
      socket.resume();
    }
    this.#graceTimer = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
    this.#graceTimer.unref();
  }

  /** Sends a TCP RST to both peers (`socket.resetAndDestroy()`). */
  reset(): void {
    this.#closing = true;
    this.#dispose();
    reset(this.client);
    reset(this.target);
  }

  /** Closes both sockets at once, without waiting for anything. */
  destroy(): void {
    this.#closing = true;
    this.#dispose();
    this.client.destroy();
    this.target.destroy();
  }

  #dispose(): void {
    this.upstream.dispose();
    this.downstream.dispose();
  }

  #onError(error: Error, other: Socket): void {
    this.#host.error(this, error);
    // A reset (or any failure) on one side becomes a reset on the other.
    this.#closing = true;
    this.#dispose();
    reset(other);
  }

  readonly #onClose = (): void => {
    this.#open--;
    if (this.#open > 0) return;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#dispose();
    this.#host.closed(this);
    this.#resolveDone();
  };
}
