import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeToken } from '../../cli/install.ts';
import { singleExecutable } from '../helpers/binary.ts';
import { api, waitFor } from '../helpers/daemon.ts';
import { daemonOn, hostIp, hostNs, hostsUp, socketOf } from './hosts.ts';

// `peerless cluster init` on one host and `peerless cluster join` on another,
// each writing under a root of its own (--root: no systemd runs here), against
// the hosts' own engines; then a daemon on each, started from nothing but the
// files those two commands wrote, must find the other.

// As the README has it: the single executable, no checkout behind it.
const BIN = singleExecutable();
const roots = [0, 1].map((i) => mkdtempSync(join(tmpdir(), `pl-join${i}-`)));
const procs: ChildProcess[] = [];

/** Runs `peerless ARGS` inside host i's network namespace, with input on stdin. */
function onHost(i: number, args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string; argv: string[] }> {
  const argv = [`--net=/var/run/netns/${hostNs(i)}`, BIN, ...args];
  return new Promise((resolve) => {
    const p = spawn('nsenter', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, argv }));
    p.stdin.end(input);
  });
}

beforeAll(async () => {
  await hostsUp(3);
}, 600_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 3000));
});

describe('cluster init and join', () => {
  let token = '';

  it('init: keeps the swarm, writes the key (0600) and the config, and prints a join token', async () => {
    const dry = await onHost(0, ['cluster', 'init', '--dry-run', '--root', roots[0]!, '--advertise', hostIp(0), '--docker-socket', socketOf(0)]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/\[dry run\] write \/etc\/peerless\/cluster.key \(mode 600\): 65 bytes, secret, not shown/);
    const r = await onHost(0, ['cluster', 'init', '--root', roots[0]!, '--advertise', hostIp(0), '--docker-socket', socketOf(0)]);
    expect(r.code, r.stderr).toBe(0);
    token = r.stdout.trim().split('\n').pop()!;
    const t = decodeToken(token);
    const key = readFileSync(join(roots[0]!, 'etc/peerless/cluster.key'), 'utf8').trim();
    expect(t.key).toBe(key);
    expect(statSync(join(roots[0]!, 'etc/peerless/cluster.key')).mode & 0o777).toBe(0o600);
    // The key is in the token and the key file, and in nothing else the command printed.
    expect(r.stdout.replace(token, '')).not.toContain(key);
    expect(t.peers[0]).toMatch(new RegExp(`^/ip4/${hostIp(0).replace(/\./g, '\\.')}/tcp/7948/p2p/12D3Koo`));
    const config = JSON.parse(readFileSync(join(roots[0]!, 'etc/peerless/config.json'), 'utf8'));
    expect(config.cluster).toMatchObject({ keyFile: '/etc/peerless/cluster.key', peers: [] });
  });

  it('join: reads the token from standard input, never from its command line, and writes the peers', async () => {
    const r = await onHost(1, ['cluster', 'join', '--root', roots[1]!, '--advertise', hostIp(1), '--docker-socket', socketOf(1)], `${token}\n`);
    expect(r.code, r.stderr).toBe(0);
    const t = decodeToken(token);
    expect(r.argv.join(' ')).not.toContain(t.key);
    expect(r.stdout).not.toContain(t.key);
    expect(readFileSync(join(roots[1]!, 'etc/peerless/cluster.key'), 'utf8').trim()).toBe(t.key);
    const config = JSON.parse(readFileSync(join(roots[1]!, 'etc/peerless/config.json'), 'utf8'));
    expect(config.cluster.peers).toEqual(t.peers);
    const bad = await onHost(1, ['cluster', 'join', '--root', roots[1]!, '--advertise', hostIp(1)], 'PLJ1.garbage\n');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/join token is damaged/);
  });

  it('two daemons started from those files alone find each other', async () => {
    for (const i of [0, 1]) {
      // The files name /etc/peerless/cluster.key; under --root it lives in the root: point the daemon there.
      const config = join(roots[i]!, 'etc/peerless/config.json');
      const c = JSON.parse(readFileSync(config, 'utf8'));
      c.cluster.keyFile = join(roots[i]!, 'etc/peerless/cluster.key');
      writeFileSync(`${config}.test`, JSON.stringify(c));
      procs.push(await daemonOn(i, join(roots[i]!, 'var/lib/peerless'), ['--config', `${config}.test`, '--host-id', `join${i}`, '--drain-ms', '1000'], BIN));
    }
    const peers = async (i: number) => ((await api(`http://${hostIp(i)}:3233`, admin(i))('GET', '/api/v1/cluster/peers')).body.peers ?? []) as { host: string }[];
    await waitFor(async () => (await peers(0)).some((p) => p.host === 'join1') && (await peers(1)).some((p) => p.host === 'join0'), 30_000, 'each daemon listing the other');
  });
});

const admin = (i: number) => readFileSync(join(roots[i]!, 'var/lib/peerless/admin.key'), 'utf8').trim();
