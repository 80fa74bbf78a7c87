import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';

/**
 * The few file-system calls whose failures matter to a transfer, injectable so tests can
 * simulate a full disk (ENOSPC) or a failing write without a real one.
 */
export interface FileIo {
  /** Writes every byte of `chunks`, one after the other, from `position` of the open file. */
  write(handle: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void>;
  /** Bytes an unprivileged process may still write on the file system that holds `dir`. */
  freeBytes(dir: string): Promise<number>;
}

/** The real file system. */
export const nodeIo: FileIo = {
  async write(handle, chunks, position) {
    let left = chunks;
    // One positional writev for the lot; it may be short (rare on local files): loop until
    // every byte is written.
    while (left.length > 0) {
      const { bytesWritten } = await handle.writev(left as Uint8Array[], position);
      if (bytesWritten === 0)
        throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      position += bytesWritten;
      left = skipBytes(left, bytesWritten);
    }
  },
  async freeBytes(dir) {
    const stats = await fs.statfs(dir);
    return stats.bavail * stats.bsize;
  },
};

export { errnoCode } from './errno.js';

/** What remains of `chunks` after the first `bytes` bytes. */
function skipBytes(chunks: readonly Uint8Array[], bytes: number): readonly Uint8Array[] {
  let i = 0;
  while (i < chunks.length && bytes >= (chunks[i] as Uint8Array).length) {
    bytes -= (chunks[i] as Uint8Array).length;
    i++;
  }
  const rest = chunks.slice(i);
  const first = rest[0];
  if (first !== undefined && bytes > 0) rest[0] = first.subarray(bytes);
  return rest;
}
