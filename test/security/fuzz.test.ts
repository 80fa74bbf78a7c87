import { TetherClient } from '@tether/client';
import {
  type ControlFrame,
  DataFlag,
  encodeAck,
  encodeControl,
  encodeData,
  encodeFileChunk,
  encodeHello,
  encodePing,
  encodePong,
  FrameType,
  type HelloBody,
  MAX_U64_SAFE,
  PREFACE,
  PROTOCOL_VERSION,
} from '@tether/protocol';
import type { Peer } from '@tether/server';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cleanupList, delay, startServer, Wire } from './helpers.js';

const defer = cleanupList();

// ---------------------------------------------------------------------------------------------
// What hostile connections send.

const u64 = fc.oneof(
  fc.constantFrom(0, 1, 2, 0xffff_ffff, MAX_U64_SAFE),
  fc.nat({ max: 1000 }),
  fc.integer({ min: 0, max: MAX_U64_SAFE }),
);
const text = fc.string({ unit: 'binary', maxLength: 40 });
const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const transferId = hex(16);
const small = fc.uint8Array({ maxLength: 96 }).map((b) => Buffer.from(b));

// A client id that sometimes collides with the well-behaved client's own.
const GOOD_ID = 'good-client';
const clientId = fc.oneof(fc.constantFrom(GOOD_ID, 'raw', ''), text);

const hello: fc.Arbitrary<HelloBody> = fc.record(
  {
    versions: fc.oneof(
      fc.constant<number[]>([PROTOCOL_VERSION]),
      fc.array(fc.nat({ max: 5 }), { maxLength: 3 }),
    ),
    clientId,
    resumeToken: fc.oneof(
      text,
      hex(8).map((h) => `${h}.${'A'.repeat(43)}`),
    ),
    delivered: u64,
    acked: u64,
    maxFrame: fc.oneof(fc.constant(1 << 20), u64),
    features: fc.array(text, { maxLength: 3 }),
    auth: fc.record(
      { method: fc.oneof(text, fc.constant('hmac-sha256')), proof: text, credentials: fc.json() },
      { requiredKeys: ['method'] },
    ),
  },
  { requiredKeys: ['versions', 'clientId', 'delivered', 'acked', 'maxFrame'] },
);

/** A HELLO the server accepts: version 1, a fresh id, nothing else. */
const goodHello = fc.nat({ max: 1e9 }).map(
  (n): HelloBody => ({
    versions: [PROTOCOL_VERSION],
    clientId: `fuzz-${n}`,
    delivered: 0,
    acked: 0,
    maxFrame: 1 << 20,
  }),
);

const control = (type: ControlFrame['type'], body: fc.Arbitrary<object>): fc.Arbitrary<Buffer> =>
  body.map((b) => encodeControl({ type, body: b } as ControlFrame));

