import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { singleExecutable } from '../helpers/binary.ts';
import { api, CLI, invoke, ROOT, waitFor } from '../helpers/daemon.ts';
import { startTrio, type Trio } from '../helpers/trio.ts';

// A rolling upgrade, one daemon of three, while work runs: daemon 1 starts
// from a checkout's `peerless` (a link to cli/peerless.js, as setup.sh makes
// /usr/local/bin/peerless) and `peerless upgrade --binary dist/peerless`
// replaces it with the single executable. Meanwhile invocations go through
// the other two daemons without pause, and activations already running on
// daemon 1 must finish in its drain. After it, the cluster is mixed-version
// (the checkout's 0.1.0 and the binary's 0.1.0+commit) and runs a job whose
// members span the three daemons.

const dir = mkdtempSync(join(tmpdir(), 'pl-upgrade-'));
const link = join(dir, 'bin', 'peerless');
let t: Trio;
let binary: string;

beforeAll(async () => {
  binary = singleExecutable();
  mkdirSync(join(dir, 'bin'));
  symlinkSync(CLI, link);
  t = await startTrio(`it-upg-${process.pid}`, { cli: (i) => (i === 1 ? link : undefined) });
}, 300_000);

afterAll(async () => {
  await t?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const version = async (i: number) => (await api(t.hosts[i]!.url, t.hosts[i]!.admin)('GET', '/api/v1/status')).body.version as string;

describe('a rolling upgrade of one daemon of three', () => {
  it('refuses to restart onto a file that does not start, and keeps running', async () => {
    const admin = api(t.hosts[1]!.url, t.hosts[1]!.admin);
    const pid = (await admin('GET', '/api/v1/daemon')).body.pid;
    rmSync(link);
    writeFileSync(link, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    try {
      const r = await admin('POST', '/api/v1/daemon/restart');
      expect(r.status).toBe(503);
      expect(r.type).toContain('application/problem+json');
      expect(r.body.detail).toMatch(/not restarting: .* does not start/);
      // A namespace key may not restart a daemon.
      expect((await t.calls[1]!('POST', '/api/v1/daemon/restart')).status).toBe(403);
    } finally {
      rmSync(link);
      symlinkSync(CLI, link);
    }
    expect((await admin('GET', '/api/v1/daemon')).body.pid).toBe(pid);
    // Daemon 0 runs as `node cli/peerless.js`: upgrade will not overwrite a checkout's source file.
    const refused = await promisify(execFile)(process.execPath, [CLI, 'upgrade', '--binary', binary, '--apihost', t.hosts[0]!.url, '--auth', t.hosts[0]!.admin], { encoding: 'utf8' }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/a checkout's script; upgrade will not overwrite it/);
    expect(readFileSync(CLI, 'utf8')).toMatch(/^#!\/usr\/bin\/env node/);
    expect((await invoke(t.calls[1]!, t.ns, 'small', {}, 'blocking=true&result=true')).body).toEqual({ ok: true });
  });

  it('upgrades daemon 1 in place while work runs through the others, and the mixed cluster runs a job across all three', async () => {
    const before = await version(1);
    expect(await version(0)).toBe(before);
    const pid = t.hosts[1]!.proc.pid;

    // Activations of 4 s already running on daemon 1: its drain must let them finish.
    const long = await Promise.all([0, 1, 2].map(() => invoke(t.calls[1]!, t.ns, 'small', { ms: 4000 }, 'blocking=false')));
    for (const r of long) expect(r.status, JSON.stringify(r.body)).toBe(202);
    await waitFor(async () => (await api(t.hosts[1]!.url, t.hosts[1]!.admin)('GET', '/api/v1/status')).body.runningActivations === 3, 30_000, 'three running on daemon 1');

    // Work through daemons 0 and 2 for the whole upgrade, bounded in count and time.
    let upgrading = true;
    const results: { via: number; status: number; ok: boolean }[] = [];
    const load = (async () => {
      const until = Date.now() + 120_000;
      for (let n = 0; (upgrading || n < 10) && n < 400 && Date.now() < until; n++) {
        const via = n % 2 === 0 ? 0 : 2;
        const r = await invoke(t.calls[via]!, t.ns, 'small', { ms: 100 }, 'blocking=true&result=true');
        results.push({ via, status: r.status, ok: r.body?.ok === true });
      }
    })();

    const up = await promisify(execFile)(process.execPath, [CLI, 'upgrade', '--binary', binary, '--apihost', t.hosts[1]!.url, '--auth', t.hosts[1]!.admin], { encoding: 'utf8' });
    upgrading = false;
    await load;
    expect(up.stdout).toMatch(/upgraded: 0\.1\.0 → 0\.1\.0\+[0-9a-f]{12}/);
    console.log(`${up.stdout.trim().split('\n').pop()}; ${results.length} invocations through daemons 0 and 2 meanwhile`);

    // Daemon 1 is the single executable now, in the same process; the others are as they were.
    const after = await version(1);
    expect(after).toMatch(/^0\.1\.0\+[0-9a-f]{12}/);
    expect(after).not.toBe(before);
    expect(readFileSync(link).subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(t.hosts[1]!.proc.pid).toBe(pid);
    expect(t.hosts[1]!.proc.exitCode).toBeNull();
    expect(await version(0)).toBe(before);
    expect(await version(2)).toBe(before);

    // Nothing was lost: every invocation through daemons 0 and 2 succeeded, and the drain let daemon 1's finish.
    expect(results.length).toBeGreaterThanOrEqual(10);
    expect(results.filter((r) => r.status !== 200 || !r.ok)).toEqual([]);
    for (const r of long) {
      const a = await waitFor(
        async () => {
          const g = await t.calls[0]!('GET', t.path(`/activations/${r.body.activationId}`));
          return g.status === 200 && g.body.end ? g.body : null;
        },
        30_000,
        'a drained activation',
      );
      expect(a.response.status).toBe('success');
    }

    // The mixed-version cluster: all three see each other, and a job started on the upgraded daemon spans them.
    await t.meshed();
    const input = JSON.parse(readFileSync(join(ROOT, 'examples/wordcount/input-50.json'), 'utf8'));
    const wc = await invoke(t.calls[1]!, t.ns, 'wordcount', { ...input, workers: 12 }, 'blocking=true&result=true&instance=wc-upg');
    expect(wc.status, JSON.stringify(wc.body)).toBe(200);
    const job = await t.job(1, wc.body.job);
    expect(job.members).toHaveLength(12);
    expect(new Set(job.members.map((m) => m.host)).size).toBe(3);

    // And back: the checkout's link was kept as .previous, and upgrading to it rolls daemon 1 back.
    expect(readlinkSync(`${link}.previous`)).toBe(CLI);
    const back = await promisify(execFile)(process.execPath, [CLI, 'upgrade', '--binary', `${link}.previous`, '--apihost', t.hosts[1]!.url, '--auth', t.hosts[1]!.admin], { encoding: 'utf8' });
    expect(back.stdout).toMatch(/upgraded: 0\.1\.0\+[0-9a-f]{12}\S* → 0\.1\.0 in/);
    expect(readlinkSync(link)).toBe(CLI);
    expect(await version(1)).toBe(before);
    expect(t.hosts[1]!.proc.pid).toBe(pid);
    expect((await invoke(t.calls[1]!, t.ns, 'small', {}, 'blocking=true&result=true')).body).toEqual({ ok: true });
  }, 300_000);
});
