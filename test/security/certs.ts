import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM key and certificate. */
export interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

/** Everything the TLS tests need, generated at test time with the `openssl` CLI. */
export interface TestPki {
  dir: string;
  /** The trusted CA. */
  ca: KeyPair;
  /** Server certificate for 127.0.0.1 and localhost, signed by `ca`. */
  server: KeyPair;
  /** Client certificates signed by `ca` (CN tether-client-1 and tether-client-2). */
  client: KeyPair;
  client2: KeyPair;
  /** An unrelated CA and a server certificate it signed (same SANs): the "wrong CA". */
  otherCa: KeyPair;
  otherServer: KeyPair;
  /** A client certificate from the unrelated CA. */
  otherClient: KeyPair;
  /** Server certificate signed by `ca`, valid 2020-01-01 to 2020-01-02 only. */
  expiredServer: KeyPair;
  /** Removes the temporary directory. */
  remove(): void;
}

export const CLIENT_CN = 'tether-client-1';
export const CLIENT2_CN = 'tether-client-2';

// One config for every step. `openssl ca` is the only OpenSSL 3.0 command that can write a
// notBefore/notAfter in the past, which the expired certificate needs; it wants a database
// (index.txt) and a serial file.
function config(dir: string): string {
  return `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ${dir}
database = ${dir}/index.txt
serial = ${dir}/serial
new_certs_dir = ${dir}
certificate = ${dir}/ca.crt
private_key = ${dir}/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
commonName = supplied
`;
}

/** Generates the whole PKI in a fresh temp dir (EC P-256 keys: a few dozen ms in all). */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'tether-pki-'));
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, config(dir));
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const path = (name: string): string => join(dir, name);
  const key = (name: string): void =>
    openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-out',
      path(`${name}.key`),
    );
  const rootCa = (name: string, cn: string): void => {
    key(name);
    openssl(
      'req',
      '-x509',
      '-new',
      '-config',
      cnf,
      '-extensions',
      'v3_ca',
      '-key',
      path(`${name}.key`),
      '-subj',
      `/CN=${cn}`,
      '-days',
      '30',
      '-out',
      path(`${name}.crt`),
    );
  };
  const csr = (name: string, cn: string): void => {
    key(name);
    openssl(
      'req',
      '-new',
      '-config',
      cnf,
      '-key',
      path(`${name}.key`),
      '-subj',
      `/CN=${cn}`,
      '-out',
      path(`${name}.csr`),
    );
  };
  const leaf = (name: string, cn: string, ca: string, extensions: string): void => {
    csr(name, cn);
    openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path(`${ca}.crt`),
      '-CAkey',
      path(`${ca}.key`),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '30',
      '-sha256',
      '-extfile',
      cnf,
      '-extensions',
      extensions,
      '-out',
      path(`${name}.crt`),
    );
  };

  rootCa('ca', 'Tether Test CA');
  rootCa('other-ca', 'Unrelated Test CA');
  leaf('server', 'localhost', 'ca', 'v3_server');
  leaf('client', CLIENT_CN, 'ca', 'v3_client');
  leaf('client2', CLIENT2_CN, 'ca', 'v3_client');
  leaf('other-server', 'localhost', 'other-ca', 'v3_server');
  leaf('other-client', CLIENT_CN, 'other-ca', 'v3_client');
  csr('expired-server', 'localhost');
  openssl(
    'ca',
    '-batch',
    '-config',
    cnf,
    '-name',
    'test_ca',
    '-extensions',
    'v3_server',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
    '-notext',
    '-in',
    path('expired-server.csr'),
    '-out',
    path('expired-server.crt'),
  );

  const pair = (name: string): KeyPair => ({
    key: readFileSync(path(`${name}.key`)),
    cert: readFileSync(path(`${name}.crt`)),
  });
  return {
    dir,
    ca: pair('ca'),
    server: pair('server'),
    client: pair('client'),
    client2: pair('client2'),
    otherCa: pair('other-ca'),
    otherServer: pair('other-server'),
    otherClient: pair('other-client'),
    expiredServer: pair('expired-server'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
