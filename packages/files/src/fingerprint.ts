import { createHash } from 'node:crypto';

/** What identifies one version of one file sent to one peer. */
export interface FileFingerprint {
  /** Absolute path of the file on the sender. */
  path: string;
  size: number;
  /** Modification time from `fs.stat`, in ms (may have a fraction). */
  mtimeMs: number;
  /** Who the file goes to (the engine's `owner`). */
  peer: string;
}

/**
 * The transfer id of a file (PROTOCOL.md section 13): the first 16 bytes of the SHA-256 of
 * `"tether-file-v1\n" + path + "\n" + size + "\n" + mtimeMs + "\n" + peer`, as 32 lowercase hex
 * characters. The same file, unchanged, sent to the same peer gets the same id after a process
 * restart, so the transfer resumes (as tus-js-client's fingerprint does); a modified file gets a
 * new id and starts over.
 */
export function transferId(fingerprint: FileFingerprint): string {
  const { path, size, mtimeMs, peer } = fingerprint;
  return createHash('sha256')
    .update(`tether-file-v1\n${path}\n${size}\n${mtimeMs}\n${peer}`, 'utf8')
    .digest('hex')
    .slice(0, 32);
}

/** The folder name that scopes one owner's partial files: 16 hex characters of SHA-256(owner). */
export function ownerKey(owner: string): string {
  return createHash('sha256').update(owner, 'utf8').digest('hex').slice(0, 16);
}
