import { authProof as nodeProof } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { authProof } from '../src/auth-proof.js';

describe('auth proof', () => {
  it('auth proof - the Web Crypto proof equals the protocol reference, for string and byte secrets', async () => {
    const cases: [string | Uint8Array, string, string][] = [
      ['s3cret', 'nonce-1', 'client-a'],
      ['ünïcødé secret', 'n', 'id with spaces'],
      [Uint8Array.from([0, 1, 2, 255, 254]), 'AAAA', 'c'],
      ['x'.repeat(200), 'long-key', 'k'],
    ];
    for (const [secret, nonce, clientId] of cases) {
      expect(await authProof(secret, nonce, clientId)).toBe(nodeProof(secret, nonce, clientId));
    }
  });
});
