import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from '../../daemon/config.ts';

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
