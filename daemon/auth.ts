import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerlessError } from './errors.ts';
import type { NamespaceName } from './ids.ts';
import type { Store } from './store.ts';

// OpenWhisk-style credentials: "uuid:key", sent as HTTP basic auth. Keys are
// 256 random bits, so a plain sha256 is enough to make a stolen database useless
// without slowing every request down with a password hash.

export type Principal = { kind: 'admin' } | { kind: 'namespace'; namespace: NamespaceName };

const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export function issueKey(store: Store, namespace: NamespaceName | null, now = Date.now()): string {
  const uuid = randomUUID();
  const key = randomBytes(32).toString('base64url');
  store.insertKey(uuid, hashKey(key), namespace, now);
  return `${uuid}:${key}`;
}

/** On first start, an admin credential is written to the data dir, readable by its owner only. */
export function ensureAdminKey(store: Store, dataDir: string): string {
  const file = join(dataDir, 'admin.key');
  if (store.hasAdminKey() && existsSync(file)) return readFileSync(file, 'utf8').trim();
  const auth = issueKey(store, null);
  writeFileSync(file, `${auth}\n`, { mode: 0o600 });
  return auth;
}

const unauthorized = (detail: string) => new PeerlessError('unauthorized', detail, { field: '/headers/authorization', headers: { 'www-authenticate': 'Basic realm="peerless"' } });

export function authenticate(store: Store, header: string | undefined): Principal {
  if (!header) throw unauthorized('authentication required: send the namespace key as HTTP basic auth');
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) throw unauthorized('the authorization header must be HTTP basic auth');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw unauthorized('the credential must have the form uuid:key');
  const row = store.getKey(decoded.slice(0, colon));
  const given = Buffer.from(hashKey(decoded.slice(colon + 1)), 'hex');
  if (!row || !timingSafeEqual(given, Buffer.from(row.hash, 'hex'))) throw unauthorized('the credential is not valid');
  return row.namespace === null ? { kind: 'admin' } : { kind: 'namespace', namespace: row.namespace };
}

export function requireAdmin(p: Principal): void {
  if (p.kind !== 'admin') throw new PeerlessError('forbidden', 'this route needs the admin key');
}

export function requireNamespace(p: Principal, ns: NamespaceName): void {
  if (p.kind === 'namespace' && p.namespace !== ns) throw new PeerlessError('forbidden', `this key does not grant access to namespace ${ns}`, { field: '/params/namespace' });
}
