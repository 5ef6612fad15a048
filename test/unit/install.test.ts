import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterInitPlan, decodeToken, describe as describeStep, encodeToken, installPlan, uninstallPlan, unitFile, withCluster } from '../../cli/install.ts';

// The plans `peerless install`, `uninstall`, `cluster init` and `join` carry
// out, checked without touching the machine; the commands themselves run in
// test/cluster/join.test.ts against the hosts' engines.

const template = readFileSync(join(import.meta.dirname, '../../systemd/peerless.service'), 'utf8');

describe('install and join plans', () => {
  it('writes a unit that systemd-analyze verifies, starting this executable with the installed config', () => {
    const exe = join(mkdtempSync(join(tmpdir(), 'pl-exe-')), 'peerless');
    writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
    const unit = unitFile(template, exe);
    expect(unit).toContain(`ExecStart=${exe} daemon --config /etc/peerless/config.json`);
    // The hardening of the shipped unit is all there.
    for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'CapabilityBoundingSet=', 'RestrictNamespaces=yes']) expect(unit).toContain(line);
    const file = join(mkdtempSync(join(tmpdir(), 'pl-unit-')), 'peerless.service');
    writeFileSync(file, unit);
    execFileSync('systemd-analyze', ['verify', file], { stdio: 'pipe' });
    const steps = installPlan({ unit });
    expect(steps.map((s) => s.do)).toEqual(['mkdir', 'mkdir', 'write', 'write', 'images', 'systemctl', 'systemctl']);
    expect(steps.find((s) => s.do === 'write' && s.path.endsWith('config.json'))).toMatchObject({ keep: true });
    // The single executable installs itself where the unit starts it, unless it runs from there already.
    expect(installPlan({ unit, binary: '/home/op/peerless' })[0]).toEqual({ do: 'copy', from: '/home/op/peerless', path: '/usr/local/bin/peerless', mode: 0o755 });
    expect(installPlan({ unit, binary: '/usr/local/bin/peerless' })[0]!.do).toBe('mkdir');
  });

  it('keeps data and config on uninstall unless told to purge', () => {
    const paths = (purge: boolean) => uninstallPlan({ purge }).flatMap((s) => (s.do === 'remove' ? [s.path] : []));
    expect(paths(false)).toEqual(['/etc/systemd/system/peerless.service']);
    expect(paths(true)).toEqual(['/etc/systemd/system/peerless.service', '/etc/peerless', '/var/lib/peerless']);
    expect(uninstallPlan({ purge: false, binary: true, previous: true }).flatMap((s) => (s.do === 'remove' ? [s.path] : []))).toEqual([
      '/etc/systemd/system/peerless.service',
      '/usr/local/bin/peerless',
      '/usr/local/bin/peerless.previous',
    ]);
  });

  it('never prints the key, and keeps the rest of an existing config', () => {
    const key = 'ab'.repeat(32);
    const plan = clusterInitPlan({ advertise: '10.0.0.1', key, config: JSON.stringify({ listen: { port: 4000 }, cluster: { key: 'cd'.repeat(32), heartbeatMs: 200 } }) });
    const text = plan.map(describeStep).join('\n');
    expect(text).not.toContain(key);
    expect(text).toContain('secret, not shown');
    const config = JSON.parse(withCluster(JSON.stringify({ listen: { port: 4000 }, cluster: { key: 'cd'.repeat(32), heartbeatMs: 200 } }), { peers: ['/ip4/10.0.0.1/tcp/7948'] }));
    expect(config).toEqual({ listen: { port: 4000 }, cluster: { heartbeatMs: 200, keyFile: '/etc/peerless/cluster.key', listen: ['/ip4/0.0.0.0/tcp/7948'], peers: ['/ip4/10.0.0.1/tcp/7948'] } });
  });

  it('reads back a join token whole, and refuses a damaged one with a clear message', () => {
    const t = { manager: '10.0.0.1:2377', swarmToken: 'SWMTKN-1-x', peers: ['/ip4/10.0.0.1/tcp/7948/p2p/12D3KooWabc'], key: 'ef'.repeat(32) };
    expect(decodeToken(`  ${encodeToken(t)}\n`)).toEqual(t);
    // All of cluster init's output, piped in: the token line is found.
    expect(decodeToken(`write /etc/peerless/config.json\n\nOn each other machine...\n\n${encodeToken(t)}\n`)).toEqual(t);
    expect(() => decodeToken('hello')).toThrow(/not a peerless join token/);
    expect(() => decodeToken(`${encodeToken(t).slice(0, 30)}`)).toThrow(/damaged/);
    expect(() => decodeToken(encodeToken({ ...t, key: 'short' }))).toThrow(/damaged/);
  });
});
