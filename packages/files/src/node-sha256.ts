import { createHash } from 'node:crypto';
import type { Sha256 } from './sha256.js';

/** Node's SHA-256 (OpenSSL). */
export function nodeSha256(): Sha256 {
  const hash = createHash('sha256');
  return {
    update: (data) => {
      hash.update(data);
    },
    hex: () => hash.digest('hex'),
  };
}