/** Valid-looking frames: valid encodings with random fields, in any direction and state. */
const frame: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.oneof(fc.nat({ max: 4 }), u64),
        fc.constantFrom(0, DataFlag.REQUEST, DataFlag.RESPONSE, DataFlag.RESPONSE | DataFlag.ERROR),
        u64,
        small,
      )
      // Request ids are 1 … 2^53 - 1 on correlated frames (0 is refused: random bytes cover it).
      .map(([seq, flags, requestId, payload]) =>
        encodeData(seq, payload, flags, Math.max(1, requestId)),
      ),
  },
  { weight: 2, arbitrary: u64.map(encodeAck) },
  { weight: 1, arbitrary: u64.map(encodePing) },
  { weight: 1, arbitrary: u64.map(encodePong) },
  {
    weight: 2,
    arbitrary: fc
      // A chunk carries 1 to 256 KiB (an empty one is covered by the raw-bytes arbitraries).
      .tuple(
        transferId,
        u64,
        fc.nat({ max: 0xffff_ffff }),
        small.filter((d) => d.length > 0),
      )
      .map(([id, offset, crc, data]) => encodeFileChunk(id, offset, crc, data)),
  },
  {
    weight: 3,
    arbitrary: fc.oneof(
      hello.map((h) => encodeHello(h)),
      control(
        FrameType.CHALLENGE,
        fc.record({ nonce: text, auth: fc.array(text, { maxLength: 2 }), maxFrame: u64 }),
      ),
      control(
        FrameType.WELCOME,
        fc.record({
          version: u64,
          sessionId: text,
          resumeToken: text,
          resumed: fc.boolean(),
          delivered: u64,
          acked: u64,
          maxFrame: u64,
          pingIntervalMs: u64,
          evictAfterMs: u64,
          sessionTtlMs: u64,
        }),
      ),
      control(FrameType.ERROR, fc.record({ code: text, message: text })),
      control(FrameType.GOAWAY, fc.record({ reason: text, retryAfterMs: u64 })),
      control(
        FrameType.FILE_OFFER,
        fc.record({ id: transferId, name: text, size: u64, sha256: hex(32) }),
      ),
      control(FrameType.FILE_ACCEPT, fc.record({ id: transferId, offset: u64 })),
      control(FrameType.FILE_END, fc.record({ id: transferId })),
      control(FrameType.FILE_COMPLETE, fc.record({ id: transferId, size: u64, sha256: hex(32) })),
      control(
        FrameType.FILE_FAILED,
        fc.record({ id: transferId, code: text, message: text, retryable: fc.boolean() }),
      ),
      control(FrameType.FILE_CANCEL, fc.record({ id: transferId, reason: text })),
      control(FrameType.FILE_STATUS, fc.record({ id: transferId, offset: u64 })),
      // A control type with a body of the wrong shape, or not JSON at all.
      fc
        .tuple(
          fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x33, 0x34, 0x35, 0x36, 0x37),
          fc.oneof(
            fc.json().map((j) => Buffer.from(j)),
            small,
          ),
        )
        .map(([type, body]) => Buffer.concat([header(2 + body.length, type, 0), body])),
    ),
  },
  {
    // A random header (any length, type, flags) and a few body bytes.
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.oneof(fc.nat({ max: 64 }), fc.nat({ max: 0xffff_ffff })),
        fc.nat({ max: 255 }),
        fc.nat({ max: 255 }),
        small,
      )
      .map(([length, type, flags, body]) => Buffer.concat([header(length, type, flags), body])),
  },
);

function header(length: number, type: number, flags: number): Buffer {
  const buf = Buffer.alloc(6);
  buf.writeUInt32BE(length, 0);
  buf[4] = type;
  buf[5] = flags;
  return buf;
}

type Script =
  | { kind: 'bytes'; bytes: Buffer; withPreface: boolean; chunk: number; linger: boolean }
  | {
      kind: 'frames';
      hello: HelloBody | undefined;
      waitWelcome: boolean;
      frames: Buffer[];
      cut: number | undefined;
      chunk: number;
      linger: boolean;
    };

const linger = fc.integer({ min: 0, max: 4 }).map((n) => n === 0); // 1 in 5 waits for the server
const chunk = fc.oneof(fc.constant(1 << 16), fc.integer({ min: 1, max: 64 }));

