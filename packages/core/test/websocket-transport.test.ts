import { ErrorCode } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { VirtualScheduler } from '../src/scheduler.js';
import {
  WEBSOCKET_MAX_MESSAGE,
  WebSocketClose,
  type WebSocketLike,
  WebSocketTransport,
} from '../src/websocket-transport.js';

type Listener = (event: never) => void;

/** A WebSocket as the WHATWG interface shows it, driven by the test. */
class FakeWebSocket implements WebSocketLike {
  binaryType = 'blob';
  bufferedAmount = 0;
  readyState = 1;
  protocol = 'tether.v1';
  readonly sent: Uint8Array[] = [];
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];
  readonly listeners = new Map<string, Listener[]>();
  paused = 0;
  resumed = 0;
  terminated = 0;

  send(data: Uint8Array): void {
    this.sent.push(Uint8Array.from(data));
    this.bufferedAmount += data.length;
  }

  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = 2;
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  fire(type: string, event: object): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event as never);
  }

  message(data: unknown): void {
    this.fire('message', { data });
  }

  closed(code: number, reason = ''): void {
    this.readyState = 3;
    this.fire('close', { code, reason, wasClean: code !== 1006 });
  }
}

class PausableWebSocket extends FakeWebSocket {
  pause(): void {
    this.paused++;
  }
  resume(): void {
    this.resumed++;
  }
  terminate(): void {
    this.terminated++;
  }
}

function harness(socket: FakeWebSocket = new FakeWebSocket(), maxPausedBytes = 1024) {
  const scheduler = new VirtualScheduler();
  const transport = new WebSocketTransport(socket, { scheduler, maxPausedBytes });
  const events: string[] = [];
  const data: Uint8Array[] = [];
  const errors: { code: string }[] = [];
  transport.on('data', (chunk: Uint8Array) => {
    events.push(`data:${chunk.length}`);
    data.push(Uint8Array.from(chunk));
  });
  transport.on('end', () => events.push('end'));
  transport.on('error', (error: { code: string }) => {
    events.push(`error:${error.code}`);
    errors.push(error);
  });
  transport.on('close', () => events.push('close'));
  transport.on('drain', () => events.push('drain'));
  return { socket, scheduler, transport, events, data, errors };
}

