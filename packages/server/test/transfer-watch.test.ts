import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { FileFrame, TransferLink } from '@tether/files';
import { ErrorCode, FrameType, TetherError } from '@tether/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type TransferUpdate, WatchedTransferEngine } from '../src/transfer-watch.js';

// The server's transfer engine reports each transfer's steps (the `transfer` event). A client
// repeats an offer it had no answer to; the receiver answers a repeat of an accepted offer with
// FILE_ACCEPT again. That second acceptance is no new step on the same connection; on a new
// connection it is the resume.

const ID = 'dddddddddddddddddddddddddddddddd';

async function watched() {
  const directory = await fs.mkdtemp(nodePath.join(os.tmpdir(), 'tether-watch-'));
  onTestFinished(() => fs.rm(directory, { recursive: true, force: true, maxRetries: 5 }));
  const reports: TransferUpdate[] = [];
  const engine = new WatchedTransferEngine(
    { owner: 'alice', receive: { dir: directory } },
    (update) => reports.push(update),
  );
  onTestFinished(() => engine.close(new TetherError(ErrorCode.CLOSED, 'test over')));
  const written: number[] = [];
  const link: TransferLink = {
    maxFrame: 1024 * 1024,
    writable: () => true,
    write: (frame) => written.push(frame[4] as number),
  };
  return { engine, link, reports, written };
}

const offer: FileFrame = { type: FrameType.FILE_OFFER, body: { id: ID, name: 'a.bin', size: 10 } };

/** Waits (on the event loop) until `check` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check()).toBe(true);
}

describe('WatchedTransferEngine', () => {
  it('a repeated offer answered FILE_ACCEPT again on the same connection reports started once; on the next connection again', async () => {
    const { engine, link, reports, written } = await watched();
    const accepts = () => written.filter((type) => type === FrameType.FILE_ACCEPT).length;
    const started = () => reports.filter((r) => r.state === 'started');
    engine.attach(link);
    engine.handle(offer);
    await until(() => accepts() === 1);
    engine.handle(offer);
    engine.handle(offer);
    await until(() => accepts() === 3);
    expect(started()).toHaveLength(1);
    // The next connection: the client offers again and resumes; that is a step to report.
    engine.detach();
    engine.attach(link);
    engine.handle(offer);
    await until(() => accepts() === 4);
    expect(started()).toHaveLength(2);
    expect(started()[1]).toMatchObject({ id: ID, direction: 'in', bytes: 0, name: 'a.bin' });
  });
});
