import { type ClientOptions, TetherClient } from '@tether/client';
import {
  authProof,
  type ErrorBody,
  ErrorCode,
  FrameType,
  HMAC_AUTH_METHOD,
  PREFACE,
  PREFACE_SIZE,
  TetherError,
} from '@tether/protocol';
import type { ServerOptions } from '@tether/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type TestPki } from './certs.js';
import { cleanupList, delay, ofType, RecordingForwarder, startServer, Wire } from './helpers.js';

const defer = cleanupList();

// The hook's type (not exported by @tether/server under its own name).
type Authenticate = NonNullable<ServerOptions['authenticate']>;
let pki: TestPki;

beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.remove());

const SECRET = 'correct horse battery staple / s3cr3t-0x5EC';
const BOUNDED: Partial<ClientOptions> = { retries: 2, backoff: { minDelayMs: 10, maxDelayMs: 20 } };

function newClient(options: ClientOptions): TetherClient {
  const client = new TetherClient(options);
  defer(() => client.close());
  return client;
}

async function refusal(client: TetherClient): Promise<TetherError> {
  const outcome = await client.connect().then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome === undefined) throw new Error('connect() resolved: the connection was accepted');
  expect(outcome).toBeInstanceOf(TetherError);
  return outcome as TetherError;
}

/** Connects a raw client and waits for the server's CHALLENGE; returns it with its nonce. */
async function challenged(port: number): Promise<{ wire: Wire; nonce: string; auth: string[] }> {
  const wire = await Wire.connect(port, defer);
  const challenge = await wire.next(ofType(FrameType.CHALLENGE));
  return { wire, nonce: challenge.body.nonce, auth: challenge.body.auth };
}

/** The first frame after the preface in `bytes` (a client's upstream), as raw bytes. */
function firstFrame(bytes: Buffer): Buffer {
  expect(bytes.subarray(0, PREFACE_SIZE)).toEqual(PREFACE);
  const length = bytes.readUInt32BE(PREFACE_SIZE);
  return bytes.subarray(PREFACE_SIZE, PREFACE_SIZE + 4 + length);
}

