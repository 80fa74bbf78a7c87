import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { type ClientOptions, TetherClient } from '@tether/client';
import { ErrorCode, FrameType, TetherError } from '@tether/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_CN, makePki, type TestPki } from './certs.js';
import { cleanupList, delay, median, startServer, Wire } from './helpers.js';

const defer = cleanupList();
let pki: TestPki;

beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.remove());

// Failure tests bound the client's retries, so a failure the client wrongly takes for a
// transient one ends in RETRIES_EXHAUSTED instead of a test timeout.
const BOUNDED: Partial<ClientOptions> = { retries: 2, backoff: { minDelayMs: 10, maxDelayMs: 20 } };

function serverTls(overrides: tls.TlsOptions = {}): tls.TlsOptions {
  return { key: pki.server.key, cert: pki.server.cert, ...overrides };
}

function newClient(options: ClientOptions): TetherClient {
  const client = new TetherClient(options);
  defer(() => client.close());
  return client;
}

/** Resolves with the error `connect()` rejects with; fails the test if it connects. */
async function refusal(client: TetherClient): Promise<TetherError> {
  const outcome = await client.connect().then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome === undefined) throw new Error('connect() resolved: the connection was accepted');
  expect(outcome).toBeInstanceOf(TetherError);
  return outcome as TetherError;
}

