import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import type { DaemonConfig } from './config.ts';

// The user API's certificate and key: the operator's files, or a self-signed pair made once into
// <dataDir>/tls (the key 0600) when TLS is asked for without them. OpenWhisk's clients assume
// https:// for a host with no scheme, and take a self-signed certificate with their insecure option.

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** where the certificate is, for clients to trust (or made: a fresh self-signed pair) */
  certPath: string;
  selfSigned: boolean;
}

export async function tlsFiles(config: DaemonConfig): Promise<TlsFiles | null> {
  const t = config.listen.tls;
  if (!t.enabled) return null;
  if (t.cert !== '') return { cert: readFileSync(t.cert), key: readFileSync(t.key), certPath: t.cert, selfSigned: false };
  const dir = join(config.dataDir, 'tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = [...new Set(['localhost', hostname()])];
    const pems = await generate([{ name: 'commonName', value: hostname() }], {
      keyType: 'ec',
      curve: 'P-256',
      notAfterDate: new Date(Date.now() + 825 * 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: config.listen.host }] }],
    });
    writeFileSync(keyPath, pems.private, { mode: 0o600 });
    chmodSync(keyPath, 0o600);
    writeFileSync(certPath, pems.cert);
  }
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, selfSigned: true };
}
