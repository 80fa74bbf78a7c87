import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { ErrorCode, FrameType, TetherError } from '@tether/protocol';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { BlobTransferEngine, type BlobTransferEngineOptions } from '../src/blob.js';
import type { FileFrame, FileOfferInfo, TransferLink } from '../src/index.js';
import { nodeSha256 } from '../src/node-sha256.js';
import {
  captureLink,
  chunkFrames,
  engine,
  MiB,
  manualTime,
  nthAnswer,
  offerFrame,
  randomFile,
  sha256,
  tempDir,
  until,
  Wire,
} from './helpers.js';

// A FILE_OFFER or FILE_ACCEPT lost inside a live link (a middlebox dropping bytes while TCP stays
// up) is not covered by the transfer clock: an offer may wait on the receiver's application for
// as long as it takes. The sender offers again each re-offer interval until it is answered; the
// receiver ignores a repeat while it decides and answers one it accepted again, unchanged.

const KiB = 1024;
const ID = 'cccccccccccccccccccccccccccccccc';
const REOFFER_MS = 1000;

afterEach(() => {
  vi.useRealTimers();
});

/** Lets `n` event-loop turns pass (frames on a Wire are delivered on a later turn). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Drops the first frame of `type` going `direction`; `dropped()` says how many it dropped. */
function dropFirst(type: number, direction: 'ab' | 'ba') {
  let dropped = 0;
  return {
    dropped: () => dropped,
    tamper: (frame: Buffer, d: 'ab' | 'ba'): Buffer | null => {
      if (d === direction && frame[4] === type && dropped === 0) {
        dropped++;
        return null;
      }
      return frame;
    },
  };
}

/** A link that keeps every frame the engine writes, as written, with the engine's `reofferMs`. */
function rawLink(reofferMs = REOFFER_MS): { link: TransferLink; raw: Buffer[] } {
  const raw: Buffer[] = [];
  return {
    raw,
    link: {
      maxFrame: MiB,
      reofferMs,
      writable: () => true,
      write: (frame) => raw.push(Buffer.from(frame)),
    },
  };
}

function offers(raw: Buffer[]): Buffer[] {
  return raw.filter((frame) => frame[4] === FrameType.FILE_OFFER);
}

function blobEngine(options: Partial<BlobTransferEngineOptions> = {}): BlobTransferEngine {
  const e = new BlobTransferEngine({ owner: 'server:7000', sha256: nodeSha256, ...options });
  onTestFinished(() => e.close(new TetherError(ErrorCode.CLOSED, 'test over')));
  return e;
}

/** A decision the test settles. */
function slowDecision() {
  let settle!: (accepted: boolean) => void;
  const decide = vi.fn(
    () =>
      new Promise<boolean>((resolve) => {
        settle = resolve;
      }),
  );
  return { decide, settle: (accepted: boolean) => settle(accepted) };
}

/**
 * A receiver whose first connection stored `data`'s first chunk (256 KiB) durably and dropped,
 * and the second connection, where the same offer was accepted again at 256 KiB.
 */
async function resumedAfterOneChunk(data: Buffer) {
  const out = nodePath.join(await tempDir(), 'out');
  const decide = vi.fn(() => true);
  const receiver = engine({ owner: 'client', receive: { dir: out, decide } });
  const one = captureLink();
  receiver.attach(one.link);
  receiver.handle(offerFrame(ID, 'r.bin', data.length));
  await nthAnswer(one.frames, ID);
  receiver.handle(chunkFrames(ID, data)[0] as FileFrame);
  await until(
    () => one.frames.some((f) => f.type === FrameType.FILE_STATUS && f.body.offset === 256 * KiB),
    'the first chunk to be written',
  );
  receiver.detach();
  const two = captureLink();
  receiver.attach(two.link);
  receiver.handle(offerFrame(ID, 'r.bin', data.length));
  expect(await nthAnswer(two.frames, ID)).toEqual({
    type: FrameType.FILE_ACCEPT,
    body: { id: ID, offset: 256 * KiB },
  });
  return { out, decide, receiver, two };
}

