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

/**
 * The folder name that scopes one owner's partial files: 16 hex characters of SHA-256. A
 * well-formed owner is hashed as UTF-8; one with a lone surrogate (which UTF-8 cannot encode: it
 * would become U+FFFD, like every other lone surrogate) is hashed as the byte 0xFF followed by
 * its UTF-16LE code units. 0xFF never occurs in UTF-8, so the two kinds of input never meet, and
 * two different owners never share a folder.
 */
export function ownerKey(owner: string): string {
  const hash = createHash('sha256');
  if (isWellFormed(owner)) hash.update(owner, 'utf8');
  else hash.update(ILL_FORMED_PREFIX).update(owner, 'utf16le');
  return hash.digest('hex').slice(0, 16);
}

const ILL_FORMED_PREFIX = Buffer.from([0xff]);
const LONE_SURROGATE = /\p{Cs}/u;

function isWellFormed(text: string): boolean {
  // A lone surrogate is the only thing that makes a string ill-formed; in a `u` regex a valid
  // pair is one code point and does not match \p{Cs}.
  return !LONE_SURROGATE.test(text);
}
