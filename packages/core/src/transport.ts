/**
 * The byte duplex a {@link Connection} runs over. `net.Socket` and `tls.TLSSocket` are
 * transports as they are (this is the subset of their API the connection uses); a WebSocket
 * becomes one through a small adapter whose binary messages carry the same byte stream (a
 * message may hold several frames or part of one: the decoder does not care).
 */
export interface Transport {
  /**
   * Queues bytes; false when the caller should wait for `drain` (as `socket.write`). `callback`,
   * as a socket's: called once the transport holds `chunk` no more (written, or dropped). A
   * transport may never call it; the connection then does not write into that memory again.
   */
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  /** Holds writes until `uncork`, so several buffers leave in one system call. */
  cork(): unknown;
  uncork(): unknown;
  /** Closes the sending side after what is queued. */
  end(): unknown;
  /** Writes `chunk` after what is queued, then closes the sending side. */
  end(chunk: Uint8Array): unknown;
  /** Closes at once; queued bytes are discarded. */
  destroy(): unknown;
  /** Stops and restarts `data` events (the peer is pushed back by the transport's flow control). */
  pause(): unknown;
  resume(): unknown;
  readonly destroyed: boolean;
  /** Bytes queued by `write` and not yet handed to the operating system. */
  readonly writableLength: number;
  /** Bytes received and not yet delivered as `data`. */
  readonly readableLength: number;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  /** The peer closed its sending side (FIN, or a WebSocket close). */
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  /** What was queued has been handed on: writers waiting for room may continue. */
  on(event: 'drain', listener: () => void): unknown;
}
