import { createHash } from 'node:crypto';
import * as nodePath from 'node:path';
import { FrameType } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { ownerKey } from '../src/fingerprint.js';
import type { FileFrame } from '../src/index.js';
import {
  captureLink,
  chunkFrames,
  engine,
  MiB,
  nthAnswer,
  offerFrame,
  statusOffsets,
  tempDir,
  until,
} from './helpers.js';

const ID = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

describe('owner key', () => {
  it('owner key - a well-formed identity keeps its key: 16 hex of SHA-256 of its UTF-8', () => {
    for (const owner of ['alice', 'client:42', 'ünï 文件', '\u{1f600}']) {
      const utf8 = createHash('sha256').update(owner, 'utf8').digest('hex').slice(0, 16);
      expect(ownerKey(owner), owner).toBe(utf8);
    }
  });

  it('owner key - identities that differ only in lone surrogates or U+FFFD get different keys', () => {
    const owners = [
      'x\ud800',
      'x\udbff',
      'x\udc00',
      'x\ufffd',
      '\ud800x',
      'x\ud800\ud800',
      'x\ufffd\ufffd',
    ];
    const keys = owners.map(ownerKey);
    expect(new Set(keys).size).toBe(owners.length);
    for (const key of keys) expect(key).toMatch(/^[0-9a-f]{16}$/);
  });

  it('owner key - an identity with a lone surrogate never resets the partial of one that differs from it', async () => {
    const out = nodePath.join(await tempDir(), 'out');
    const data = Buffer.alloc(MiB, 0x33);
    // Both print as "x\ufffd" in UTF-8.
    const first = engine({ owner: 'x\ud800', receive: { dir: out } });
    const l1 = captureLink();
    first.attach(l1.link);
    first.handle(offerFrame(ID, 'f.bin', 2 * MiB));
    await nthAnswer(l1.frames, ID);
    for (const chunk of chunkFrames(ID, data)) first.handle(chunk);
    await until(() => statusOffsets(l1.frames, ID).includes(MiB), 'the first megabyte');
    first.detach(); // checkpoints: 1 MiB is durable

    const second = engine({ owner: 'x\udc00', receive: { dir: out } });
    const l2 = captureLink();
    second.attach(l2.link);
    second.handle(offerFrame(ID, 'f.bin', 2 * MiB));
    expect(await nthAnswer(l2.frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: 0 },
    });
    second.handle(chunkFrames(ID, Buffer.alloc(1000, 0x34))[0] as FileFrame);
    await until(() => statusOffsets(l2.frames, ID).includes(1000), "the second owner's bytes");
    second.detach();

    const again = captureLink();
    first.attach(again.link);
    first.handle(offerFrame(ID, 'f.bin', 2 * MiB));
    expect(await nthAnswer(again.frames, ID)).toEqual({
      type: FrameType.FILE_ACCEPT,
      body: { id: ID, offset: MiB },
    });
  });
});
