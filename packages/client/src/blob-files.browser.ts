// The browser build's file module, a chunk of its own loaded at the first use of files (see
// file-engine.browser.ts): the Blob engine and SHA-256 from @noble/hashes (audited, no
// dependencies, incremental; Web Crypto's digest() takes the whole input at once).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { FileEngine, Sha256 } from '@tether/files';
import { BlobTransferEngine } from '@tether/files/blob';
import type { FileEngineEvents } from './file-engine.js';
import type { ResolvedClientOptions } from './options.js';

function nobleSha256(): Sha256 {
  const hash = sha256.create();
  return {
    update: (data) => {
      hash.update(data);
    },
    hex: () => bytesToHex(hash.digest()),
  };
}

/** The Blob engine: Blobs up, Blobs or streams down (`acceptFile`). */
export function makeBlobEngine(
  options: ResolvedClientOptions,
  owner: string,
  events: FileEngineEvents,
): FileEngine {
  const { acceptFile, maxFileSize, now } = options;
  const engine = new BlobTransferEngine({
    owner,
    now,
    sha256: nobleSha256,
    ...(acceptFile === undefined ? {} : { receive: { decide: acceptFile, maxFileSize } }),
  });
  engine.on('file', events.file);
  engine.on('error', events.error);
  return engine;
}