describe('reoffer - sender', () => {
  it('reoffer - a FILE_OFFER lost on the link goes out again after the interval, and the upload completes', async () => {
    const time = manualTime();
    const root = await tempDir();
    const path = nodePath.join(root, 'up.bin');
    const data = await randomFile(path, 300 * KiB);
    const out = nodePath.join(root, 'out');
    const sender = engine({ owner: 'server', now: time.now, chunkSize: 64 * KiB });
    const receiver = engine({ owner: 'client', receive: { dir: out }, now: time.now });
    const drop = dropFirst(FrameType.FILE_OFFER, 'ab');
    const wire = new Wire(sender, receiver, { reofferMs: REOFFER_MS, tamper: drop.tamper });
    const transfer = sender.sendFile(path);
    await until(() => drop.dropped() === 1, 'the first offer to be lost');
    await time.advance(REOFFER_MS - 1);
    await turns();
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(0);
    await time.advance(1);
    const result = await transfer.done;
    expect(result.sha256).toBe(sha256(data));
    expect(sha256(await fs.readFile(nodePath.join(out, 'up.bin')))).toBe(sha256(data));
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(1);
    expect(wire.of(FrameType.FILE_ACCEPT)).toHaveLength(1);
  });

  it('reoffer - a lost FILE_ACCEPT: the repeated offer gets a fresh FILE_ACCEPT and the file is stored, verified', async () => {
    const time = manualTime();
    const root = await tempDir();
    const path = nodePath.join(root, 'acc.bin');
    const data = await randomFile(path, 300 * KiB);
    const out = nodePath.join(root, 'out');
    const decide = vi.fn(() => true);
    const sender = engine({ owner: 'server', now: time.now, chunkSize: 64 * KiB });
    const receiver = engine({ owner: 'client', receive: { dir: out, decide }, now: time.now });
    const drop = dropFirst(FrameType.FILE_ACCEPT, 'ba');
    const wire = new Wire(sender, receiver, { reofferMs: REOFFER_MS, tamper: drop.tamper });
    const transfer = sender.sendFile(path);
    await until(() => drop.dropped() === 1, 'the first FILE_ACCEPT to be lost');
    await time.advance(REOFFER_MS);
    const result = await transfer.done;
    expect(result.sha256).toBe(sha256(data));
    expect(result.resumedFrom).toBe(0);
    expect(sha256(await fs.readFile(nodePath.join(out, 'acc.bin')))).toBe(sha256(data));
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(2);
    expect(wire.of(FrameType.FILE_ACCEPT).map((r) => r.body)).toEqual([
      { id: result.id, offset: 0 },
    ]);
    // The repeat was answered from the first decision: the application was asked once.
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('reoffer - a slow async decision: asked once over several intervals, the link never counts it as silence, the upload completes when it settles', async () => {
    const time = manualTime();
    const root = await tempDir();
    const path = nodePath.join(root, 'slow.bin');
    const data = await randomFile(path, 200 * KiB);
    const out = nodePath.join(root, 'out');
    const { decide, settle } = slowDecision();
    const calls: string[] = [];
    const sender = engine({ owner: 'server', now: time.now, chunkSize: 64 * KiB });
    const receiver = engine({ owner: 'client', receive: { dir: out, decide }, now: time.now });
    const wire = new Wire(sender, receiver, {
      reofferMs: REOFFER_MS,
      liveness: (call, direction) => calls.push(`${direction}:${call}`),
    });
    const transfer = sender.sendFile(path);
    await until(() => decide.mock.calls.length === 1, 'the decision to start');
    for (let n = 2; n <= 5; n++) {
      await time.advance(REOFFER_MS);
      await until(() => wire.of(FrameType.FILE_OFFER).length === n, `offer ${n}`);
    }
    await turns();
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(5);
    expect(decide).toHaveBeenCalledTimes(1);
    // No answer to any repeat, and nothing the link would count as silence.
    expect(wire.records.filter((r) => r.direction === 'ba')).toEqual([]);
    expect(calls).toEqual([]);
    settle(true);
    const result = await transfer.done;
    expect(sha256(await fs.readFile(nodePath.join(out, 'slow.bin')))).toBe(sha256(data));
    expect(result.sha256).toBe(sha256(data));
    expect(decide).toHaveBeenCalledTimes(1);
    expect(wire.of(FrameType.FILE_ACCEPT)).toHaveLength(1);
    // Answered: no more offers, however long.
    await time.advance(5 * REOFFER_MS);
    await turns();
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(5);
  });

  it('reoffer - an unanswered offer goes out again once per interval, byte for byte, and stops at FILE_ACCEPT, on detach and on cancel', async () => {
    const time = manualTime();
    const root = await tempDir();
    const path = nodePath.join(root, 'o.bin');
    await randomFile(path, 100 * KiB);
    const sender = engine({ owner: 'server', now: time.now });
    const first = rawLink();
    sender.attach(first.link);
    const transfer = sender.sendFile(path);
    await until(() => offers(first.raw).length === 1, 'the offer');
    await time.advance(REOFFER_MS / 2);
    expect(offers(first.raw)).toHaveLength(1);
    await time.advance(REOFFER_MS / 2);
    expect(offers(first.raw)).toHaveLength(2);
    await time.advance(3 * REOFFER_MS);
    expect(offers(first.raw)).toHaveLength(3);
    for (const frame of offers(first.raw))
      expect(frame.equals(offers(first.raw)[0] as Buffer)).toBe(true);
    await time.advance(REOFFER_MS);
    expect(offers(first.raw)).toHaveLength(4);

    // Offline: nothing goes out; the next link gets the offer at once, then once per its interval.
    sender.detach();
    await time.advance(5 * REOFFER_MS);
    expect(offers(first.raw)).toHaveLength(4);
    const second = rawLink(2 * REOFFER_MS);
    sender.attach(second.link);
    expect(offers(second.raw)).toHaveLength(1);
    await time.advance(REOFFER_MS);
    expect(offers(second.raw)).toHaveLength(1);
    await time.advance(REOFFER_MS);
    expect(offers(second.raw)).toHaveLength(2);

    // Accepted: no more offers.
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: transfer.id, offset: 0 } });
    await time.advance(4 * REOFFER_MS);
    expect(offers(second.raw)).toHaveLength(2);
    expect(offers(first.raw)).toHaveLength(4);

    // A cancelled offer is not offered again either.
    const other = nodePath.join(root, 'p.bin');
    await randomFile(other, 10);
    const third = rawLink();
    sender.detach();
    sender.attach(third.link);
    const cancelled = sender.sendFile(other);
    cancelled.done.catch(() => {});
    await until(() => offers(third.raw).length === 2, 'both offers on the third link');
    cancelled.cancel();
    await time.advance(REOFFER_MS);
    // Only the first transfer (offered again on this link, not answered here) goes out again.
    const ids = offers(third.raw).map((frame) => JSON.parse(frame.toString('utf8', 6)).id);
    expect(ids.filter((id) => id === cancelled.id)).toHaveLength(1);
    expect(ids.filter((id) => id === transfer.id)).toHaveLength(2);
  });

  it('reoffer - a FILE_ACCEPT that crossed a refusal (an answer to a repeat) is answered FILE_CANCEL, so the receiver holds nothing for it; a second FILE_ACCEPT of a running transfer is ignored', async () => {
    const time = manualTime();
    const root = await tempDir();
    const path = nodePath.join(root, 'x.bin');
    await randomFile(path, 100 * KiB);
    const sender = engine({ owner: 'server', now: time.now });
    const { link, raw } = rawLink();
    sender.attach(link);
    const refused = sender.sendFile(path);
    await until(() => offers(raw).length === 1, 'the offer');
    sender.handle({
      type: FrameType.FILE_FAILED,
      body: {
        id: refused.id,
        code: ErrorCode.TOO_MANY_TRANSFERS,
        message: 'busy',
        retryable: true,
      },
    });
    await expect(refused.done).rejects.toMatchObject({ code: ErrorCode.TOO_MANY_TRANSFERS });
    const before = raw.length;
    // The receiver decided a repeat of the offer afresh, and accepted it this time.
    expect(
      sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: refused.id, offset: 0 } }),
    ).toBeUndefined();
    const answer = raw.slice(before);
    expect(answer.map((frame) => frame[4])).toEqual([FrameType.FILE_CANCEL]);
    expect(JSON.parse((answer[0] as Buffer).toString('utf8', 6)).id).toBe(refused.id);

    const other = nodePath.join(root, 'y.bin');
    await randomFile(other, 100 * KiB);
    const running = sender.sendFile(other);
    await until(() => offers(raw).length === 2, 'the second offer');
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: running.id, offset: 0 } });
    await until(() => raw.some((frame) => frame[4] === FrameType.FILE_END), 'FILE_END');
    const sent = raw.length;
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: running.id, offset: 0 } });
    await turns();
    expect(raw.length).toBe(sent);
  });

  it('reoffer - a link whose reofferMs is not a positive finite number is refused at attach (TypeError)', () => {
    const sender = engine({ owner: 'server' });
    for (const reofferMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => sender.attach(rawLink(reofferMs).link)).toThrow(TypeError);
    }
    expect(() => sender.attach(rawLink(1).link)).not.toThrow();
  });

  it('reoffer - an offer answered with FILE_COMPLETE (already stored) is not offered again while the sender hashes its file', async () => {
    const time = manualTime();
    const root = await tempDir();
    const path = nodePath.join(root, 'done.bin');
    const data = await randomFile(path, 4 * MiB);
    const sender = engine({ owner: 'server', now: time.now });
    const { link, raw } = rawLink();
    sender.attach(link);
    const transfer = sender.sendFile(path);
    await until(() => offers(raw).length === 1, 'the offer');
    sender.handle({
      type: FrameType.FILE_COMPLETE,
      body: { id: transfer.id, size: data.length, sha256: sha256(data) },
    });
    await time.advance(3 * REOFFER_MS);
    expect(offers(raw)).toHaveLength(1);
    expect((await transfer.done).sha256).toBe(sha256(data));
  });
});

