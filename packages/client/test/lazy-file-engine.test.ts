import {
  blobTransferId,
  type FileEngine,
  type FileFrame,
  type SendFileOptions,
  Transfer,
  type TransferLink,
  type TransferResult,
} from '@tether/files';
import { ErrorCode, FrameDecoder, FrameType, TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { LazyFileEngine } from '../src/lazy-file-engine.js';

/** A file engine that records what it is asked. */
class FakeEngine implements FileEngine {
  readonly sends: { file: string | Blob; options: SendFileOptions; transfer: Transfer }[] = [];
  readonly handled: FileFrame[] = [];
  readonly settles: ((result: TransferResult) => void)[] = [];
  attached: TransferLink | undefined;
  closedWith: TetherError | undefined;
  get activeTransfers(): number {
    return this.sends.length;
  }
  attach(link: TransferLink): void {
    this.attached = link;
  }
  detach(): void {
    this.attached = undefined;
  }
  handle(frame: FileFrame): undefined {
    this.handled.push(frame);
    return undefined;
  }
  pump(): void {}
  sendFile(file: string | Blob, options: SendFileOptions = {}): Transfer {
    const transfer = new Transfer(
      { id: 'real', name: 'n', size: 1, path: '' },
      () => {},
      (resolve) => this.settles.push(resolve),
    );
    this.sends.push({ file, options, transfer });
    return transfer;
  }
  async close(error: TetherError): Promise<void> {
    this.closedWith = error;
  }
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function recordingLink(): { link: TransferLink; frames: FileFrame[] } {
  const frames: FileFrame[] = [];
  const decoder = new FrameDecoder({ expectPreface: false });
  return {
    frames,
    link: {
      maxFrame: 1 << 20,
      writable: () => true,
      write: (bytes) => {
        decoder.push(bytes, (f) => frames.push(f as FileFrame));
      },
    },
  };
}

const offer = (id: string): FileFrame => ({
  type: FrameType.FILE_OFFER,
  body: { id, name: 'x.bin', size: 10 },
});

describe('lazy file engine', () => {
  it('lazy file engine - a send before the module loads is named at once and handed over', async () => {
    const load = deferred<FileEngine>();
    const lazy = new LazyFileEngine('srv', () => load.promise);
    const file = new File(['hello'], 'a.txt', { lastModified: 5 });
    const transfer = lazy.sendFile(file, { name: 'greeting.txt' });
    expect(transfer.id).toBe(blobTransferId(file, 'greeting.txt', 'srv'));
    expect(transfer.name).toBe('greeting.txt');
    expect(transfer.size).toBe(5);
    expect(lazy.activeTransfers).toBe(1);
    const progress: number[] = [];
    transfer.on('progress', (p) => progress.push(p.bytesCommitted));
    const real = new FakeEngine();
    load.resolve(real);
    await Promise.resolve();
    expect(real.sends.map((s) => [s.file, s.options.name])).toEqual([[file, 'greeting.txt']]);
    real.sends[0]?.transfer.emit('progress', {
      id: 'real',
      bytesSent: 5,
      bytesCommitted: 5,
      total: 5,
      rateBytesPerSec: 0,
      etaMs: undefined,
    });
    const result = { id: transfer.id, name: 'greeting.txt', size: 5 } as TransferResult;
    real.settles[0]?.(result);
    await expect(transfer.done).resolves.toBe(result);
    expect(progress).toEqual([5]);
    // Once loaded, sends go through at once, still in a Transfer of this package (the module's
    // own Transfer class is another copy in the browser build).
    const later = lazy.sendFile(file);
    expect(real.sends).toHaveLength(2);
    expect(later).not.toBe(real.sends[1]?.transfer);
    expect(later).toBeInstanceOf(Transfer);
    const laterResult = { id: later.id, name: 'a.txt', size: 5 } as TransferResult;
    real.settles[1]?.(laterResult);
    await expect(later.done).resolves.toBe(laterResult);
  });

  it('lazy file engine - offers wait for the module on their connection; answers to nothing are refused', async () => {
    const load = deferred<FileEngine>();
    const lazy = new LazyFileEngine('srv', () => load.promise);
    const first = recordingLink();
    lazy.attach(first.link);
    expect(lazy.handle(offer('1'.repeat(32)))).toBeUndefined();
    expect(
      lazy.handle({ type: FrameType.FILE_ACCEPT, body: { id: '2'.repeat(32), offset: 0 } })?.code,
    ).toBe(ErrorCode.UNEXPECTED_FRAME);
    lazy.detach();
    const second = recordingLink();
    lazy.attach(second.link);
    lazy.handle(offer('3'.repeat(32)));
    const real = new FakeEngine();
    load.resolve(real);
    await Promise.resolve();
    // The offer of the dropped connection is void (the sender offers again); the other is handled.
    expect(real.handled.map((f) => (f.type === FrameType.FILE_OFFER ? f.body.id : ''))).toEqual([
      '3'.repeat(32),
    ]);
    expect(real.attached).toBe(second.link);
  });

  it('lazy file engine - an offer repeated while the module loads waits once; repeats never fill the queue', async () => {
    const load = deferred<FileEngine>();
    const lazy = new LazyFileEngine('srv', () => load.promise);
    const { link, frames } = recordingLink();
    lazy.attach(link);
    // The server offers again each ping interval until it is answered: a slow load sees many.
    for (let i = 0; i < 40; i++) expect(lazy.handle(offer('1'.repeat(32)))).toBeUndefined();
    lazy.handle(offer('2'.repeat(32)));
    expect(frames).toEqual([]);
    const real = new FakeEngine();
    load.resolve(real);
    await Promise.resolve();
    expect(real.handled.map((f) => (f.type === FrameType.FILE_OFFER ? f.body.id : ''))).toEqual([
      '1'.repeat(32),
      '2'.repeat(32),
    ]);
  });

  it('lazy file engine - a module that cannot load fails the sends and refuses the offers (retryable)', async () => {
    const load = deferred<FileEngine>();
    const lazy = new LazyFileEngine('srv', () => load.promise);
    const { link, frames } = recordingLink();
    lazy.attach(link);
    const transfer = lazy.sendFile(new Blob(['x']));
    lazy.handle(offer('4'.repeat(32)));
    load.reject(new Error('chunk 404'));
    await expect(transfer.done).rejects.toMatchObject({ code: ErrorCode.FILE_READ_FAILED });
    expect(frames).toHaveLength(1);
    const refused = frames[0] as FileFrame;
    expect(refused.type === FrameType.FILE_FAILED && refused.body).toMatchObject({
      id: '4'.repeat(32),
      code: ErrorCode.TOO_MANY_TRANSFERS,
      retryable: true,
    });
  });

  it('lazy file engine - cancel and close before the module loads', async () => {
    const load = deferred<FileEngine>();
    const lazy = new LazyFileEngine('srv', () => load.promise);
    const cancelled = lazy.sendFile(new Blob(['a']));
    cancelled.cancel();
    await expect(cancelled.done).rejects.toMatchObject({ code: ErrorCode.FILE_CANCELLED });
    const pending = lazy.sendFile(new Blob(['b']));
    const closed = new TetherError(ErrorCode.CLOSED, 'closed');
    await lazy.close(closed);
    await expect(pending.done).rejects.toBe(closed);
    await expect(lazy.sendFile(new Blob(['c'])).done).rejects.toBe(closed);
    const real = new FakeEngine();
    load.resolve(real);
    await Promise.resolve();
    expect(real.sends).toEqual([]);
    expect(real.closedWith).toBe(closed);
  });
});