describe('auth - shared secret (HMAC challenge)', () => {
  it('auth - the right secret is accepted, as text or as bytes', async () => {
    const { server, port } = await startServer(defer, { secret: SECRET });
    const client = newClient({ port, secret: SECRET });
    await client.connect();
    expect(server.stats().sessions).toBe(1);
    const bytes = Buffer.from(SECRET, 'utf8');
    const binary = newClient({ port, secret: new Uint8Array(bytes) });
    await binary.connect();
    expect(server.stats().sessions).toBe(2);
    // The server asks for the method in its CHALLENGE, with a fresh 32-byte nonce.
    const { nonce, auth } = await challenged(port);
    expect(auth).toEqual([HMAC_AUTH_METHOD]);
    expect(Buffer.from(nonce, 'base64')).toHaveLength(32);
  });

  it('auth - a wrong secret is refused with AUTH_FAILED and not retried', async () => {
    const { server, port, errors } = await startServer(defer, {
      secret: SECRET,
      authFailureDelayMs: 20,
    });
    const client = newClient({ port, secret: 'not the secret' });
    const states: string[] = [];
    client.on('state', (change) => states.push(change.state));
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.AUTH_FAILED);
    expect(client.state).toBe('closed');
    // Long enough for a retry at the default backoff (100 ms) to have shown up.
    await delay(400);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.AUTH_FAILED]);
    expect(states).toEqual(['connecting', 'closed']);
    expect(server.stats()).toMatchObject({ sessions: 0, connections: 0, handshakeFailures: 1 });
  });

  it('auth - a client without the secret (no proof) is refused', async () => {
    const { port, errors } = await startServer(defer, { secret: SECRET, authFailureDelayMs: 0 });
    const client = newClient({ port, ...BOUNDED });
    expect((await refusal(client)).code).toBe(ErrorCode.AUTH_FAILED);
    // Raw: no auth at all, a method it did not offer, the right method without a proof.
    for (const auth of [undefined, { method: 'none' }, { method: HMAC_AUTH_METHOD }]) {
      const { wire } = await challenged(port);
      wire.hello(auth === undefined ? { clientId: 'raw' } : { clientId: 'raw', auth });
      expect((await wire.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.AUTH_FAILED);
      await wire.waitClosed();
    }
    expect(errors.map((e) => e.code)).toEqual(Array(4).fill(ErrorCode.AUTH_FAILED));
  });

  it('auth - a proof made for one client id does not pass for another', async () => {
    const { port } = await startServer(defer, { secret: SECRET, authFailureDelayMs: 0 });
    const { wire, nonce } = await challenged(port);
    wire.hello({
      clientId: 'mallory',
      auth: { method: HMAC_AUTH_METHOD, proof: authProof(SECRET, nonce, 'alice') },
    });
    expect((await wire.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.AUTH_FAILED);
    // Control: the same construction with the matching id is accepted.
    const good = await challenged(port);
    good.wire.hello({
      clientId: 'alice',
      auth: { method: HMAC_AUTH_METHOD, proof: authProof(SECRET, good.nonce, 'alice') },
    });
    await good.wire.next(ofType(FrameType.WELCOME));
  });

  it('auth - the secret never appears in any byte either side sends', async () => {
    const { server, port } = await startServer(defer, { secret: SECRET });
    const forwarder = new RecordingForwarder(port);
    await forwarder.start();
    defer(() => forwarder.stop());
    const client = newClient({ port: forwarder.port, secret: SECRET, clientId: 'observed' });
    const sessions: boolean[] = [];
    client.on('session', (info) => sessions.push(info.resumed));
    await client.connect();
    await client.send('first');
    // A reconnect: a second HELLO with a second proof.
    server.peers[0]?.disconnect();
    await expect.poll(() => sessions).toEqual([false, true]);
    await client.send('second');
    const captured = forwarder.all;
    expect(forwarder.links).toHaveLength(2);
    expect(captured.length).toBeGreaterThan(100);
    const secretBytes = Buffer.from(SECRET, 'utf8');
    for (const form of [
      secretBytes,
      Buffer.from(secretBytes.toString('base64')),
      Buffer.from(secretBytes.toString('base64url')),
      Buffer.from(secretBytes.toString('hex')),
      Buffer.from(SECRET.slice(0, 12)),
    ]) {
      expect(captured.includes(form)).toBe(false);
    }
    // What did cross: a proof over this connection's nonce, nothing else secret.
    for (const link of forwarder.links) {
      const hello = JSON.parse(firstFrame(Buffer.concat(link.upstream)).subarray(6).toString());
      const challengeFrame = firstFrame(Buffer.concat(link.downstream));
      const nonce = JSON.parse(challengeFrame.subarray(6).toString()).nonce as string;
      expect(hello.auth).toEqual({
        method: HMAC_AUTH_METHOD,
        proof: authProof(SECRET, nonce, 'observed'),
      });
    }
  });

  it('auth - a captured HELLO replayed on a new connection is refused', async () => {
    const { port, errors } = await startServer(defer, { secret: SECRET, authFailureDelayMs: 0 });
    const forwarder = new RecordingForwarder(port);
    await forwarder.start();
    defer(() => forwarder.stop());
    const client = newClient({ port: forwarder.port, secret: SECRET, clientId: 'victim' });
    await client.connect();
    // The victim's HELLO as an observer captured it: it was valid for nonce N1.
    const captured = firstFrame(Buffer.concat(forwarder.links[0]?.upstream ?? []));
    expect(captured[4]).toBe(FrameType.HELLO);
    // Replayed byte for byte on a new connection, which has its own nonce N2.
    const { wire, nonce } = await challenged(port);
    const firstNonce = JSON.parse(
      firstFrame(Buffer.concat(forwarder.links[0]?.downstream ?? []))
        .subarray(6)
        .toString(),
    ).nonce;
    expect(nonce).not.toBe(firstNonce);
    wire.write(Buffer.concat([PREFACE, captured]));
    expect((await wire.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.AUTH_FAILED);
    await wire.waitClosed();
    // Replayed again while the victim is still connected: same answer.
    const again = await challenged(port);
    again.wire.write(Buffer.concat([PREFACE, captured]));
    expect((await again.wire.next(ofType(FrameType.ERROR))).body.code).toBe(ErrorCode.AUTH_FAILED);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.AUTH_FAILED, ErrorCode.AUTH_FAILED]);
    expect(client.state).toBe('connected');
  });

  it('auth - nonces are fresh for every connection', async () => {
    const { port } = await startServer(defer, { secret: SECRET });
    const nonces = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const { wire, nonce } = await challenged(port);
      nonces.add(nonce);
      wire.destroy();
    }
    expect(nonces.size).toBe(30);
  });
});

