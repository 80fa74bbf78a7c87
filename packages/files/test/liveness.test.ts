import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import { FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import type { FileFrame, TransferLink } from '../src/index.js';
import {
  captureLink,
  chunkFrames,
  engine,
  MiB,
  nthAnswer,
  offerFrame,
  randomFile,
  sha256,
  statusOffsets,
  tempDir,
  until,
  Wire,
} from './helpers.js';

const KiB = 1024;
const ID = 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';

/** A captured link that also records the liveness calls, in order with the frames. */
function watchedLink() {
  const { link, frames } = captureLink();
  const calls: string[] = [];
  const watched: TransferLink = {
    maxFrame: link.maxFrame,
    writable: () => true,
    write: (frame) => link.write(frame),
    awaiting: () => calls.push('awaiting'),
    progressed: (still) => calls.push(`progressed:${still}`),
  };
  return { link: watched, frames, calls };
}

function chunksSent(frames: FileFrame[]): FileFrame[] {
  return frames.filter((f) => f.type === FrameType.FILE_CHUNK);
}

describe('liveness - sender', () => {
  it('liveness - awaiting() once when chunks start waiting; progressed() on each advance; false once nothing waits', async () => {
    const root = await tempDir();
    const path = nodePath.join(root, 'f.bin');
    await randomFile(path, MiB);
    const sender = engine({ owner: 'server', chunkSize: 256 * KiB, windowBytes: 512 * KiB });
    const { link, frames, calls } = watchedLink();
    sender.attach(link);
    const transfer = sender.sendFile(path);
    await until(() => frames.some((f) => f.type === FrameType.FILE_OFFER), 'the offer');
    // An offer alone waits on the receiver's application, not on the link: not awaiting.
    expect(calls).toEqual([]);
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: transfer.id, offset: 0 } });
    await until(() => chunksSent(frames).length === 2, 'a window of chunks');
    expect(calls).toEqual(['progressed:false', 'awaiting']);

    const status = (offset: number): void => {
      sender.handle({ type: FrameType.FILE_STATUS, body: { id: transfer.id, offset } });
    };
    status(256 * KiB);
    await until(() => chunksSent(frames).length === 3, 'the next chunk');
    expect(calls.slice(2)).toEqual(['progressed:true']);
    // A rewind is not progress: the two chunks from 256 KiB go out again.
    status(256 * KiB);
    await until(() => chunksSent(frames).length === 5, 'the re-sent chunks');
    expect(calls.slice(3)).toEqual([]);
    // Everything sent so far is committed: nothing awaits, until the last chunk and FILE_END.
    status(768 * KiB);
    await until(() => frames.some((f) => f.type === FrameType.FILE_END), 'FILE_END');
    status(MiB);
    // Every chunk is committed, FILE_END waits for FILE_COMPLETE: still awaiting.
    expect(calls.slice(3)).toEqual(['progressed:false', 'awaiting', 'progressed:true']);
    const data = await fs.readFile(path);
    sender.handle({
      type: FrameType.FILE_COMPLETE,
      body: { id: transfer.id, size: MiB, sha256: sha256(data) },
    });
    await transfer.done;
    expect(calls.slice(6)).toEqual(['progressed:false']);
  });

  it('liveness - FILE_FAILED and cancel report progress; a new transfer awaits again', async () => {
    const root = await tempDir();
    const one = nodePath.join(root, 'one.bin');
    const two = nodePath.join(root, 'two.bin');
    await randomFile(one, 300 * KiB);
    await randomFile(two, 300 * KiB);
    const sender = engine({ owner: 'server', chunkSize: 256 * KiB });
    const { link, frames, calls } = watchedLink();
    sender.attach(link);
    const first = sender.sendFile(one);
    const second = sender.sendFile(two);
    await until(
      () => frames.filter((f) => f.type === FrameType.FILE_OFFER).length === 2,
      'two offers',
    );
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: first.id, offset: 0 } });
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: second.id, offset: 0 } });
    await until(() => frames.filter((f) => f.type === FrameType.FILE_END).length === 2, 'ENDs');
    expect(calls.filter((c) => c === 'awaiting')).toHaveLength(1);
    calls.length = 0;
    sender.handle({
      type: FrameType.FILE_FAILED,
      body: { id: first.id, code: 'FILE_WRITE_FAILED', message: 'x', retryable: true },
    });
    await first.done.catch(() => {});
    expect(calls).toEqual(['progressed:true']);
    second.cancel();
    await second.done.catch(() => {});
    expect(calls).toEqual(['progressed:true', 'progressed:false']);

    const third = sender.sendFile(one);
    await until(
      () => frames.filter((f) => f.type === FrameType.FILE_OFFER).length === 3,
      'the third offer',
    );
    sender.handle({ type: FrameType.FILE_ACCEPT, body: { id: third.id, offset: 0 } });
    await until(() => calls.includes('awaiting'), 'awaiting again');
    expect(calls.slice(2)).toEqual(['progressed:false', 'awaiting']);
  });
});

describe('liveness - receiver', () => {
  it('liveness - a chunk above the committed offset asks for a rewind, once per offset', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    const { link, frames } = captureLink();
    receiver.attach(link);
    const data = Buffer.alloc(MiB, 0x6c);
    const chunks = chunkFrames(ID, data);
    receiver.handle(offerFrame(ID, 'l.bin', data.length));
    await nthAnswer(frames, ID);
    const c = 256 * KiB;
    receiver.handle(chunks[0] as FileFrame);
    // Chunk 1 is lost; 2 and 3 were in flight behind it.
    receiver.handle(chunks[2] as FileFrame);
    receiver.handle(chunks[3] as FileFrame);
    await until(() => statusOffsets(frames, ID).length >= 2, 'the rewind');
    // Chunks still draining at the same committed offset ask for nothing more.
    receiver.handle(chunks[3] as FileFrame);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(statusOffsets(frames, ID)).toEqual([c, c]);

    // The sender re-sends from C; a later loss at a new offset asks again.
    receiver.handle(chunks[1] as FileFrame);
    receiver.handle(chunks[3] as FileFrame);
    await until(() => statusOffsets(frames, ID).length >= 4, 'a second rewind');
    expect(statusOffsets(frames, ID)).toEqual([c, c, 2 * c, 2 * c]);
  });

  it('liveness - a chunk lost inside a live link is re-sent within a round trip and the file completes', async () => {
    const root = await tempDir();
    const out = nodePath.join(root, 'out');
    const path = nodePath.join(root, 'f.bin');
    const data = await randomFile(path, 4 * MiB);
    const sender = engine({ owner: 'server', windowBytes: 2 * MiB });
    const receiver = engine({ owner: 'client', receive: { dir: out } });
    let seen = 0;
    const wire = new Wire(sender, receiver, {
      // The link loses the second chunk and nothing else; TCP-level it stays up.
      tamper: (frame, direction) =>
        direction === 'ab' && frame[4] === FrameType.FILE_CHUNK && ++seen === 2 ? null : frame,
    });
    const result = await sender.sendFile(path).done;
    expect(result.sha256).toBe(sha256(data));
    expect(sha256(await fs.readFile(nodePath.join(out, 'f.bin')))).toBe(sha256(data));
    // One rewind: the offset of the lost chunk reported twice.
    const offsets = wire
      .of(FrameType.FILE_STATUS, 'ba')
      .map((r) => (r.body as { offset: number }).offset);
    expect(offsets.filter((o, i) => offsets.indexOf(o) !== i)).toHaveLength(1);
  }, 15_000);
});
