import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The client's proof of the shared secret for one connection: base64 of
 * HMAC-SHA256(secret, "tether-auth-v1\n" + nonce + "\n" + clientId). The nonce is fresh per
 * connection, so a captured HELLO is worthless later; the secret itself never crosses the wire.
 */
export function authProof(secret: string | Uint8Array, nonce: string, clientId: string): string {
  return createHmac('sha256', secret)
    .update(`tether-auth-v1\n${nonce}\n${clientId}`)
    .digest('base64');
}

/** Checks a proof in constant time (for proofs of the right length). */
export function verifyAuthProof(
  secret: string | Uint8Array,
  nonce: string,
  clientId: string,
  proof: string,
): boolean {
  const expected = Buffer.from(authProof(secret, nonce, clientId), 'base64');
  const given = Buffer.from(proof, 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