describe('auth - refusals', () => {
  const DELAY = 200;

  it('auth - wrong secret, missing auth, hook refusal and hook error all answer after the fixed delay, identically', async () => {
    const { port } = await startServer(defer, {
      secret: SECRET,
      authFailureDelayMs: DELAY,
      authenticate: (hello) => {
        const credentials = hello.auth?.credentials;
        if (credentials === 'throw') throw new Error('hook exploded: internal detail');
        return credentials === 'good';
      },
    });
    const proof = (nonce: string): string => authProof(SECRET, nonce, 'raw');
    const cases: Record<string, (nonce: string) => Parameters<Wire['hello']>[0]> = {
      wrongSecret: (nonce) => ({
        auth: { method: HMAC_AUTH_METHOD, proof: authProof('wrong', nonce, 'raw') },
      }),
      missingAuth: () => ({}),
      hookSaysNo: (nonce) => ({
        auth: { method: HMAC_AUTH_METHOD, proof: proof(nonce), credentials: 'bad' },
      }),
      hookThrows: (nonce) => ({
        auth: { method: HMAC_AUTH_METHOD, proof: proof(nonce), credentials: 'throw' },
      }),
    };
    const outcomes: Record<string, { elapsed: number; body: ErrorBody }> = {};
    for (const [name, hello] of Object.entries(cases)) {
      const { wire, nonce } = await challenged(port);
      const sentAt = performance.now();
      wire.hello({ clientId: 'raw', ...hello(nonce) });
      const error = await wire.next(ofType(FrameType.ERROR));
      outcomes[name] = { elapsed: performance.now() - sentAt, body: error.body };
      await wire.waitClosed();
    }
    const bodies = Object.values(outcomes).map((o) => o.body);
    for (const body of bodies) expect(body).toEqual(bodies[0]);
    expect(bodies[0]?.code).toBe(ErrorCode.AUTH_FAILED);
    expect(JSON.stringify(bodies[0])).not.toMatch(/hook|secret|proof|credential|exploded/i);
    const elapsed = Object.values(outcomes).map((o) => o.elapsed);
    for (const ms of elapsed) {
      expect(ms).toBeGreaterThanOrEqual(DELAY - 1);
      expect(ms).toBeLessThan(DELAY + 250);
    }
    expect(Math.max(...elapsed) - Math.min(...elapsed)).toBeLessThan(100);
    // Control: a good HELLO is answered at once.
    const { wire, nonce } = await challenged(port);
    const sentAt = performance.now();
    wire.hello({
      clientId: 'raw',
      auth: { method: HMAC_AUTH_METHOD, proof: proof(nonce), credentials: 'good' },
    });
    await wire.next(ofType(FrameType.WELCOME));
    expect(performance.now() - sentAt).toBeLessThan(DELAY);
  });

  it('auth - a refused HELLO closes the socket after the ERROR', async () => {
    const { server, port } = await startServer(defer, { secret: SECRET, authFailureDelayMs: 50 });
    const { wire } = await challenged(port);
    wire.hello({ clientId: 'raw' });
    await wire.next(ofType(FrameType.ERROR));
    await wire.waitClosed(2000);
    expect(server.stats()).toMatchObject({ connections: 0, sessions: 0 });
  });
});

