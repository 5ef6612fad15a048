import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namespaceNetworkName } from '../../sandbox/networks.ts';
import { api, deploy, invoke, waitFor, type Api } from '../helpers/daemon.ts';
import { daemonOn, hostIp, hostsDown, hostsUp, restartEngine, socketOf } from './hosts.ts';

// One real host with an engine of its own (in swarm mode, so namespaces get
// overlay networks as in production): its engine can be restarted under the
// daemon without disturbing the machine's, and it takes the 200-instance load.

const NS = 'one';
const GROUP = 200;
let proc: ChildProcess | undefined;
let dataDir: string;
let call: Api;
const engine = new Docker({ socketPath: socketOf(0) });
const url = `http://${hostIp(0)}:3233`;

const ours = () => engine.listContainers({ all: true, filters: { label: ['peerless.host=one0'] } });
const activation = async (id: string) => (await call('GET', `/api/v1/namespaces/${NS}/activations/${id}`)).body;

beforeAll(async () => {
  await hostsUp(1);
  dataDir = mkdtempSync(join(tmpdir(), 'peerless-one-'));
  // 200 containers of 128 MB are 25 GB of limits, more than this machine's RAM: limits are caps, not reservations.
  proc = await daemonOn(0, dataDir, ['--host-id', 'one0', '--memory-budget-mb', String(GROUP * 128 + 1024), '--pause-grace-ms', '60000']);
  const admin = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const r = await api(url, admin)('PUT', `/api/v1/namespaces/${NS}`);
  expect(r.status).toBe(201);
  call = api(url, r.body.auth);
  await deploy(call, NS, 'sleep', { kind: 'nodejs', code: 'async function main(p) { await new Promise(r => setTimeout(r, p.ms)); return { slept: p.ms } }' });
  // A ring: each instance sends its ID to the next and waits for the previous one's, so all must be up at once.
  await deploy(call, NS, 'ring', {
    kind: 'python',
    code: [
      'import peerless',
      'def main(p):',
      '    me = peerless.instance_id()',
      '    i, n = int(me.split("-")[1]), p["n"]',
      '    nxt, prev = f"r-{(i + 1) % n}", f"r-{(i - 1) % n}"',
      '    peerless.wait_for([nxt], timeout=290)',
      '    peerless.send(nxt, me)',
      '    _, data = peerless.recv(prev, timeout=290)',
      '    return {"me": me, "from": bytes(data).decode()}',
    ].join('\n'),
  }, { limits: { memory: 128, timeout: 300_000 } });
}, 240_000);

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc!.once('exit', r));
  }
  await hostsDown(1);
  // What went wrong inside the daemon, if anything did: its log goes with its data directory.
  const errors = readFileSync(join(dataDir, 'daemon.log'), 'utf8').split('\n').filter((l) => /"level":(50|60)/.test(l));
  if (errors.length > 0) console.log(`daemon errors (${errors.length}):\n${errors.slice(0, 5).join('\n').slice(0, 4000)}`);
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

describe('one host with its own engine', () => {
  it('survives a restart of the Docker engine: what ran on it fails clearly, the pool is rebuilt, new work runs', async () => {
    const long = await invoke(call, NS, 'sleep', { ms: 120_000 }, 'blocking=false');
    const id = long.body.activationId as string;
    await waitFor(async () => (await ours()).some((c) => c.Labels['peerless.activation'] === id && c.State === 'running'), 60_000, 'the long activation\'s container');
    await new Promise((r) => setTimeout(r, 1000));

    await restartEngine(0);

    const a = await waitFor(async () => {
      const x = await activation(id);
      return x.response.status !== 'running' && x;
    }, 30_000, 'the interrupted activation to end');
    expect(a.response.status).toBe('whisk internal error');
    expect(a.response.result.error).toMatch(/Docker engine became unavailable|stopped from outside the action/);
    expect(proc!.exitCode).toBeNull();
    await waitFor(async () => (await call('GET', '/api/v1/status')).body.engine === 'up', 30_000, 'the daemon to see the engine back');

    const after = await invoke(call, NS, 'sleep', { ms: 5 });
    expect(after.body.response).toMatchObject({ status: 'success', result: { slept: 5 } });
    // Nothing of before the restart is left on the engine: every container there is one the pool serves with.
    const left = await ours();
    expect(left.filter((c) => c.State !== 'running' && c.State !== 'paused')).toEqual([]);
    const pool = (await call('GET', '/api/v1/status')).body.containers as Record<string, number>;
    expect(left.length).toBe(Object.values(pool).reduce((x, y) => x + y, 0));
  }, 180_000);

  it(`starts ${GROUP} instances at once on one host's overlay network: all run and reach each other, none is lost`, async () => {
    const t0 = Date.now();
    const r = await invoke(call, NS, 'ring', { n: GROUP }, `blocking=false&instances=r-{0..${GROUP - 1}}`);
    expect(r.status).toBe(202);
    const members = r.body.activations as { instance: string; activationId: string }[];
    expect(members).toHaveLength(GROUP);
    const results = await waitFor(async () => {
      const all = await Promise.all(members.map((m) => activation(m.activationId)));
      return all.every((a) => a.response.status !== 'running') && all;
    }, 400_000, `all ${GROUP} activations to end`);
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    const failed = results.filter((a) => a.response.status !== 'success');
    expect(failed.map((a) => a.response), `${failed.length} failed`).toEqual([]);
    for (const [i, a] of results.entries()) expect(a.response.result).toEqual({ me: `r-${i}`, from: `r-${(i - 1 + GROUP) % GROUP}` });
    expect((await engine.getNetwork(namespaceNetworkName(NS)).inspect()).Driver).toBe('overlay');
    console.log(`${GROUP} instances: all ran and exchanged messages in ${seconds} s`);
    expect((await call('GET', `/api/v1/namespaces/${NS}/instances`)).body.instances).toEqual([]);
  }, 600_000);
});
