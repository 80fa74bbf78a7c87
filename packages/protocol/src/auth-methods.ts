/** Name of the built-in shared-secret method in CHALLENGE.auth and HELLO.auth.method. */
export const HMAC_AUTH_METHOD = 'hmac-sha256';

/** Method a server lists when its own hook checks `HELLO.auth.credentials` (tokens, ...). */
export const CREDENTIALS_AUTH_METHOD = 'credentials';
