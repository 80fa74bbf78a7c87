import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

const READ_SIZE = 1024 * 1024;

/**
 * SHA-256 (lowercase hex) of the first `size` bytes of an open file, read through the handle so
 * the bytes hashed are the bytes of that inode, even if the path is replaced meanwhile. Throws
 * `Error` with code `ESHORT` when the file has fewer bytes.
 */
export async function hashFile(handle: FileHandle, size: number): Promise<string> {
  const hash = createHash('sha256');
  await hashRange(handle, hash, 0, size);
  return hash.digest('hex');
}

/**
 * Feeds the bytes from `start` to `end` of an open file into `hash`. Throws `Error` with code
 * `ESHORT` when the file ends first.
 */
export async function hashRange(
  handle: FileHandle,
  hash: Hash,
  start: number,
  end: number,
): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(READ_SIZE, Math.max(end - start, 1)));
  let position = start;
  while (position < end) {
    const want = Math.min(buffer.length, end - position);
    const { bytesRead } = await handle.read(buffer, 0, want, position);
    if (bytesRead === 0) {
      throw Object.assign(new Error(`file ended at ${position} of ${end} bytes`), {
        code: 'ESHORT',
      });
    }
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/** Fills `target` with the bytes at `position`; throws `ESHORT` when the file is shorter. */
export async function readInto(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) {
      throw Object.assign(new Error(`file ended at ${position + done}`), { code: 'ESHORT' });
    }
    done += bytesRead;
  }
}
