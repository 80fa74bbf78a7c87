import * as nodePath from 'node:path';
import { ErrorCode, FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import type { FileFrame } from '../src/index.js';
import { captureLink, engine, randomFile, tempDir, until } from './helpers.js';

const NEVER = 'cccccccccccccccccccccccccccccccc';
const SHA = 'd'.repeat(64);

/** The four receiver-to-sender frames, for transfer `id`. */
function answers(id: string): FileFrame[] {
  return [
    { type: FrameType.FILE_ACCEPT, body: { id, offset: 0 } },
    { type: FrameType.FILE_STATUS, body: { id, offset: 0 } },
    { type: FrameType.FILE_COMPLETE, body: { id, size: 1, sha256: SHA } },
    {
      type: FrameType.FILE_FAILED,
      body: { id, code: ErrorCode.FILE_WRITE_FAILED, message: 'x', retryable: true },
    },
  ];
}

describe('conformance', () => {
  it('conformance - a receiver frame for a transfer never offered on this connection is UNEXPECTED_FRAME', () => {
    const sender = engine({ owner: 'server' });
    sender.attach(captureLink().link);
    for (const frame of answers(NEVER)) {
      const error = sender.handle(frame);
      expect(error?.code, `type 0x${frame.type.toString(16)}`).toBe(ErrorCode.UNEXPECTED_FRAME);
    }
  });

  it('conformance - frames for a transfer offered on this connection stay ignored once it is over', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 10);
    const sender = engine({ owner: 'server' });
    const { link, frames } = captureLink();
    sender.attach(link);
    const transfer = sender.sendFile(path);
    await until(() => frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    transfer.cancel();
    await transfer.done.catch(() => {});
    // A late answer to the cancelled offer: a normal race, not a protocol error.
    for (const frame of answers(transfer.id)) expect(sender.handle(frame)).toBeUndefined();
  });

  it('conformance - an id offered on an earlier connection only is UNEXPECTED_FRAME on the current one', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, 10);
    const sender = engine({ owner: 'server' });
    const first = captureLink();
    sender.attach(first.link);
    const transfer = sender.sendFile(path);
    await until(() => first.frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    transfer.cancel();
    await transfer.done.catch(() => {});
    sender.detach();
    sender.attach(captureLink().link);
    expect(sender.handle(answers(transfer.id)[1] as FileFrame)?.code).toBe(
      ErrorCode.UNEXPECTED_FRAME,
    );
  });

  it('conformance - sender frames and FILE_CANCEL for unknown ids are still ignored', () => {
    const receiver = engine({ owner: 'client' });
    receiver.attach(captureLink().link);
    expect(
      receiver.handle({ type: FrameType.FILE_END, body: { id: NEVER, sha256: SHA } }),
    ).toBeUndefined();
    expect(
      receiver.handle({ type: FrameType.FILE_CANCEL, body: { id: NEVER, reason: 'x' } }),
    ).toBeUndefined();
  });
});