describe('auth - hook and credentials', () => {
  it('auth - credentials() is called again on every reconnect and the hook sees each fresh value', async () => {
    const seen: unknown[] = [];
    const { server, port } = await startServer(defer, {
      authenticate: (hello) => {
        seen.push(hello.auth?.credentials);
        return typeof hello.auth?.credentials === 'string';
      },
    });
    let calls = 0;
    const client = newClient({
      port,
      credentials: async () => `token-${++calls}`,
      backoff: { minDelayMs: 10, maxDelayMs: 20 },
    });
    const sessions: boolean[] = [];
    client.on('session', (info) => sessions.push(info.resumed));
    await client.connect();
    for (let cut = 0; cut < 2; cut++) {
      server.peers[0]?.disconnect();
      await expect.poll(() => sessions.length).toBe(cut + 2);
    }
    expect(calls).toBe(3);
    expect(seen).toEqual(['token-1', 'token-2', 'token-3']);
    expect(sessions).toEqual([false, true, true]);
  });

  it('auth - a credentials() function that throws fails the attempt with AUTH_FAILED', async () => {
    const { port } = await startServer(defer, { authenticate: () => true });
    const client = newClient({
      port,
      credentials: () => {
        throw new Error('token service down');
      },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.AUTH_FAILED);
  });

  it('auth - the hook gets the address, and no TLS identity on plaintext', async () => {
    const contexts: Parameters<Authenticate>[1][] = [];
    const { port } = await startServer(defer, {
      authenticate: (_hello, context) => {
        contexts.push(context);
        return true;
      },
    });
    const client = newClient({ port });
    await client.connect();
    expect(contexts).toEqual([
      {
        address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        tlsIdentity: undefined,
        nonce: expect.any(String),
      },
    ]);
  });
});

describe('auth - resume tokens are bound to the identity', () => {
  const byToken: Record<string, string> = { 'token-A': 'alice', 'token-B': 'bob' };
  const authenticate: Authenticate = (hello) => {
    const identity = byToken[String(hello.auth?.credentials)];
    return identity === undefined ? false : { identity };
  };

  it("auth - bob presenting alice's resume token (same client id) gets a fresh session", async () => {
    const { server, port } = await startServer(defer, { authenticate });
    const alice = await Wire.connect(port, defer);
    alice.hello({ clientId: 'shared-id', auth: { method: 'token', credentials: 'token-A' } });
    const opened = (await alice.next(ofType(FrameType.WELCOME))).body;
    expect(server.peers[0]?.identity).toBe('alice');

    const bob = await Wire.connect(port, defer);
    bob.hello({
      clientId: 'shared-id',
      resumeToken: opened.resumeToken,
      auth: { method: 'token', credentials: 'token-B' },
    });
    const bobs = (await bob.next(ofType(FrameType.WELCOME))).body;
    expect(bobs.resumed).toBe(false);
    expect(bobs.sessionId).not.toBe(opened.sessionId);
    expect(bobs.resumeToken).not.toBe(opened.resumeToken);
    // Alice's connection and session are untouched.
    await delay(50);
    expect(alice.closed).toBe(false);
    expect(alice.frames.some((f) => f.type === FrameType.ERROR)).toBe(false);
    const identities = Object.fromEntries(server.peers.map((p) => [p.id, p.identity]));
    expect(identities).toEqual({ [opened.sessionId]: 'alice', [bobs.sessionId]: 'bob' });

    // Control: alice herself resumes with her token.
    const aliceAgain = await Wire.connect(port, defer);
    aliceAgain.hello({
      clientId: 'shared-id',
      resumeToken: opened.resumeToken,
      auth: { method: 'token', credentials: 'token-A' },
    });
    const resumed = (await aliceAgain.next(ofType(FrameType.WELCOME))).body;
    expect(resumed).toMatchObject({ resumed: true, sessionId: opened.sessionId });
  });

  it("auth - a client certificate's identity binds the session: another certificate gets a fresh one", async () => {
    const { server, port } = await startServer(defer, {
      tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert },
      requireClientCert: true,
    });
    const tlsFor = (pair: { key: Buffer; cert: Buffer }) => ({
      ca: pki.ca.cert,
      servername: 'localhost',
      ALPNProtocols: ['tether/1'],
      key: pair.key,
      cert: pair.cert,
    });
    const first = await Wire.connectTls(port, tlsFor(pki.client), defer);
    first.hello({ clientId: 'device' });
    const opened = (await first.next(ofType(FrameType.WELCOME))).body;
    expect(server.peers[0]?.identity).toMatch(/^tls:/);

    const other = await Wire.connectTls(port, tlsFor(pki.client2), defer);
    other.hello({ clientId: 'device', resumeToken: opened.resumeToken });
    const fresh = (await other.next(ofType(FrameType.WELCOME))).body;
    expect(fresh.resumed).toBe(false);
    expect(fresh.sessionId).not.toBe(opened.sessionId);
    const [a, b] = server.peers.map((p) => p.identity);
    expect(a).not.toBe(b);

    const same = await Wire.connectTls(port, tlsFor(pki.client), defer);
    same.hello({ clientId: 'device', resumeToken: opened.resumeToken });
    expect((await same.next(ofType(FrameType.WELCOME))).body).toMatchObject({
      resumed: true,
      sessionId: opened.sessionId,
    });
  });
});
