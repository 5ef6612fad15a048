import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authenticate, ensureAdminKey, issueKey } from '../../daemon/auth.ts';
import { PeerlessError } from '../../daemon/errors.ts';
import type { NamespaceName } from '../../daemon/ids.ts';
import { Store } from '../../daemon/store.ts';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

describe('auth', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-'));
  const store = new Store(join(dir, 'db'));

  it('writes the admin key once, mode 0600, and keeps only its hash', () => {
    const admin = ensureAdminKey(store, dir);
    expect(ensureAdminKey(store, dir)).toBe(admin);
    expect(statSync(join(dir, 'admin.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'admin.key'), 'utf8').trim()).toBe(admin);
    const row = store.getKey(admin.split(':')[0]!)!;
    expect(row.hash).not.toContain(admin.split(':')[1]);
    expect(authenticate(store, basic(admin))).toEqual({ kind: 'admin' });
  });

  it('maps a namespace key to its namespace and refuses anything else with 401', () => {
    store.createNamespace('t1' as NamespaceName, 0);
    const key = issueKey(store, 't1' as NamespaceName);
    expect(authenticate(store, basic(key))).toEqual({ kind: 'namespace', namespace: 't1' });
    const [uuid, secret] = key.split(':');
    for (const h of [undefined, 'Bearer x', basic('nocolon'), basic(`${uuid}:${secret}x`), basic(`00000000-0000-0000-0000-000000000000:${secret}`)]) {
      expect(() => authenticate(store, h)).toThrow(PeerlessError);
      try {
        authenticate(store, h);
      } catch (e) {
        expect((e as PeerlessError).status).toBe(401);
      }
    }
  });
});
