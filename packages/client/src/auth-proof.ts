import { ErrorCode, TetherError } from '@tether/protocol';

/**
 * The shared-secret proof of HELLO (PROTOCOL.md section 8: base64 of HMAC-SHA256(secret,
 * "tether-auth-v1\n" + nonce + "\n" + clientId)), with Web Crypto, so the same code runs in Node
 * and in browsers. Browsers offer `crypto.subtle` on https:// pages and localhost only: elsewhere
 * this fails with AUTH_FAILED (a page should not hold a shared secret anyway; see `credentials`).
 */
export async function authProof(
  secret: string | Uint8Array,
  nonce: string,
  clientId: string,
): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) {
    throw new TetherError(
      ErrorCode.AUTH_FAILED,
      'the shared-secret proof needs Web Crypto (crypto.subtle), which a browser offers on https:// pages and localhost only',
    );
  }
  const utf8 = new TextEncoder();
  const key = await subtle.importKey(
    'raw',
    typeof secret === 'string' ? utf8.encode(secret) : secret,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = await subtle.sign('HMAC', key, utf8.encode(`tether-auth-v1\n${nonce}\n${clientId}`));
  return btoa(String.fromCharCode(...new Uint8Array(mac)));
}