function bytes(length: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

describe('websocket transport', () => {
  it('websocket transport - takes binary messages as ArrayBuffers and hands them on as bytes', () => {
    const { socket, data, events } = harness();
    expect(socket.binaryType).toBe('arraybuffer');
    socket.message(bytes(5).buffer);
    const view = bytes(10, 3);
    socket.message(view.subarray(2, 7));
    expect(events).toEqual(['data:5', 'data:5']);
    expect(data[0]).toEqual(bytes(5));
    expect(data[1]).toEqual(view.subarray(2, 7));
  });

  it('websocket transport - messages wait for a data listener, as a socket’s bytes do', () => {
    const scheduler = new VirtualScheduler();
    const socket = new FakeWebSocket();
    const transport = new WebSocketTransport(socket, { scheduler, maxPausedBytes: 1024 });
    socket.message(bytes(6, 1).buffer);
    socket.message(bytes(4, 2).buffer);
    expect(transport.readableLength).toBe(10);
    const got: Uint8Array[] = [];
    transport.on('data', (chunk: Uint8Array) => got.push(Uint8Array.from(chunk)));
    socket.message(bytes(2, 3).buffer);
    expect(got).toEqual([]);
    scheduler.runDeferred();
    expect(got).toEqual([bytes(6, 1), bytes(4, 2), bytes(2, 3)]);
  });

  it('websocket transport - packs the stream into messages of at most 16 KiB, small writes joined under cork', () => {
    const { socket, transport } = harness();
    const big = bytes(WEBSOCKET_MAX_MESSAGE * 2 + 100, 1);
    transport.write(big);
    expect(socket.sent.map((m) => m.length)).toEqual([
      WEBSOCKET_MAX_MESSAGE,
      WEBSOCKET_MAX_MESSAGE,
      100,
    ]);
    socket.sent.length = 0;
    socket.bufferedAmount = 0;
    const small = [bytes(10, 2), bytes(20, 3), bytes(WEBSOCKET_MAX_MESSAGE, 4), bytes(7, 5)];
    transport.cork();
    for (const chunk of small) transport.write(chunk);
    expect(socket.sent).toHaveLength(0);
    expect(transport.writableLength).toBe(WEBSOCKET_MAX_MESSAGE + 37);
    transport.uncork();
    expect(socket.sent.map((m) => m.length)).toEqual([WEBSOCKET_MAX_MESSAGE, 37]);
    expect(concat(socket.sent)).toEqual(concat(small));
  });

  it('websocket transport - a text message is a protocol error: close 1003, error, close once', () => {
    const { socket, scheduler, events, transport } = harness();
    socket.message('hello');
    expect(socket.closes).toEqual([
      { code: WebSocketClose.UNSUPPORTED_DATA, reason: 'binary messages only' },
    ]);
    expect(events).toEqual([`error:${ErrorCode.UNEXPECTED_FRAME}`]);
    expect(transport.destroyed).toBe(true);
    socket.message(bytes(3).buffer);
    socket.closed(WebSocketClose.UNSUPPORTED_DATA);
    scheduler.runDeferred();
    expect(events).toEqual([`error:${ErrorCode.UNEXPECTED_FRAME}`, 'close']);
  });

  it('websocket transport - pausing holds messages and pauses the socket; resume delivers them after the call', () => {
    const { socket, scheduler, transport, events, data } = harness(new PausableWebSocket());
    transport.pause();
    expect((socket as PausableWebSocket).paused).toBe(1);
    socket.message(bytes(100, 1).buffer);
    socket.message(bytes(50, 2).buffer);
    expect(events).toEqual([]);
    expect(transport.readableLength).toBe(150);
    transport.resume();
    // Never inside resume(): a message arriving before the delivery (ws had read it already)
    // queues behind the held ones; the socket is resumed once they are out.
    socket.message(bytes(10, 3).buffer);
    expect(events).toEqual([]);
    expect((socket as PausableWebSocket).resumed).toBe(0);
    scheduler.runDeferred();
    expect((socket as PausableWebSocket).resumed).toBe(1);
    expect(events).toEqual(['data:100', 'data:50', 'data:10']);
    expect(data[2]).toEqual(bytes(10, 3));
    expect(transport.readableLength).toBe(0);
  });

  it('websocket transport - the socket is read again only once the held messages are delivered', () => {
    const { socket, scheduler, transport, events } = harness(new PausableWebSocket(), 1000);
    transport.pause();
    socket.message(bytes(600).buffer);
    transport.resume();
    // Not yet: a socket resumed now would pour in more before the held ones are out.
    expect((socket as PausableWebSocket).resumed).toBe(0);
    scheduler.runDeferred();
    expect(events).toEqual(['data:600']);
    expect((socket as PausableWebSocket).resumed).toBe(1);
    // Paused again while delivering (a turn's budget spent): the socket stays paused.
    transport.pause();
    socket.message(bytes(300).buffer);
    socket.message(bytes(300).buffer);
    transport.on('data', () => transport.pause());
    transport.resume();
    scheduler.runDeferred();
    expect(events).toEqual(['data:600', 'data:300']);
    expect((socket as PausableWebSocket).resumed).toBe(1);
    expect(transport.readableLength).toBe(300);
  });

  it('websocket transport - more than maxPausedBytes held while paused fails the transport (close 4001)', () => {
    const { socket, scheduler, transport, events } = harness(new FakeWebSocket(), 1000);
    transport.pause();
    socket.message(bytes(600).buffer);
    expect(events).toEqual([]);
    socket.message(bytes(600).buffer);
    expect(socket.closes.at(-1)?.code).toBe(WebSocketClose.PAUSED_OVERFLOW);
    expect(events).toEqual([`error:${ErrorCode.CONNECTION_LOST}`]);
    expect(transport.readableLength).toBe(0);
    scheduler.runDeferred();
    expect(events.at(-1)).toBe('close');
  });

  it('websocket transport - write reports no room past the high-water mark and drains when bufferedAmount falls', () => {
    const { socket, scheduler, transport, events } = harness();
    expect(transport.write(bytes(32 * 1024))).toBe(true);
    expect(transport.write(bytes(32 * 1024))).toBe(false);
    expect(transport.writableLength).toBe(64 * 1024);
    scheduler.advance(50);
    expect(events).toEqual([]);
    socket.bufferedAmount = 70_000;
    scheduler.advance(50);
    expect(events).toEqual([]);
    socket.bufferedAmount = 1000;
    scheduler.advance(10);
    expect(events).toEqual(['drain']);
    // Nothing more to poll for.
    expect(scheduler.pending).toBe(0);
  });

  it('websocket transport - a clean close is the end of the stream; others are errors', () => {
    const clean = harness();
    clean.socket.message(bytes(4).buffer);
    clean.socket.closed(1000);
    expect(clean.events).toEqual(['data:4', 'end', 'close']);

    const dropped = harness();
    dropped.socket.closed(1006);
    expect(dropped.events).toEqual([`error:${ErrorCode.CONNECTION_LOST}`, 'close']);

    const tooBig = harness();
    tooBig.socket.closed(1009, 'Max payload size exceeded');
    expect(tooBig.events).toEqual([`error:${ErrorCode.FRAME_TOO_LARGE}`, 'close']);
  });

  it('websocket transport - messages held while paused are delivered before the close', () => {
    const { socket, transport, events } = harness();
    transport.pause();
    socket.message(bytes(8).buffer);
    socket.closed(1000);
    expect(events).toEqual(['data:8', 'end', 'close']);
  });

  it('websocket transport - a ws receiver error ends the transport at once; a browser error waits for the close', () => {
    const ws = harness(new PausableWebSocket());
    const tooBig = Object.assign(new Error('Max payload size exceeded'), {
      code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
    });
    ws.socket.fire('error', { error: tooBig });
    expect(ws.events).toEqual([`error:${ErrorCode.FRAME_TOO_LARGE}`]);
    expect(ws.transport.destroyed).toBe(true);
    ws.scheduler.runDeferred();
    expect((ws.socket as PausableWebSocket).terminated).toBe(1);
    expect(ws.events).toEqual([`error:${ErrorCode.FRAME_TOO_LARGE}`, 'close']);

    const browser = harness();
    browser.socket.fire('error', {});
    expect(browser.events).toEqual([]);
    browser.socket.closed(1006);
    expect(browser.events).toEqual([`error:${ErrorCode.CONNECTION_LOST}`, 'close']);
  });

  it('websocket transport - end sends what is queued, then closes with 1000', () => {
    const { socket, transport } = harness();
    transport.end(bytes(3));
    expect(socket.sent).toEqual([bytes(3)]);
    expect(socket.closes).toEqual([{ code: WebSocketClose.NORMAL, reason: '' }]);
    expect(transport.write(bytes(1))).toBe(false);
    expect(socket.sent).toHaveLength(1);
  });

  it('websocket transport - destroy terminates where it can, else closes with 4000; close is emitted once', () => {
    const ws = harness(new PausableWebSocket());
    // ws hands over its Buffers as they are (no copy into an ArrayBuffer per message).
    expect(ws.socket.binaryType).toBe('nodebuffer');
    ws.transport.destroy();
    ws.transport.destroy();
    expect((ws.socket as PausableWebSocket).terminated).toBe(1);
    ws.socket.closed(1006);
    ws.scheduler.runDeferred();
    expect(ws.events).toEqual(['close']);

    const browser = harness();
    browser.transport.destroy();
    expect(browser.socket.closes).toEqual([
      { code: WebSocketClose.DESTROYED, reason: 'destroyed' },
    ]);
    browser.scheduler.runDeferred();
    browser.socket.message(bytes(2).buffer);
    browser.socket.closed(4000);
    expect(browser.events).toEqual(['close']);
  });
});
