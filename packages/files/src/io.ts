import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs/promises';

/**
 * The few file-system calls whose failures matter to a transfer, injectable so tests can
 * simulate a full disk (ENOSPC) or a failing write without a real one.
 */
export interface FileIo {
  /** Writes every byte of `data` at `position` of the open file. */
  write(handle: FileHandle, data: Uint8Array, position: number): Promise<void>;
  /** Bytes an unprivileged process may still write on the file system that holds `dir`. */
  freeBytes(dir: string): Promise<number>;
}

/** The real file system. */
export const nodeIo: FileIo = {
  async write(handle, data, position) {
    let done = 0;
    // A positional write may be short (rare on local files); loop until every byte is written.
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
      if (bytesWritten === 0)
        throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      done += bytesWritten;
    }
  },
  async freeBytes(dir) {
    const stats = await fs.statfs(dir);
    return stats.bavail * stats.bsize;
  },
};

/** The errno-style code of a Node.js system error, if any. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
