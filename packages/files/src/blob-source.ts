import { ErrorCode, TetherError } from '@tether/protocol';
import { hash128 } from './fingerprint-hash.js';
import type { Sha256, Sha256Factory } from './sha256.js';
import type { PreparedSource, Source } from './source.js';

/** What a source reads of a Blob (or File): the web platform's, or Node's (20+). */
export interface BlobLike {
  readonly size: number;
  slice(start?: number, end?: number): BlobLike;
  arrayBuffer(): Promise<ArrayBuffer>;
}

const READ_SIZE = 1024 * 1024;
// A Blob that is not a File has nothing to fingerprint: it keeps one random id while it lives.
// One map per page, whichever copy of this module asks (the client's browser build has two).
const registry = globalThis as { [key: symbol]: WeakMap<object, string> | undefined };
const BLOB_IDS = Symbol.for('tether.blob-ids');
function blobIds(): WeakMap<object, string> {
  let ids = registry[BLOB_IDS];
  if (ids === undefined) {
    ids = new WeakMap();
    registry[BLOB_IDS] = ids;
  }
  return ids;
}

/** The name a Blob is offered under when `sendFile` names none: a File's name, else `blob`. */
export function blobName(blob: BlobLike): string {
  const name = (blob as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : 'blob';
}

/**
 * The transfer id of a Blob offered as `name` to `owner`: a hash of the File's name, size,
 * modification time and type, the offered name and the peer, so the same File picked again after
 * a page reload gets the same id and its transfer resumes where the receiver stopped (as
 * tus-js-client fingerprints files). A plain Blob gets a random id, kept while it lives.
 */
export function blobTransferId(blob: BlobLike, name: string, owner: string): string {
  const file = blob as { name?: unknown; lastModified?: unknown; type?: unknown };
  let identity: string;
  if (typeof file.name === 'string' && typeof file.lastModified === 'number') {
    identity = `file:${file.name}\n${blob.size}\n${file.lastModified}\n${String(file.type)}`;
  } else {
    let random = blobIds().get(blob);
    if (random === undefined) {
      const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
      random = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      blobIds().set(blob, random);
    }
    identity = `blob:${random}\n${blob.size}`;
  }
  return hash128(`tether-file-v1\n${identity}\n${name}\n${owner}`);
}

/** A Blob ready to send: its id (see {@link blobTransferId}), hashed with `sha256` as it is read. */
export function prepareBlob(
  blob: BlobLike,
  name: string,
  owner: string,
  sha256: Sha256Factory,
): PreparedSource {
  return {
    id: blobTransferId(blob, name, owner),
    size: blob.size,
    source: new BlobSource(blob, sha256),
  };
}

/**
 * A Blob (a File picked in a page) as a transfer's source: read in slices, hashed while read.
 * A Blob's bytes cannot change; a File whose file on disk changed fails its next read
 * (NotReadableError), which fails the transfer with FILE_CHANGED.
 */
export class BlobSource implements Source {
  readonly size: number;
  readonly #blob: BlobLike;
  readonly #hash: Sha256;
  /** Bytes 0 to `#hashedTo` are in the hash. */
  #hashedTo = 0;
  #hashing: Promise<void> | undefined;
  #sealing: Promise<string> | undefined;
  #sha256: string | undefined;
  #closed = false;

  constructor(blob: BlobLike, sha256: Sha256Factory) {
    this.size = blob.size;
    this.#blob = blob;
    this.#hash = sha256();
  }

  get sha256(): string | undefined {
    return this.#sha256;
  }

  async open(): Promise<boolean> {
    return !this.#closed;
  }

  async checkUnchanged(): Promise<void> {}

  async read(target: Uint8Array, offset: number): Promise<void> {
    const bytes = await readSlice(this.#blob, offset, offset + target.length);
    if (bytes.length < target.length) {
      throw Object.assign(new Error(`the blob ended at ${offset + bytes.length}`), {
        code: 'ESHORT',
      });
    }
    target.set(bytes);
  }

  feed(offset: number, data: Uint8Array): boolean {
    if (this.#hashing !== undefined || this.#sha256 !== undefined) return false;
    if (offset > this.#hashedTo) return false;
    const end = offset + data.length;
    if (end > this.#hashedTo) {
      this.#hash.update(data.subarray(this.#hashedTo - offset));
      this.#hashedTo = end;
    }
    return true;
  }

  async hashTo(offset: number): Promise<void> {
    while (this.#hashing !== undefined) await this.#hashing;
    if (offset <= this.#hashedTo || this.#sha256 !== undefined) return;
    const hashing = (async () => {
      while (this.#hashedTo < offset) {
        const end = Math.min(offset, this.#hashedTo + READ_SIZE);
        const bytes = await readSlice(this.#blob, this.#hashedTo, end);
        if (bytes.length < end - this.#hashedTo) {
          throw Object.assign(new Error('the blob ended early'), { code: 'ESHORT' });
        }
        this.#hash.update(bytes);
        this.#hashedTo = end;
      }
    })();
    this.#hashing = hashing;
    try {
      await hashing;
    } finally {
      this.#hashing = undefined;
    }
  }

  seal(): Promise<string> {
    if (this.#sha256 !== undefined) return Promise.resolve(this.#sha256);
    this.#sealing ??= (async () => {
      try {
        await this.hashTo(this.size);
        this.#sha256 = this.#hash.hex();
        return this.#sha256;
      } finally {
        this.#sealing = undefined;
      }
    })();
    return this.#sealing;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

async function readSlice(blob: BlobLike, start: number, end: number): Promise<Uint8Array> {
  try {
    return new Uint8Array(await blob.slice(start, end).arrayBuffer());
  } catch (error) {
    if ((error as { name?: unknown }).name === 'NotReadableError') {
      throw new TetherError(
        ErrorCode.FILE_CHANGED,
        'the file changed or became unreadable since sendFile; send it again',
        { cause: error },
      );
    }
    throw error;
  }
}
