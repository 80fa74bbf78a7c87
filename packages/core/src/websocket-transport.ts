import { ErrorCode, ProtocolError, TetherError } from '@tether/protocol';
import { EventEmitter } from 'eventemitter3';
import type { Scheduler } from './scheduler.js';
import type { Transport } from './transport.js';

/** The WebSocket subprotocol of Tether (`Sec-WebSocket-Protocol`); the version is the preface's. */
export const WEBSOCKET_SUBPROTOCOL = 'tether.v1';

/**
 * Most stream bytes one WebSocket message carries. A sender packs the byte stream into messages of
 * at most this size (a message may hold several frames or part of one); a receiver may refuse a
 * larger message (close code 1009). It is below the smallest frame limit an endpoint may
 * announce, so it fits every peer before and after the handshake, and it bounds what a WebSocket
 * library holds for one message before the frame decoder sees it.
 */
export const WEBSOCKET_MAX_MESSAGE: number = 16 * 1024;

/** WebSocket close codes the adapter sends (RFC 6455 section 7.4; 4000-4999 are private use). */
export const WebSocketClose = {
  /** Normal closure: our side of the stream ended (`end()`), as a FIN. */
  NORMAL: 1000,
  /** A text message: Tether over WebSocket is binary messages only. */
  UNSUPPORTED_DATA: 1003,
  /** A message larger than the receiver takes. */
  TOO_BIG: 1009,
  /** Closed at once (`destroy()`), as a reset. */
  DESTROYED: 4000,
  /** More arrived while reading was paused than the adapter holds. */
  PAUSED_OVERFLOW: 4001,
} as const;

/**
 * What the adapter uses of a WebSocket: the WHATWG interface, which the browser's global
 * `WebSocket`, Node's global one (22+) and the `ws` package's all implement. `pause`/`resume`
 * (ws) push the peer back through TCP when present; `terminate` (ws) closes at once.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(
    type: 'close',
    listener: (event: { code: number; reason: string; wasClean?: boolean }) => void,
  ): void;
  addEventListener(type: 'error', listener: (event: { error?: unknown }) => void): void;
  pause?(): void;
  resume?(): void;
  terminate?(): void;
}

/** Options of {@link WebSocketTransport}. */
export interface WebSocketTransportOptions {
  /** Timers (the drain poll) and deferred delivery go through this. */
  scheduler: Scheduler;
  /**
   * Bytes of messages held while reading is paused. A WebSocket without `pause` (a browser's)
   * cannot stop its peer: what arrives meanwhile is held, and past this the transport fails
   * (close 4001) rather than hold more. With `pause` (ws) only what was already read arrives.
   */
  maxPausedBytes: number;
  /** `write` returns false (and `drain` follows) while this many bytes wait. Default 64 KiB. */
  highWaterMark?: number;
}

// The WHATWG interface has no 'drain' event: while a writer waits, `bufferedAmount` is polled.
const DRAIN_POLL_MS = 4;
const OPEN = 1;

/**
 * A WebSocket as a {@link Transport}: binary messages carry the byte stream the decoder reads
 * (how the stream is cut into messages does not matter to it). `writableLength` is the socket's
 * `bufferedAmount`, and `drain` is emitted when it falls below the high-water mark after a write
 * returned false. Pausing holds inbound messages (`readableLength`) and, where the socket can,
 * pauses it. A text message is a protocol error: the socket is closed with 1003. A clean close
 * (1000, or no code) is the peer's end of stream, as a FIN; any other close is an error.
 */
export class WebSocketTransport extends EventEmitter implements Transport {
  readonly socket: WebSocketLike;
  readonly #scheduler: Scheduler;
  readonly #maxPausedBytes: number;
  readonly #highWaterMark: number;
  destroyed = false;
  #ended = false;
  #closeEmitted = false;
  #paused = false;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #deliveryQueued = false;
  #corked = 0;
  #corkedChunks: Uint8Array[] = [];
  #corkedBytes = 0;
  #drainTimer: unknown;

