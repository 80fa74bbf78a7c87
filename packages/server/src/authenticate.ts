import {
  ABSOLUTE_MAX_FRAME,
  ErrorCode,
  type HelloBody,
  HMAC_AUTH_METHOD,
  isFrameLimit,
  MAX_CLIENT_ID_BYTES,
  MIN_MAX_FRAME,
  PROTOCOL_VERSION,
  TetherError,
  verifyAuthProof,
} from '@tether/protocol';
import type { ResolvedServerOptions, TlsIdentity } from './options.js';

/** What the server knows of a connection when its HELLO arrives. */
export interface HelloContext {
  /** This connection's CHALLENGE nonce. */
  nonce: string;
  remoteAddress: string;
  tlsIdentity: TlsIdentity | undefined;
}

/** Checks made before authentication: nothing here depends on who the client is. */
export function checkBeforeAuth(body: HelloBody, draining: boolean): TetherError | undefined {
  if (draining) return new TetherError(ErrorCode.SERVER_SHUTTING_DOWN, 'server shutting down');
  if (!body.versions.includes(PROTOCOL_VERSION)) {
    return new TetherError(
      ErrorCode.UNSUPPORTED_VERSION,
      `server speaks version ${PROTOCOL_VERSION}`,
    );
  }
  return undefined;
}

/** Checks made after authentication (PROTOCOL.md section 8 gives the order). */
export function checkShape(body: HelloBody): TetherError | undefined {
  const idBytes = Buffer.byteLength(body.clientId, 'utf8');
  if (idBytes === 0 || idBytes > MAX_CLIENT_ID_BYTES) {
    return new TetherError(
      ErrorCode.BAD_HELLO,
      `clientId must be 1 to ${MAX_CLIENT_ID_BYTES} bytes of UTF-8`,
    );
  }
  if (!isFrameLimit(body.maxFrame)) {
    return new TetherError(
      ErrorCode.BAD_HELLO,
      `maxFrame must be ${MIN_MAX_FRAME} to ${ABSOLUTE_MAX_FRAME}`,
    );
  }
  return undefined;
}

/**
 * Resolves with who the client is, or undefined to refuse. The shared secret (if set) and the
 * hook (if set) must both accept. An authorized client certificate names the client
 * (`tls:<fingerprint>`), else its client id does (`client:<clientId>`), unless the hook says.
 */
export async function authenticate(
  options: Pick<ResolvedServerOptions, 'secret' | 'authenticate'>,
  body: HelloBody,
  context: HelloContext,
): Promise<string | undefined> {
  const { secret, authenticate: hook } = options;
  if (secret !== undefined) {
    const auth = body.auth;
    if (auth?.method !== HMAC_AUTH_METHOD || typeof auth.proof !== 'string') return undefined;
    if (!verifyAuthProof(secret, context.nonce, body.clientId, auth.proof)) return undefined;
  }
  const { tlsIdentity } = context;
  let identity =
    tlsIdentity?.authorized && tlsIdentity.fingerprint256 !== undefined
      ? `tls:${tlsIdentity.fingerprint256}`
      : `client:${body.clientId}`;
  if (hook !== undefined) {
    const verdict = await hook(body, {
      address: context.remoteAddress,
      tlsIdentity,
      nonce: context.nonce,
    });
    if (verdict === false) return undefined;
    if (typeof verdict === 'object') identity = verdict.identity;
  }
  return identity;
}