describe('tls - certificates and versions', () => {
  // First in the file: Node emits DEP0123 once per process.
  it('tls - connecting by IP address sets no IP servername (no RFC 6066 warning)', async () => {
    const { port } = await startServer(defer, { tls: serverTls() });
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }): void => {
      warnings.push(`${warning.code ?? warning.name}: ${warning.message}`);
    };
    process.on('warning', onWarning);
    defer(() => process.off('warning', onWarning));
    // The server certificate carries IP:127.0.0.1, so verifying by IP is legitimate.
    const client = newClient({ port, host: '127.0.0.1', tls: { ca: pki.ca.cert } });
    await client.connect();
    await delay(20);
    expect(warnings.filter((w) => w.includes('DEP0123'))).toEqual([]);
  });

  it('tls - a full session over TLS: messages both ways and requests', async () => {
    const { server, port } = await startServer(defer, {
      tls: serverTls(),
      onRequest: (payload) => `re:${payload.toString()}`,
    });
    const atServer: string[] = [];
    server.on('message', (message, peer) => {
      atServer.push(message.text());
      void peer.send(`echo:${message.text()}`);
    });
    const client = newClient({ port, tls: { ca: pki.ca.cert, servername: 'localhost' } });
    const atClient: string[] = [];
    client.on('message', (message) => atClient.push(message.text()));
    await client.connect();
    const receipts = await Promise.all(Array.from({ length: 50 }, (_, i) => client.send(`m${i}`)));
    expect(receipts.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(atServer).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect((await client.request('ping')).toString()).toBe('re:ping');
    await expect.poll(() => atClient.length).toBe(50);
    expect(atClient[49]).toBe('echo:m49');
    const peer = server.peers[0];
    // The server accepts only ALPN tether/1 (tested below); this is what TLS established.
    expect(peer?.tls).toMatchObject({ protocol: 'TLSv1.3', authorized: false });
    // No client certificate was asked for: the identity is the client id.
    expect(peer?.identity).toBe(`client:${client.clientId}`);
  });

  it('tls - a TLS 1.2 client is accepted by default (minimum 1.2)', async () => {
    const { server, port } = await startServer(defer, { tls: serverTls() });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' },
    });
    await client.connect();
    expect(server.peers[0]?.tls?.protocol).toBe('TLSv1.2');
  });

  it('tls - a TLS 1.1 client is refused by default', async () => {
    const { server, port, errors } = await startServer(defer, { tls: serverTls() });
    // SECLEVEL=0 lets this OpenSSL 3 client offer TLS 1.1 at all: the refusal is the server's.
    const outcome = await Wire.connectTls(
      port,
      {
        ca: pki.ca.cert,
        servername: 'localhost',
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
        ALPNProtocols: ['tether/1'],
      },
      defer,
    ).then(
      () => 'connected',
      (error: Error & { code?: string }) => error.code ?? error.message,
    );
    expect(outcome).not.toBe('connected');
    await expect.poll(() => server.stats().handshakeFailures).toBeGreaterThanOrEqual(1);
    expect(errors.map((e) => e.code)).toContain(ErrorCode.TLS_FAILED);
    expect(server.stats().sessions).toBe(0);
  });

  it('tls - a server certificate from the wrong CA is refused (TLS_FAILED, not retried)', async () => {
    const { server, port } = await startServer(defer, {
      tls: { key: pki.otherServer.key, cert: pki.otherServer.cert },
    });
    let attempts = 0;
    server.on('error', () => attempts++);
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost' },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    expect((error.cause as { code?: string }).code).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|ISSUER/);
    expect(client.state).toBe('closed');
    await delay(100);
    expect(attempts).toBe(1);
    expect(server.stats().sessions).toBe(0);
  });

  it('tls - an expired server certificate is refused', async () => {
    const { server, port } = await startServer(defer, {
      tls: { key: pki.expiredServer.key, cert: pki.expiredServer.cert },
    });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost' },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    expect((error.cause as { code?: string }).code).toBe('CERT_HAS_EXPIRED');
    expect(client.state).toBe('closed');
    expect(server.stats().sessions).toBe(0);
  });

  it('tls - a certificate for another name is refused', async () => {
    const { port } = await startServer(defer, { tls: serverTls() });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'tether.example' },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
  });

  it('tls - a TLS 1.2 client is refused by a server that requires TLS 1.3', async () => {
    const { server, port, errors } = await startServer(defer, {
      tls: serverTls({ minVersion: 'TLSv1.3' }),
    });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    expect(client.state).toBe('closed');
    await expect.poll(() => server.stats().handshakeFailures).toBe(1);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.TLS_FAILED]);
    // The same server takes a TLS 1.3 client.
    const modern = newClient({ port, tls: { ca: pki.ca.cert, servername: 'localhost' } });
    await modern.connect();
  });

  it('tls - a TLS client at a plaintext port is refused (TLS_FAILED) and the server says PREFACE_TLS', async () => {
    const { port, errors } = await startServer(defer);
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost' },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    await expect.poll(() => errors.map((e) => e.code)).toEqual([ErrorCode.PREFACE_TLS]);
  });

  it('tls - a plaintext client at a TLS port gets no session and the server reports TLS_FAILED', async () => {
    // OpenSSL hangs up on a record it does not recognise without an alert (PROTOCOL.md section
    // 2), so the client cannot tell this from a server that went away: it retries with backoff
    // (bounded here) and ends with RETRIES_EXHAUSTED over a lost connection.
    const { server, port, errors } = await startServer(defer, { tls: serverTls() });
    const client = newClient({ port, ...BOUNDED });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    expect((error.cause as { code?: string } | undefined)?.code).toBe(ErrorCode.CONNECTION_LOST);
    expect(server.stats().sessions).toBe(0);
    expect(errors.map((e) => e.code)).toContain(ErrorCode.TLS_FAILED);
  });
});

