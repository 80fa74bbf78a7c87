import type { ConnectionOptions } from 'node:tls';
import type { ClientOptions } from '@tether/client';
import {
  type Endpoint,
  flag,
  type Parsed,
  readOptionFile,
  secret,
  str,
  UsageError,
} from './args.js';

/** Builds the TetherClient options shared by every client command. */
export function clientOptions(parsed: Parsed, endpoint: Endpoint): ClientOptions {
  const options: ClientOptions = { host: endpoint.host, port: endpoint.port };
  const shared = secret(parsed);
  if (shared !== undefined) options.secret = shared;
  const clientId = str(parsed, 'client-id');
  if (clientId !== undefined) options.clientId = clientId;
  const ca = str(parsed, 'ca');
  const cert = str(parsed, 'cert');
  const key = str(parsed, 'key');
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('--cert and --key go together');
  }
  if (flag(parsed, 'tls') || ca !== undefined || cert !== undefined || flag(parsed, 'insecure')) {
    const tls: ConnectionOptions = {};
    if (ca !== undefined) tls.ca = readOptionFile('ca', ca);
    if (cert !== undefined && key !== undefined) {
      tls.cert = readOptionFile('cert', cert);
      tls.key = readOptionFile('key', key);
    }
    if (flag(parsed, 'insecure')) tls.rejectUnauthorized = false;
    options.tls = tls;
  }
  return options;
}
