import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { singleExecutable } from '../helpers/binary.ts';
import { api, cleanupHost, deploy, docker, invoke, ROOT, waitFor } from '../helpers/daemon.ts';
import { ensureSystemdImage, execIn, SYSTEMD_IMAGE } from '../helpers/systemd.ts';

// `peerless install`, `upgrade` and `uninstall` from the single executable on a
// machine whose PID 1 is systemd (a Debian 12 container, test/helpers/systemd.ts),
// with the host's Docker socket: the hardened unit must start the daemon, run
// functions, survive an upgrade in place without systemd seeing a stop, and go.
//
// Two things differ from a real machine, both because the function containers
// are made by the host's engine, which resolves bind mounts on the host:
// - /var/lib/peerless is the host's own directory, mounted at the same path;
// - a drop-in puts the run directory under it (the unit's /run/peerless is a
//   tmpfs only the container sees).
// The container shares the host's network, where the function containers' control bridge is reachable.
// If the host has a /var/lib/peerless of its own (a real install), the test does not run.

const DATA = '/var/lib/peerless';
const PORT = 20000 + Math.floor(Math.random() * 12000);
const HOST = `it-sd-${process.pid}`;
const hostHasPeerless = existsSync(DATA);
let c: Docker.Container | undefined;
let dir: string;

beforeAll(async () => {
  if (hostHasPeerless) return;
  await ensureSystemdImage();
  // A copy: the container must not see dist/peerless change under it when it is rebuilt.
  dir = mkdtempSync(join(tmpdir(), 'pl-sd-'));
  copyFileSync(singleExecutable(), join(dir, 'peerless'));
  copyFileSync(singleExecutable(), join(dir, 'peerless-new'));
  mkdirSync(DATA, { mode: 0o700 });
  c = await docker.createContainer({
    Image: SYSTEMD_IMAGE,
    HostConfig: {
      CapAdd: ['SYS_ADMIN'],
      NetworkMode: 'host',
      Tmpfs: { '/run': '', '/run/lock': '', '/tmp': '' },
      Binds: ['/sys/fs/cgroup:/sys/fs/cgroup:ro', '/var/run/docker.sock:/var/run/docker.sock', `${DATA}:${DATA}`, `${dir}:/opt/dl:ro`],
    },
  });
  await c.start();
  await waitFor(async () => /running|degraded/.test((await execIn(c!, ['systemctl', 'is-system-running'])).out), 60_000, 'systemd up in the container');
  const config = JSON.stringify({ listen: { host: '127.0.0.1', port: PORT }, dataDir: DATA, hostId: HOST });
  const setup = await execIn(c, [
    'sh',
    '-c',
    `mkdir -p /etc/peerless /etc/systemd/system/peerless.service.d && printf '[Service]\\nEnvironment=PEERLESS_RUN_DIR=${DATA}/run\\n' > /etc/systemd/system/peerless.service.d/run-dir.conf && printf '%s' '${config}' > /etc/peerless/config.json`,
  ]);
  expect(setup.code, setup.out).toBe(0);
}, 600_000);

afterAll(async () => {
  if (hostHasPeerless) return;
  await c?.remove({ force: true }).catch(() => undefined);
  await cleanupHost(HOST);
  rmSync(DATA, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const show = async (props: string[]) =>
  Object.fromEntries(
    (await execIn(c!, ['systemctl', 'show', ...props.map((p) => `--property=${p}`), 'peerless'])).out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe.skipIf(hostHasPeerless)('install, upgrade and uninstall under systemd as PID 1', () => {
  it('install: the binary goes to /usr/local/bin, the hardened unit starts it, and it runs fib in both runtimes', async () => {
    const r = await execIn(c!, ['/opt/dl/peerless', 'install']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/install \/opt\/dl\/peerless as \/usr\/local\/bin\/peerless/);
    expect(r.out).not.toMatch(/systemd is not running here/);
    await waitFor(
      async () =>
        fetch(`http://127.0.0.1:${PORT}/healthz`).then(
          (x) => x.ok,
          () => false,
        ),
      60_000,
      'the service answering',
    );
    expect(await show(['ActiveState', 'ExecStart'])).toMatchObject({ ActiveState: 'active' });
    expect((await show(['ExecStart'])).ExecStart).toContain('path=/usr/local/bin/peerless');
    const admin = api(`http://127.0.0.1:${PORT}`, readFileSync(join(DATA, 'admin.key'), 'utf8').trim());
    const ns = await admin('PUT', `/api/v1/namespaces/${HOST}-fib`);
    expect(ns.status).toBe(201);
    const call = api(`http://127.0.0.1:${PORT}`, ns.body.auth);
    for (const [name, file, kind] of [
      ['fibjs', 'fib.js', 'nodejs:default'],
      ['fibpy', 'fib.py', 'python:default'],
    ] as const) {
      expect((await deploy(call, `${HOST}-fib`, name, { kind, code: readFileSync(join(ROOT, 'examples', 'fib', file), 'utf8') })).status).toBe(201);
      const a = await invoke(call, `${HOST}-fib`, name, { n: 20 }, 'blocking=true&result=true');
      expect(a.body, JSON.stringify(a.body)).toMatchObject({ fib: 6765 });
    }
  }, 180_000);

  it('upgrade: in place, finding the daemon from the installed config; systemd sees the same process and no restart', async () => {
    const before = await show(['MainPID', 'NRestarts']);
    const r = await execIn(c!, ['/opt/dl/peerless-new', 'upgrade']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(`daemon \\d+ at http://127\\.0\\.0\\.1:${PORT}`));
    expect(r.out).toMatch(/upgraded: .* \(pid \d+, kept\)/);
    expect(await show(['MainPID', 'NRestarts', 'ActiveState'])).toEqual({ ...before, ActiveState: 'active' });
    expect((await execIn(c!, ['ls', '/usr/local/bin'])).out.split('\n').filter(Boolean).sort()).toEqual(['peerless', 'peerless.previous']);
  }, 120_000);

  it('uninstall: the service stops and its unit and executables go; config and data stay', async () => {
    const r = await execIn(c!, ['/usr/local/bin/peerless', 'uninstall']);
    expect(r.code, r.out).toBe(0);
    expect((await execIn(c!, ['systemctl', 'is-active', 'peerless'])).out.trim()).toBe('inactive');
    expect((await execIn(c!, ['ls', '/usr/local/bin'])).out.trim()).toBe('');
    expect((await execIn(c!, ['test', '-e', '/etc/systemd/system/peerless.service'])).code).toBe(1);
    expect((await execIn(c!, ['test', '-e', '/etc/peerless/config.json'])).code).toBe(0);
    expect(existsSync(join(DATA, 'admin.key'))).toBe(true);
    // The drain on stop removed the daemon's containers.
    expect(await docker.listContainers({ all: true, filters: { label: [`peerless.host=${HOST}`] } })).toEqual([]);
  }, 120_000);
});
