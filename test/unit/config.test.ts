import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, envName, loadConfig, printable, reference, SETTINGS } from '../../daemon/config.ts';

const file = (content: unknown) => {
  const f = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'c.json');
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
};

describe('daemon config', () => {
  it('layers defaults < file < environment < flags', () => {
    const f = file({ listen: { port: 4000 }, pool: { pauseGraceMs: 100, prewarm: { python: 2 } } });
    const c = loadConfig({ file: f, env: { PEERLESS_PORT: '5000', PEERLESS_PAUSE_GRACE_MS: '200' }, flags: { 'pause-grace-ms': '300' } });
    expect(c.listen.port).toBe(5000);
    expect(c.pool.pauseGraceMs).toBe(300);
    expect(c.pool.prewarm).toEqual({ nodejs: DEFAULTS.pool.prewarm.nodejs, python: 2 });
    expect(c.pool.idleTimeoutMs).toBe(DEFAULTS.pool.idleTimeoutMs);
  });

  it('names the key of every bad value', () => {
    const bad = (src: Parameters<typeof loadConfig>[0], key: string) => {
      try {
        loadConfig(src);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).key).toBe(key);
        return;
      }
      throw new Error(`no error for ${key}`);
    };
    bad({ flags: { port: 'eighty' } }, 'listen.port');
    bad({ flags: { port: '70000' } }, 'listen.port');
    bad({ env: { PEERLESS_LOG_LEVEL: 'loud' } }, 'logLevel');
    bad({ flags: { 'host-id': 'has space' } }, 'hostId');
    bad({ flags: { colour: 'red' } }, 'colour');
    bad({ file: file({ pool: { memoryBudget: 1 } }) }, 'pool.memoryBudget');
    bad({ file: file({ pool: 3 }) }, 'pool');
    bad({ file: file('{ nope') }, 'file');
    bad({ file: file([1]) }, 'file');
    bad({ flags: { 'idle-timeout-ms': '5' } }, 'pool.idleTimeoutMs');
  });
});

describe('the settings schema', () => {
  it('is what docs/config.md says (regenerate: node -e "import(\'./daemon/config.ts\').then(m=>process.stdout.write(m.reference()))" > docs/config.md)', () => {
    expect(readFileSync(join(import.meta.dirname, '../../docs/config.md'), 'utf8')).toBe(reference());
  });

  it('derives every flag and environment variable from a setting, and every setting is in the config', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(envName(SETTINGS.find((s) => s.path === 'pool.memoryBudgetMb')!)).toBe('PEERLESS_MEMORY_BUDGET_MB');
    // Every setting reaches the config: each given a value other than its default, by its flag.
    const c = loadConfig({ flags: { 'batch-ms': '9', 'max-code-bytes': '4096', 'min-timeout-ms': '200', 'default-memory-mb': '512' } });
    expect([c.cluster.batchMs, c.limits.codeBytes, c.limits.timeoutMs.min, c.limits.memoryMb.default]).toEqual([9, 4096, 200, 512]);
  });

  it('reads a secret from a file, by flag, environment or config key, and never prints it', () => {
    const key = 'ab'.repeat(32);
    const keyFile = file(`${key}\n`);
    expect(loadConfig({ flags: { 'cluster-key-file': keyFile } }).cluster.key).toBe(key);
    expect(loadConfig({ env: { PEERLESS_CLUSTER_KEY_FILE: keyFile } }).cluster.key).toBe(key);
    expect(loadConfig({ file: file({ cluster: { keyFile } }) }).cluster.key).toBe(key);
    expect(JSON.stringify(printable(loadConfig({ flags: { 'cluster-key-file': keyFile } })))).not.toContain(key);
    expect(() => loadConfig({ flags: { 'port-file': keyFile } })).toThrow(ConfigError);
    expect(() => loadConfig({ flags: { 'cluster-key-file': '/nonexistent/key' } })).toThrow(/cannot read/);
  });

  it('checks limits against one another', () => {
    expect(() => loadConfig({ flags: { 'min-memory-mb': '4096' } })).toThrow(/limits.memoryMb.min/);
    expect(() => loadConfig({ flags: { 'default-timeout-ms': '400000' } })).toThrow(/limits.timeoutMs.default/);
  });
});