const script: fc.Arbitrary<Script> = fc.oneof(
  fc.record({
    kind: fc.constant('bytes' as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 512 }).map((b) => Buffer.from(b)),
    withPreface: fc.boolean(),
    chunk,
    linger,
  }),
  fc.record({
    kind: fc.constant('frames' as const),
    hello: fc.option(fc.oneof(goodHello, goodHello, hello), { nil: undefined }),
    waitWelcome: fc.boolean(),
    frames: fc.array(frame, { maxLength: 10 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    chunk,
    linger,
  }),
);

async function writeInChunks(wire: Wire, bytes: Buffer, size: number): Promise<void> {
  for (let at = 0; at < bytes.length && !wire.closed; at += size) {
    wire.write(bytes.subarray(at, at + size));
    if (size < 64) await delay(0);
  }
}

/** Plays one hostile script; resolves once the connection is closed (or throws if it is not). */
async function play(port: number, s: Script): Promise<void> {
  const wire = await Wire.connect(port, defer);
  if (s.kind === 'bytes') {
    await writeInChunks(wire, s.withPreface ? Buffer.concat([PREFACE, s.bytes]) : s.bytes, s.chunk);
  } else {
    const opening =
      s.hello === undefined ? PREFACE : Buffer.concat([PREFACE, encodeHello(s.hello)]);
    wire.write(opening);
    if (s.hello !== undefined && s.waitWelcome) {
      // Into the open state, where the reliable stream and file frames are handled.
      await wire
        .next(
          (f): f is typeof f => f.type === FrameType.WELCOME || f.type === FrameType.ERROR,
          1000,
        )
        .catch(() => undefined);
    }
    let rest = Buffer.concat(s.frames);
    if (s.cut !== undefined && rest.length > 0) rest = rest.subarray(0, s.cut % rest.length);
    await writeInChunks(wire, rest, s.chunk);
  }
  if (s.linger) {
    // Wait for the server to close on its own (protocol error, HELLO or frame deadline).
    await wire.waitClosed(700).catch(() => undefined);
  }
  if (!wire.closed) wire.socket.end();
  await wire.waitClosed(2000);
}

// ---------------------------------------------------------------------------------------------

describe('fuzz - hostile connections next to a well-behaved client', () => {
  it('fuzz - the server never crashes, every bad connection ends closed, the good client loses nothing', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    defer(() => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    });

    const { server, port, errors } = await startServer(defer, {
      helloTimeoutMs: 300,
      frameTimeoutMs: 300,
      sessionTtlMs: 2000,
    });
    // The good pair: the client streams numbers; the server streams its own numbers back, one
    // per message received.
    const atServer: number[] = [];
    const serverSends: Promise<unknown>[] = [];
    let goodPeer: Peer | undefined;
    let serverCount = 0;
    server.on('message', (message, peer) => {
      // Hostile sessions may use the same client id: they are other sessions, never this one.
      if (peer !== goodPeer) return;
      atServer.push(message.json<number>());
      serverSends.push(peer.send(JSON.stringify(serverCount++)));
    });
    const client = new TetherClient({ port, clientId: GOOD_ID });
    defer(() => client.close());
    const atClient: number[] = [];
    client.on('message', (message) => atClient.push(message.json<number>()));
    const states: string[] = [];
    client.on('state', (change) => states.push(change.state));
    await client.connect();
    goodPeer = server.peers.find((p) => p.clientId === GOOD_ID);
    expect(goodPeer).toBeDefined();
    // In-session failures of hostile connections are disconnects, not handshake errors.
    const disconnects: Record<string, number> = {};
    const goodDisconnects: string[] = [];
    server.on('disconnect', (peer, info) => {
      if (peer === goodPeer) goodDisconnects.push(info.code);
      else disconnects[info.code] = (disconnects[info.code] ?? 0) + 1;
    });

    let streaming = true;
    const clientSends: Promise<unknown>[] = [];
    const stream = (async () => {
      for (let i = 0; streaming; i++) {
        clientSends.push(client.send(JSON.stringify(i)));
        await delay(i % 10 === 0 ? 2 : 0);
      }
    })();

    let runs = 0;
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(fc.array(script, { minLength: 1, maxLength: 3 }), async (scripts) => {
        runs++;
        // Several hostile connections at once.
        await Promise.all(scripts.map((s) => play(port, s)));
        expect(uncaught).toEqual([]);
      }),
      { numRuns: 200 },
    );
    const fuzzMs = performance.now() - started;

    streaming = false;
    await stream;
    await Promise.all(clientSends);
    await expect.poll(() => atServer.length).toBe(clientSends.length);
    await Promise.all(serverSends);
    await expect.poll(() => atClient.length).toBe(serverSends.length);

    const codes: Record<string, number> = {};
    for (const error of errors) codes[error.code] = (codes[error.code] ?? 0) + 1;
    console.log(
      `[security figures] fuzz: ${runs} runs in ${Math.round(fuzzMs)} ms; good client sent ${clientSends.length}, received ${atClient.length}; handshake errors by code ${JSON.stringify(codes)}; in-session disconnects by code ${JSON.stringify(disconnects)}`,
    );

    expect(uncaught).toEqual([]);
    // Exactly once, in order, both ways, without the good link ever dropping.
    expect(atServer).toEqual(Array.from({ length: clientSends.length }, (_, i) => i));
    expect(atClient).toEqual(Array.from({ length: serverSends.length }, (_, i) => i));
    expect(states).toEqual(['connecting', 'connected']);
    expect(goodDisconnects).toEqual([]);
    expect(clientSends.length).toBeGreaterThan(100);
    // Every hostile connection is gone; the good one remains.
    await expect.poll(() => server.stats().connections).toBe(1);
    expect(server.stats().inboundBufferedBytes).toBe(0);
    // And the server still takes new clients.
    const late = new TetherClient({ port });
    defer(() => late.close());
    await late.connect();
    const got = new Promise<string>((resolve) =>
      server.on('message', (m, peer) => {
        if (peer.clientId === late.clientId) resolve(m.text());
      }),
    );
    await late.send('still serving');
    expect(await got).toBe('still serving');
  });
});
