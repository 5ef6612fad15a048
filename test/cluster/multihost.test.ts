import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceNetworkName } from '../../sandbox/networks.ts';
import { api, clusterFlags, deploy, invoke, keyFile, ROOT, waitFor, type Api } from '../helpers/daemon.ts';
import { forgedEntry, forgeDelta } from '../helpers/forger.ts';
import { clusterAddr, daemonOn, hostIp, hostsDown, hostsUp, setLink, socketOf, splitOff } from './hosts.ts';

// Three real hosts: network namespaces, each with its own Docker engine and
// its own peerless daemon, the engines in one swarm. Instances on different
// hosts talk over their namespace's overlay network.

const N = 3;
const KEY = randomBytes(32).toString('hex');
const FAILURE_MS = 1500;
const NS = 'mh';
const procs: (ChildProcess | null)[] = [];
const dataDirs: string[] = [];
let call: Api[] = [];

const url = (i: number) => `http://${hostIp(i)}:3233`;

async function startDaemon(i: number): Promise<void> {
  dataDirs[i] ??= mkdtempSync(join(tmpdir(), `peerless-mh${i}-`));
  procs[i] = await daemonOn(i, dataDirs[i]!, [
    '--host-id',
    `mh${i}`,
    ...clusterFlags(i, KEY, clusterAddr, N),
    '--failure-timeout-ms',
    String(FAILURE_MS),
    '--heartbeat-ms',
    '200',
    '--drain-ms',
    '3000',
  ]);
}

const peersOf = async (i: number) => ((await call[i]!('GET', '/api/v1/cluster/peers')).body.peers ?? []) as { host: string; incarnation: number }[];
let killedIncarnation = 0;
let killedActivation = '';
const instancesOn = async (i: number) => ((await call[i]!('GET', `/api/v1/namespaces/${NS}/instances`)).body.instances ?? []) as { instance: string; host: string; ip: string }[];

beforeAll(async () => {
  await hostsUp(N);
  for (let i = 0; i < N; i++) await startDaemon(i);
  const admin = readFileSync(join(dataDirs[0]!, 'admin.key'), 'utf8').trim();
  const r = await api(url(0), admin)('PUT', `/api/v1/namespaces/${NS}`);
  expect(r.status).toBe(201);
  call = Array.from({ length: N }, (_, i) => api(url(i), r.body.auth));
  await deploy(call[0]!, NS, 'pingpong', { kind: 'nodejs', code: readFileSync(join(ROOT, 'examples/pingpong/pingpong.js'), 'utf8') });
  await deploy(call[0]!, NS, 'hold', { kind: 'nodejs', code: `const peerless = require('peerless'); async function main(p) { await peerless.recv(undefined, p.ms).catch(() => {}); return {} }` });
}, 180_000);

afterAll(async () => {
  for (const p of procs) {
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }
  await hostsDown(N);
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
}, 180_000);