describe('tls - mutual TLS', () => {
  it('tls - requireClientCert: a client without a certificate is refused (TLS_FAILED)', async () => {
    const { server, port, errors } = await startServer(defer, {
      tls: serverTls({ ca: pki.ca.cert }),
      requireClientCert: true,
    });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost' },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    expect(client.state).toBe('closed');
    expect(server.stats().sessions).toBe(0);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.every((e) => e.code === ErrorCode.TLS_FAILED)).toBe(true);
  });

  it('tls - requireClientCert: a certificate from another CA is refused (TLS_FAILED)', async () => {
    const { server, port } = await startServer(defer, {
      tls: serverTls({ ca: pki.ca.cert }),
      requireClientCert: true,
    });
    const client = newClient({
      port,
      tls: {
        ca: pki.ca.cert,
        servername: 'localhost',
        key: pki.otherClient.key,
        cert: pki.otherClient.cert,
      },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    expect(server.stats().sessions).toBe(0);
  });

  it('tls - requireClientCert: a certificate from the right CA is accepted and its identity reaches the hook', async () => {
    const contexts: unknown[] = [];
    const { server, port } = await startServer(defer, {
      tls: serverTls({ ca: pki.ca.cert }),
      requireClientCert: true,
      authenticate: (_hello, context) => {
        contexts.push(context);
        return true;
      },
    });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost', key: pki.client.key, cert: pki.client.cert },
    });
    await client.connect();
    const fingerprint = new X509Certificate(pki.client.cert).fingerprint256;
    expect(contexts).toEqual([
      {
        address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        tlsIdentity: {
          authorized: true,
          subject: CLIENT_CN,
          fingerprint256: fingerprint,
          protocol: 'TLSv1.3',
        },
        nonce: expect.any(String),
      },
    ]);
    const peer = server.peers[0];
    expect(peer?.identity).toBe(`tls:${fingerprint}`);
    expect(peer?.identity.startsWith('tls:')).toBe(true);
    // Works end to end.
    const got = new Promise<string>((resolve) => server.on('message', (m) => resolve(m.text())));
    await client.send('over mTLS');
    expect(await got).toBe('over mTLS');
  });

  it('tls - optional client certificates: an untrusted one never yields a tls: identity', async () => {
    const contexts: unknown[] = [];
    const { server, port } = await startServer(defer, {
      // Asked for but not required: the application decides from `authorized`.
      tls: serverTls({ ca: pki.ca.cert, requestCert: true, rejectUnauthorized: false }),
      authenticate: (_hello, context) => {
        contexts.push(context.tlsIdentity);
        return true;
      },
    });
    // Same CN as the trusted client certificate, but from another CA.
    const client = newClient({
      port,
      clientId: 'impostor',
      tls: {
        ca: pki.ca.cert,
        servername: 'localhost',
        key: pki.otherClient.key,
        cert: pki.otherClient.cert,
      },
    });
    await client.connect();
    expect(contexts).toEqual([
      {
        authorized: false,
        subject: CLIENT_CN,
        fingerprint256: new X509Certificate(pki.otherClient.cert).fingerprint256,
        protocol: 'TLSv1.3',
      },
    ]);
    expect(server.peers[0]?.identity).toBe('client:impostor');
  });

  it('tls - the hook may refuse a valid certificate (AUTH_FAILED)', async () => {
    const { port } = await startServer(defer, {
      tls: serverTls({ ca: pki.ca.cert }),
      requireClientCert: true,
      authFailureDelayMs: 0,
      authenticate: (_hello, { tlsIdentity }) => tlsIdentity?.subject === 'someone-else',
    });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost', key: pki.client.key, cert: pki.client.cert },
      ...BOUNDED,
    });
    expect((await refusal(client)).code).toBe(ErrorCode.AUTH_FAILED);
  });
});

