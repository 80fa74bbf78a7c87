import type { PublishFailure, SessionInfo, TetherClient } from '@tether/client';
import { ErrorCode, MIN_MAX_FRAME, type TetherError } from '@tether/protocol';
import type { TetherServer } from '@tether/server';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeTime } from '../helpers/fake-time.js';

// publish() and flush() against a server in fake time over in-memory pipes: cuts, session loss,
// a server that cannot be reached again, a server with a smaller frame limit.

let time: FakeTime;
afterEach(async () => {
  await time.close();
});

/** Every message the server's application got, as `${id} ${text}`. */
function received(server: TetherServer): string[] {
  const got: string[] = [];
  server.on('message', (m) => got.push(`${m.id} ${m.text()}`));
  return got;
}

function recordFailures(client: TetherClient): PublishFailure[] {
  const failures: PublishFailure[] = [];
  client.on('publishFailed', (failure) => failures.push(failure));
  return failures;
}

function trackFlush(promise: Promise<void>): { status: string; error: TetherError | undefined } {
  const tracked = { status: 'pending', error: undefined as TetherError | undefined };
  promise.then(
    () => {
      tracked.status = 'resolved';
    },
    (error: TetherError) => {
      tracked.status = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

const BACKOFF = { minDelayMs: 10, maxDelayMs: 40 };

describe('logic - publish and flush in fake time', () => {
  it('publish - mixed with send(), one order, exactly once across two cuts; flush resolves when all are acknowledged', async () => {
    time = new FakeTime();
    const server = time.server();
    const got = received(server);
    const client = time.client(server, { clientId: 'c', backoff: BACKOFF });
    const failures = recordFailures(client);
    const sessions: SessionInfo[] = [];
    client.on('session', (info) => sessions.push(info));
    await time.wait(client.connect());

    const expected: string[] = [];
    const receipts: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      // Two cuts, each with messages in flight: the link is up again before the next one.
      if (i === 100 || i === 200) await time.until(() => client.state === 'connected');
      const text = `m${i}`;
      if (i % 7 === 3) receipts.push(client.send(text));
      else client.publish(text);
      expected.push(text);
      if (i === 150 || i === 250) {
        await Promise.resolve(); // the pump transmits (a microtask); the server has not answered
        expect(client.stats().outbox.inFlight).toBeGreaterThan(0);
        time.cut();
      }
    }
    const flushed = trackFlush(client.flush());
    await time.until(() => flushed.status !== 'pending');
    expect(flushed.status).toBe('resolved');
    await Promise.all(receipts);
    expect(got).toEqual(expected.map((text, i) => `c:${i + 1} ${text}`));
    expect(client.stats().reconnects).toBe(2);
    // Both cuts caught messages in flight: they were sent again on the resumed session.
    expect(sessions.map((info) => [info.resumed, info.resent > 0])).toEqual([
      [false, false],
      [true, true],
      [true, true],
    ]);
    expect(client.stats().outbox.depth).toBe(0);
    expect(failures).toEqual([]);
  });

  it('publish - a session that cannot be resumed (the server is gone, retries run out): every unacknowledged message is reported RETRIES_EXHAUSTED and flush rejects', async () => {
    time = new FakeTime();
    const server = time.server();
    const got = received(server);
    const client = time.client(server, { clientId: 'c', backoff: BACKOFF, retries: 2 });
    client.on('error', () => {});
    const failures = recordFailures(client);
    await time.wait(client.connect());
    for (let i = 1; i <= 10; i++) client.publish(`m${i}`);
    await time.until(() => got.length === 10 && client.stats().outbox.depth === 0);
    // In flight at the cut (written, not read by the server): and then nobody answers.
    for (let i = 11; i <= 20; i++) client.publish(`m${i}`);
    await time.settle(1);
    time.refusing = true;
    time.cut();
    // Queued while reconnecting.
    await time.settle(2);
    for (let i = 21; i <= 25; i++) client.publish(`m${i}`);
    const flushed = trackFlush(client.flush());
    await time.until(() => client.state === 'closed');
    await time.settle();
    expect(flushed.error?.code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    const acknowledged = got.length;
    // Every message ends once: acknowledged (delivered before the cut) or reported.
    expect(failures.map((f) => f.id)).toEqual(
      Array.from({ length: 25 - acknowledged }, (_, i) => acknowledged + i + 1),
    );
    expect(new Set(failures.map((f) => f.code))).toEqual(new Set([ErrorCode.RETRIES_EXHAUSTED]));
    expect(failures.at(0)?.seq).toBe(acknowledged + 1); // it was transmitted: it has its seq
    expect(failures.at(-1)?.seq).toBe(0); // queued only
    expect(failures.at(-1)?.payload.toString()).toBe('m25');
    expect(acknowledged).toBeLessThan(20);
  });

  it('publish - a session lost by the server is not a failure: unacknowledged messages are sent again with their ids', async () => {
    time = new FakeTime();
    const server = time.server({ sessionTtlMs: 1000 });
    const got = received(server);
    const client = time.client(server, { clientId: 'c', backoff: BACKOFF });
    const failures = recordFailures(client);
    const sessions: SessionInfo[] = [];
    client.on('session', (info) => sessions.push(info));
    await time.wait(client.connect());
    for (let i = 1; i <= 50; i++) client.publish(`m${i}`);
    await time.settle(1);
    // Cut before the server acknowledged, and stay away past the session TTL.
    time.refusing = true;
    time.cut();
    await time.advance(1500, 50);
    time.refusing = false;
    for (let i = 51; i <= 60; i++) client.publish(`m${i}`);
    await time.wait(client.flush());
    expect(sessions.at(-1)).toMatchObject({ resumed: false, lost: true });
    expect(failures).toEqual([]);
    // At least once across the session loss, every id its message's own, in order of first arrival.
    const firsts = [...new Map(got.map((line) => [line, true])).keys()];
    expect(firsts).toEqual(Array.from({ length: 60 }, (_, i) => `c:${i + 1} m${i + 1}`));
  });

  it('publish - messages queued before the server announced a smaller frame limit are reported MESSAGE_TOO_LARGE; flush still resolves', async () => {
    time = new FakeTime();
    const server = time.server({ maxFrame: MIN_MAX_FRAME });
    const got = received(server);
    const client = time.client(server, { clientId: 'c', backoff: BACKOFF });
    const failures = recordFailures(client);
    client.publish('small');
    client.publish(Buffer.alloc(MIN_MAX_FRAME + 100)); // fits the client's 1 MiB, not the server's
    client.publish('after');
    const flushed = client.flush();
    await time.wait(client.connect());
    await time.wait(flushed);
    expect(failures.map((f) => [f.id, f.code])).toEqual([[2, ErrorCode.MESSAGE_TOO_LARGE]]);
    expect(got).toEqual(['c:1 small', 'c:2 after']);
  });
});