describe('three hosts, each with its own engine and daemon', () => {
  it("runs a function created on host 1 when invoked through host 3, in host 3's engine", async () => {
    await waitFor(async () => (await call[2]!('GET', `/api/v1/namespaces/${NS}/actions/pingpong`)).status === 200, 20_000, 'replicated function');
    const engine3 = new Docker({ socketPath: socketOf(2) });
    const before = (await engine3.listContainers({ all: true })).length;
    const r = await invoke(call[2]!, NS, 'hold', { ms: 1 }, 'blocking=true');
    expect(r.status).toBe(200);
    expect(r.body.host).toBe('mh2');
    expect((await engine3.listContainers({ all: true })).length).toBeGreaterThan(before);
  });

  it('lets instances on different hosts find each other and talk over the namespace overlay', async () => {
    const pong = invoke(call[0]!, NS, 'pingpong', { n: 500, size: 65536 }, 'blocking=true&result=true&instance=pong');
    await waitFor(async () => (await instancesOn(2)).some((e) => e.instance === 'pong' && e.host === 'mh0'), 30_000, 'pong seen on host 3');
    const ping = await invoke(call[2]!, NS, 'pingpong', { n: 500, size: 65536 }, 'blocking=true&result=true&instance=ping');
    expect(ping.body).toMatchObject({ role: 'ping', reply: `got 500 messages, ${500 * 65536} bytes` });
    expect((await pong).body).toEqual({ role: 'pong', received: 500, bytes: 500 * 65536 });
    const net = await new Docker({ socketPath: socketOf(0) }).getNetwork(namespaceNetworkName(NS)).inspect();
    expect(net.Driver).toBe('overlay');
  });

  it('drops a host whose link goes down and converges again when it comes back', async () => {
    await invoke(call[1]!, NS, 'hold', { ms: 60_000 }, 'blocking=false&instance=h1-holder');
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'h1-holder'), 20_000, 'holder seen on host 1');
    setLink(1, false);
    const t0 = Date.now();
    try {
      await waitFor(async () => !(await instancesOn(0)).some((e) => e.instance === 'h1-holder'), 10_000, 'holder dropped on host 1');
      expect(Date.now() - t0).toBeLessThan(FAILURE_MS + 2000);
    } finally {
      setLink(1, true);
    }
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'h1-holder') && (await instancesOn(2)).some((e) => e.instance === 'h1-holder'), 20_000, 'maps converge');
  });

  it('settles an instance ID granted on both sides of a partition: every host names the older instance, the younger stops and says why', async () => {
    await waitFor(async () => (await peersOf(1)).length === N - 1, 20_000, 'host 2 back with everyone');
    splitOff(1, [0, 2], true);
    let younger: string;
    try {
      await waitFor(async () => (await peersOf(1)).length === 0 && (await peersOf(0)).length === N - 2, 10_000, 'the two sides lost each other');
      // Each side has arbiters of its own: both grant the ID. Host 2's is asked first, so it is the older.
      expect((await invoke(call[1]!, NS, 'hold', { ms: 60_000 }, 'blocking=false&instance=twin')).status).toBe(202);
      const other = await invoke(call[0]!, NS, 'hold', { ms: 60_000 }, 'blocking=false&instance=twin');
      expect(other.status).toBe(202);
      younger = other.body.activationId;
    } finally {
      splitOff(1, [0, 2], false);
    }
    const twins = async (i: number) => (await instancesOn(i)).filter((e) => e.instance === 'twin');
    await waitFor(
      async () => {
        for (let i = 0; i < N; i++) if ((await twins(i)).map((e) => e.host).join() !== 'mh1') return false;
        return true;
      },
      20_000,
      "every host naming host 2's twin",
    );
    const ended = await waitFor(
      async () => {
        const a = (await call[0]!('GET', `/api/v1/namespaces/${NS}/activations/${younger}`)).body;
        return a.response?.status !== 'running' && a.response ? a : null;
      },
      20_000,
      'the younger twin stopped',
    );
    expect(ended.response.status).toBe('whisk internal error');
    expect(ended.response.result.error).toMatch(/granted on both sides of a network partition; the instance started first \(activation \w+ on host mh1\)/);
    // Only the holder is still there once the younger one has gone.
    expect((await twins(0)).map((e) => e.host)).toEqual(['mh1']);
  });

  it("drops a killed daemon's instances from the other hosts within the failure timeout", async () => {
    killedActivation = (await invoke(call[2]!, NS, 'hold', { ms: 60_000 }, 'blocking=false&instance=h2-holder')).body.activationId;
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'h2-holder'), 20_000, 'seen');
    killedIncarnation = (await peersOf(0)).find((p) => p.host === 'mh2')!.incarnation;
    procs[2]!.kill('SIGKILL');
    await new Promise((r) => procs[2]!.once('exit', r));
    const t0 = Date.now();
    await waitFor(async () => !(await instancesOn(0)).some((e) => e.instance === 'h2-holder') && !(await instancesOn(1)).some((e) => e.instance === 'h2-holder'), 10_000, 'dropped');
    expect(Date.now() - t0).toBeLessThan(FAILURE_MS + 1500);
  });

  it("keeps out a daemon without the cluster key, on the killed daemon's host and address", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerless-mh-outsider-'));
    const outsider = await daemonOn(2, dir, [
      '--host-id',
      'mh2-outsider',
      '--cluster-key-file',
      keyFile(randomBytes(32).toString('hex')),
      '--cluster-listen',
      clusterAddr(2),
      '--cluster-peers',
      `${clusterAddr(0)},${clusterAddr(1)}`,
      '--heartbeat-ms',
      '200',
    ]);
    try {
      const own = api(url(2), readFileSync(join(dir, 'admin.key'), 'utf8').trim());
      // Several of its dial rounds (each 2 s) and the members' own dials of that address.
      await new Promise((r) => setTimeout(r, 5000));
      expect((await own('GET', '/api/v1/cluster/peers')).body.peers).toEqual([]);
      for (const i of [0, 1]) expect((await peersOf(i)).map((p) => p.host)).not.toContain('mh2-outsider');
    } finally {
      outsider.kill('SIGTERM');
      await new Promise((r) => outsider.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes the killed daemon's restart as a new incarnation: its old instance stays gone and failed, new ones are seen", async () => {
    await startDaemon(2);
    await waitFor(async () => (await peersOf(0)).some((p) => p.host === 'mh2' && p.incarnation > killedIncarnation), 30_000, 'mh2 back, reborn');
    await invoke(call[2]!, NS, 'hold', { ms: 3000 }, 'blocking=false&instance=h2-reborn');
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'h2-reborn'), 20_000, 'reborn seen from host 0');
    expect((await instancesOn(1)).map((e) => e.instance)).not.toContain('h2-holder');
    // What ran when its daemon died is recorded as failed, read through another host.
    const a = await call[0]!('GET', `/api/v1/namespaces/${NS}/activations/${killedActivation}`);
    expect(a.status).toBe(200);
    expect(a.body.response.status).toBe('whisk internal error');
  });

  it('drops a delta whose origin is not its signer', async () => {
    const victim = (await call[0]!('GET', '/api/v1/cluster/peers')).body.self.peerId as string;
    const forger = await forgeDelta(KEY, clusterAddr(1), victim, forgedEntry(NS, 'forged'));
    try {
      await waitFor(async () => (await call[1]!('GET', '/api/v1/status')).body.forgedDropped > 0, 10_000, 'forgery noticed on host 1');
      for (let i = 0; i < N; i++) expect((await instancesOn(i)).map((e) => e.instance)).not.toContain('forged');
    } finally {
      await forger.stop();
    }
  });
});