describe('tls - ALPN and the handshake deadline', () => {
  it('tls - a client offering another ALPN protocol gets no session', async () => {
    const { server, port, errors } = await startServer(defer, { tls: serverTls() });
    const client = newClient({
      port,
      tls: { ca: pki.ca.cert, servername: 'localhost', ALPNProtocols: ['other/1'] },
      ...BOUNDED,
    });
    const error = await refusal(client);
    expect(error.code).toBe(ErrorCode.TLS_FAILED);
    expect(server.stats().sessions).toBe(0);
    await expect.poll(() => server.stats().handshakeFailures).toBeGreaterThanOrEqual(1);
    expect(errors.map((e) => e.code)).toContain(ErrorCode.TLS_FAILED);
  });

  it('tls - a TLS client offering no ALPN at all is told TLS_FAILED and closed, with no session', async () => {
    const { server, port, errors } = await startServer(defer, { tls: serverTls() });
    const wire = await Wire.connectTls(port, { ca: pki.ca.cert, servername: 'localhost' }, defer);
    await wire.waitClosed(2000);
    // No CHALLENGE: only the preface and the ERROR that says why.
    expect(wire.frames.map((f) => f.type)).toEqual([FrameType.ERROR]);
    expect((wire.frames[0] as { body: { code: string } }).body.code).toBe(ErrorCode.TLS_FAILED);
    expect(server.stats().sessions).toBe(0);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.TLS_FAILED]);
  });

  it('tls - a TCP client that never starts the TLS handshake is closed at the deadline', async () => {
    const { server, port, errors } = await startServer(defer, {
      tls: serverTls(),
      tlsHandshakeTimeoutMs: 300,
    });
    const wire = await Wire.connect(port, defer);
    await wire.waitClosed(3000);
    const elapsed = (wire.closedAt as number) - wire.openedAt;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    expect(wire.received).toEqual([]);
    await expect.poll(() => errors.map((e) => e.code)).toEqual([ErrorCode.TLS_FAILED]);
    expect(server.stats().connections).toBe(0);
  });

  it('tls - a TLS handshake that stalls half-way is closed at the deadline', async () => {
    const { port, errors } = await startServer(defer, {
      tls: serverTls(),
      tlsHandshakeTimeoutMs: 300,
    });
    const wire = await Wire.connect(port, defer);
    // The first bytes of a ClientHello record, then nothing.
    wire.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    await wire.waitClosed(3000);
    const elapsed = (wire.closedAt as number) - wire.openedAt;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    await expect.poll(() => errors.map((e) => e.code)).toEqual([ErrorCode.TLS_FAILED]);
  });
});

describe('tls - limits', () => {
  it('tls - a connection over maxConnectionsPerAddress is refused and counted', async () => {
    const { server, port } = await startServer(defer, {
      tls: serverTls(),
      maxConnectionsPerAddress: 1,
    });
    const first = newClient({ port, tls: { ca: pki.ca.cert, servername: 'localhost' } });
    await first.connect();
    const socket = net.connect({ port, host: '127.0.0.1' });
    defer(() => socket.destroy());
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('close', resolve));
    // Counted like a plaintext refusal, and not taken for a failed TLS handshake.
    await delay(50);
    expect(server.stats()).toMatchObject({ refusedConnections: 1, handshakeFailures: 0 });
  });
});

describe('tls - cost', () => {
  it('tls - handshake time: TLS vs plaintext, median of 20 (printed)', async () => {
    const plain = await startServer(defer);
    const secure = await startServer(defer, { tls: serverTls() });
    async function cycle(options: ClientOptions): Promise<number> {
      const started = performance.now();
      const client = new TetherClient(options);
      await client.connect();
      const elapsed = performance.now() - started;
      await client.close();
      return elapsed;
    }
    const tlsOptions = { ca: pki.ca.cert, servername: 'localhost' };
    // Warm-up: first use of each path compiles code and loads the CA.
    await cycle({ port: plain.port });
    await cycle({ port: secure.port, tls: tlsOptions });
    const plainTimes: number[] = [];
    const tlsTimes: number[] = [];
    for (let i = 0; i < 20; i++) {
      plainTimes.push(await cycle({ port: plain.port }));
      tlsTimes.push(await cycle({ port: secure.port, tls: tlsOptions }));
    }
    const figures = {
      plaintextMedianMs: Number(median(plainTimes).toFixed(2)),
      tlsMedianMs: Number(median(tlsTimes).toFixed(2)),
      ratio: Number((median(tlsTimes) / median(plainTimes)).toFixed(1)),
    };
    console.log(
      `[security figures] connect + TLS 1.3 handshake (P-256) + Tether handshake, median of 20 on 127.0.0.1: ${JSON.stringify(figures)}`,
    );
    expect(tlsTimes).toHaveLength(20);
  });
});