  constructor(socket: WebSocketLike, options: WebSocketTransportOptions) {
    super();
    this.socket = socket;
    this.#scheduler = options.scheduler;
    this.#maxPausedBytes = options.maxPausedBytes;
    this.#highWaterMark = options.highWaterMark ?? 64 * 1024;
    // ws (it has terminate) hands over its Buffers as they are; the WHATWG value would copy each
    // message into a new ArrayBuffer.
    socket.binaryType = socket.terminate === undefined ? 'arraybuffer' : 'nodebuffer';
    socket.addEventListener('message', (event) => this.#onMessage(event.data));
    socket.addEventListener('close', (event) => this.#onClose(event.code, event.reason));
    socket.addEventListener('error', (event) => this.#onError(event.error));
  }

  get writableLength(): number {
    return this.socket.bufferedAmount + this.#corkedBytes;
  }

  get readableLength(): number {
    return this.#heldBytes;
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.#ended) return false;
    if (this.#corked > 0) {
      this.#corkedChunks.push(chunk);
      this.#corkedBytes += chunk.length;
      return true;
    }
    this.#send([chunk]);
    return this.#room();
  }

  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked === 0 || --this.#corked > 0) return;
    const chunks = this.#corkedChunks;
    this.#corkedChunks = [];
    this.#corkedBytes = 0;
    if (chunks.length > 0 && !this.destroyed) {
      this.#send(chunks);
      this.#room();
    }
  }

  end(chunk?: Uint8Array): void {
    if (this.destroyed || this.#ended) return;
    if (chunk !== undefined) this.write(chunk);
    this.uncork();
    this.#ended = true;
    this.#close(WebSocketClose.NORMAL, '');
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#stopDrainPoll();
    this.#held = [];
    this.#heldBytes = 0;
    const socket = this.socket;
    if (socket.terminate !== undefined) socket.terminate();
    else this.#close(WebSocketClose.DESTROYED, 'destroyed');
    // As a socket: 'close' follows destroy() asynchronously, once.
    this.#scheduler.defer(() => this.#emitClose());
  }

  pause(): void {
    if (this.#paused || this.destroyed) return;
    this.#paused = true;
    this.socket.pause?.();
  }

  resume(): void {
    if (!this.#paused || this.destroyed) return;
    this.#paused = false;
    // Held messages are delivered after this call, never inside it (as a socket's data), and
    // the socket is read again only once they are: else it could pour in more before them.
    if (this.#held.length > 0) this.#queueDelivery();
    else this.socket.resume?.();
  }

  // Packs the stream into messages of at most WEBSOCKET_MAX_MESSAGE bytes: small chunks are
  // joined, large ones cut (views, not copies).
  #send(chunks: readonly Uint8Array[]): void {
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = (): void => {
      if (pendingBytes === 0) return;
      const message =
        pending.length === 1 ? (pending[0] as Uint8Array) : join(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      try {
        this.socket.send(message);
      } catch (error) {
        // Sent on a socket that is closing: its close event reports the end.
        if (this.socket.readyState === OPEN) throw error;
      }
    };
    for (const chunk of chunks) {
      let rest = chunk;
      while (rest.length > 0) {
        const piece = rest.subarray(0, WEBSOCKET_MAX_MESSAGE - pendingBytes);
        pending.push(piece);
        pendingBytes += piece.length;
        rest = rest.subarray(piece.length);
        if (pendingBytes === WEBSOCKET_MAX_MESSAGE) flush();
      }
    }
    flush();
  }

  // Whether there is room below the high-water mark; if not, polls until there is, then drains.
  #room(): boolean {
    if (this.writableLength < this.#highWaterMark) return true;
    if (this.#drainTimer === undefined) this.#pollDrain();
    return false;
  }

  #pollDrain = (): void => {
    this.#drainTimer = undefined;
    if (this.destroyed || this.#ended) return;
    if (this.writableLength < this.#highWaterMark) {
      this.emit('drain');
      return;
    }
    this.#drainTimer = this.#scheduler.setTimeout(this.#pollDrain, DRAIN_POLL_MS, true);
  };

  #stopDrainPoll(): void {
    if (this.#drainTimer === undefined) return;
    this.#scheduler.clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  #onMessage(data: unknown): void {
    if (this.destroyed) return;
    let chunk: Uint8Array;
    if (data instanceof ArrayBuffer) chunk = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) {
      chunk = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else {
      this.#fail(
        WebSocketClose.UNSUPPORTED_DATA,
        'binary messages only',
        new ProtocolError(
          ErrorCode.UNEXPECTED_FRAME,
          'a text message: Tether over WebSocket carries binary messages only',
        ),
      );
      return;
    }
    if (chunk.length === 0) return;
    if (!this.#paused && this.#held.length === 0 && this.listenerCount('data') > 0) {
      this.emit('data', chunk);
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes > this.#maxPausedBytes) {
      this.#fail(
        WebSocketClose.PAUSED_OVERFLOW,
        'too much data while paused',
        new TetherError(
          ErrorCode.CONNECTION_LOST,
          `more than ${this.#maxPausedBytes} bytes arrived while reading was paused`,
        ),
      );
    }
  }

  /** As a socket: messages wait until there is a `data` listener to take them. */
  // biome-ignore lint/suspicious/noExplicitAny: the signature of eventemitter3's `on`
  override on(event: string | symbol, listener: (...args: any[]) => void, context?: unknown): this {
    super.on(event, listener, context);
    if (event === 'data' && this.#held.length > 0 && !this.#paused) this.#queueDelivery();
    return this;
  }

  // A browser's error event says nothing (its close follows, with a code). The ws package's
  // carries what its receiver refused (a message over maxPayload, a bad frame): it has sent the
  // peer its close frame, and a peer that does not read it would hold the socket until ws's close
  // timeout, so the connection ends now, with the reason.
  #onError(cause: unknown): void {
    const code = (cause as { code?: unknown } | undefined)?.code;
    if (this.destroyed || typeof code !== 'string' || !code.startsWith('WS_ERR_')) return;
    const message = cause instanceof Error ? cause.message : code;
    this.destroyed = true;
    this.#stopDrainPoll();
    this.#held = [];
    this.#heldBytes = 0;
    this.emit(
      'error',
      code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
        ? new ProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            `a WebSocket message over ${WEBSOCKET_MAX_MESSAGE} bytes: ${message}`,
          )
        : new TetherError(ErrorCode.CONNECTION_LOST, `WebSocket error: ${message}`),
    );
    this.#scheduler.defer(() => {
      this.socket.terminate?.();
      this.#emitClose();
    });
  }

  #queueDelivery(): void {
    if (this.#deliveryQueued) return;
    this.#deliveryQueued = true;
    this.#scheduler.defer(() => {
      this.#deliveryQueued = false;
      while (
        !this.#paused &&
        !this.destroyed &&
        this.#held.length > 0 &&
        this.listenerCount('data') > 0
      ) {
        const chunk = this.#held.shift() as Uint8Array;
        this.#heldBytes -= chunk.length;
        this.emit('data', chunk);
      }
      if (!this.#paused && !this.destroyed && this.#held.length === 0) this.socket.resume?.();
    });
  }

  #onClose(code: number, reason: string): void {
    this.#stopDrainPoll();
    if (this.destroyed) {
      this.#emitClose();
      return;
    }
    this.destroyed = true;
    // Messages that came before the close are the peer's last bytes: deliver them first.
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const chunk of held) {
      this.emit('data', chunk);
    }
    if (code === WebSocketClose.NORMAL || code === 1005) this.emit('end');
    else this.emit('error', closeError(code, reason));
    this.#emitClose();
  }

  #fail(code: number, reason: string, error: TetherError): void {
    this.destroyed = true;
    this.#stopDrainPoll();
    this.#held = [];
    this.#heldBytes = 0;
    this.#close(code, reason);
    this.emit('error', error);
    this.#scheduler.defer(() => this.#emitClose());
  }

  #close(code: number, reason: string): void {
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.emit('close');
  }
}

function join(pieces: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

/** The error of a close that was not a clean end of stream. */
function closeError(code: number, reason: string): TetherError {
  const detail = `websocket closed with code ${code}${reason === '' ? '' : ` (${reason})`}`;
  if (code === WebSocketClose.TOO_BIG) {
    return new ProtocolError(ErrorCode.FRAME_TOO_LARGE, `${detail}: a message was too large`);
  }
  if (code === WebSocketClose.UNSUPPORTED_DATA) {
    return new ProtocolError(ErrorCode.UNEXPECTED_FRAME, `${detail}: the peer refused a message`);
  }
  return new TetherError(ErrorCode.CONNECTION_LOST, detail);
}