describe('reoffer - disk receiver', () => {
  it('reoffer - repeated offers while the decision is pending get no answer and ask the application nothing more', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const { decide, settle } = slowDecision();
    const receiver = engine({ owner: 'client', receive: { dir: out, decide } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    receiver.handle(offerFrame(ID, 'p.bin', 1000));
    await until(() => decide.mock.calls.length === 1, 'the decision to start');
    for (let i = 0; i < 1000; i++) receiver.handle(offerFrame(ID, 'p.bin', 1000));
    await turns();
    expect(frames).toEqual([]);
    expect(decide).toHaveBeenCalledTimes(1);
    settle(true);
    expect(await nthAnswer(frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    await turns();
    expect(frames).toHaveLength(1);
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('reoffer - a repeat of an accepted offer before any chunk gets FILE_ACCEPT again at the committed offset, nothing reset; chunks then land once', async () => {
    const data = Buffer.alloc(600 * KiB, 0x5a);
    for (let i = 0; i < data.length; i += 997) data[i] = i & 0xff;
    const { out, decide, receiver, two } = await resumedAfterOneChunk(data);
    const calls = decide.mock.calls.length;
    for (let i = 0; i < 100; i++) receiver.handle(offerFrame(ID, 'r.bin', data.length));
    await turns();
    const answers = two.frames.filter((f) => f.type !== FrameType.FILE_STATUS);
    expect(answers).toHaveLength(101);
    for (const answer of answers) {
      expect(answer).toEqual({ type: FrameType.FILE_ACCEPT, body: { id: ID, offset: 256 * KiB } });
    }
    expect(decide).toHaveBeenCalledTimes(calls);
    expect(receiver.activeTransfers).toBe(1);
    for (const chunk of chunkFrames(ID, data).slice(1)) receiver.handle(chunk);
    receiver.handle({ type: FrameType.FILE_END, body: { id: ID, sha256: sha256(data) } });
    await until(() => two.frames.some((f) => f.type === FrameType.FILE_COMPLETE), 'FILE_COMPLETE');
    expect(sha256(await fs.readFile(nodePath.join(out, 'r.bin')))).toBe(sha256(data));
    expect(await fs.readdir(out)).toEqual(['.tether-partial', 'r.bin']);
  });

  it('reoffer - a same-id offer of another size on the same connection is a new offer, not a repeat: decided again, the mismatched partial dropped', async () => {
    const data = Buffer.alloc(600 * KiB, 0x3c);
    const { decide, receiver, two } = await resumedAfterOneChunk(data);
    const calls = decide.mock.calls.length;
    // Not a repeat: its size differs. The 256 KiB of the other size must not be resumed.
    receiver.handle(offerFrame(ID, 'r.bin', data.length + 1));
    expect(await nthAnswer(two.frames, ID, 2)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    expect(decide).toHaveBeenCalledTimes(calls + 1);
  });

  it('reoffer - a repeat after a retryable refusal is a new offer: decided again, and accepted once there is room', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const decide = vi.fn((_offer: FileOfferInfo) => true);
    const receiver = engine({ owner: 'client', receive: { dir: out, maxTransfers: 1, decide } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    const busy = 'b'.repeat(32);
    receiver.handle(offerFrame(busy, 'busy.bin', 10));
    expect((await nthAnswer(frames, busy)).type).toBe(FrameType.FILE_ACCEPT);
    receiver.handle(offerFrame(ID, 'later.bin', 10));
    const refused = await nthAnswer(frames, ID);
    expect(refused.type === FrameType.FILE_FAILED && refused.body.code).toBe(
      ErrorCode.TOO_MANY_TRANSFERS,
    );
    receiver.handle({ type: FrameType.FILE_CANCEL, body: { id: busy, reason: 'done with it' } });
    await until(() => receiver.activeTransfers === 0, 'the cancel');
    receiver.handle(offerFrame(ID, 'later.bin', 10));
    expect((await nthAnswer(frames, ID, 2)).type).toBe(FrameType.FILE_ACCEPT);
    // later.bin's first offer was refused at the per-peer cap, before the application was asked;
    // the repeat was decided afresh.
    expect(decide.mock.calls.map(([offer]) => offer.name)).toEqual(['busy.bin', 'later.bin']);
  });
});

describe('reoffer - blob receiver', () => {
  it('reoffer - repeats while deciding get no answer; a repeat of the accepted offer before any chunk gets FILE_ACCEPT again', async () => {
    const { decide, settle } = slowDecision();
    const receiver = blobEngine({ receive: { decide } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    receiver.handle(offerFrame(ID, 'b.bin', 1000));
    for (let i = 0; i < 100; i++) receiver.handle(offerFrame(ID, 'b.bin', 1000));
    await turns();
    expect(frames).toEqual([]);
    expect(decide).toHaveBeenCalledTimes(1);
    settle(true);
    await nthAnswer(frames, ID);
    for (let i = 0; i < 10; i++) receiver.handle(offerFrame(ID, 'b.bin', 1000));
    await turns();
    expect(frames).toHaveLength(11);
    for (const frame of frames) {
      expect(frame).toEqual({ type: FrameType.FILE_ACCEPT, body: { id: ID, offset: 0 } });
    }
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('reoffer - a decision pending when the link drops answers the offer repeated on the next link; the application is asked once', async () => {
    const { decide, settle } = slowDecision();
    const receiver = blobEngine({ receive: { decide } });
    const one = captureLink();
    receiver.attach(one.link);
    receiver.handle(offerFrame(ID, 'b.bin', 1000));
    await until(() => decide.mock.calls.length === 1, 'the decision to start');
    receiver.detach();
    const two = captureLink();
    receiver.attach(two.link);
    receiver.handle(offerFrame(ID, 'b.bin', 1000));
    settle(true);
    expect(await nthAnswer(two.frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    expect(one.frames).toEqual([]);
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('reoffer - a Blob upload whose FILE_ACCEPT is lost completes after one repeated offer', async () => {
    const time = manualTime();
    const out = nodePath.join(await tempDir(), 'out');
    const data = Buffer.alloc(300 * KiB, 0x42);
    const sender = blobEngine({ now: time.now });
    const receiver = engine({ owner: 'client', receive: { dir: out }, now: time.now });
    const drop = dropFirst(FrameType.FILE_ACCEPT, 'ba');
    const wire = new Wire(sender, receiver, { reofferMs: REOFFER_MS, tamper: drop.tamper });
    const transfer = sender.sendFile(new Blob([data]), { name: 'blob.bin' });
    await until(() => drop.dropped() === 1, 'the first FILE_ACCEPT to be lost');
    await time.advance(REOFFER_MS);
    expect((await transfer.done).sha256).toBe(sha256(data));
    expect(sha256(await fs.readFile(nodePath.join(out, 'blob.bin')))).toBe(sha256(data));
    expect(wire.of(FrameType.FILE_OFFER)).toHaveLength(2);
  });
});
