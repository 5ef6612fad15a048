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
// daemon without disturbing the machine's, and it takes the load of
// hundreds of instances at once.

const NS = 'one';
const GROUP = 200;
/** instances to a container in the big ring */
const SEATS = 20;
/** the ring of one container per instance: enough for the engine's parallel creates on the overlay, few enough for CI's two cores */
const SINGLES = 40;
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
  // Room for both rings' containers at once (the first ring's stay warm while the second runs).
  proc = await daemonOn(0, dataDir, ['--host-id', 'one0', '--memory-budget-mb', String((GROUP / SEATS) * 512 + SINGLES * 128 + 1024), '--pause-grace-ms', '60000']);
  const admin = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const r = await api(url, admin)('PUT', `/api/v1/namespaces/${NS}`);
  expect(r.status).toBe(201);
  call = api(url, r.body.auth);
  await deploy(call, NS, 'sleep', { kind: 'nodejs', code: 'async function main(p) { await new Promise(r => setTimeout(r, p.ms)); return { slept: p.ms } }' });
  // A ring: each instance sends its ID to the next and waits for the previous one's, so all must be up at once.
  const ring = [
    'import peerless',
    'def main(p):',
    '    me = peerless.instance_id()',
    '    pre, i = me.rsplit("-", 1)',
    '    i, n = int(i), p["n"]',
    '    nxt, prev = f"{pre}-{(i + 1) % n}", f"{pre}-{(i - 1) % n}"',
    '    peerless.wait_for([nxt], timeout=170)',
    '    peerless.send(nxt, me)',
    '    _, data = peerless.recv(prev, timeout=170)',
    '    return {"me": me, "from": bytes(data).decode()}',
  ].join('\n');
  // Many instances to a container (forked from one loaded interpreter), and one container each.
  await deploy(call, NS, 'ring', { kind: 'python', code: ring }, { limits: { memory: 512, timeout: 180_000, concurrency: SEATS } });
  await deploy(call, NS, 'ring1', { kind: 'python', code: ring }, { limits: { memory: 128, timeout: 180_000 } });
}, 240_000);

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc!.once('exit', r));
  }
  await hostsDown(1);
  // What went wrong inside the daemon, if anything did: its log goes with its data directory.
  const errors = readFileSync(join(dataDir, 'daemon.log'), 'utf8')
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l));
  if (errors.length > 0) console.log(`daemon errors (${errors.length}):\n${errors.slice(0, 5).join('\n').slice(0, 4000)}`);
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

describe('one host with its own engine', () => {
  it('survives a restart of the Docker engine: what ran on it fails clearly, the pool is rebuilt, new work runs', async () => {
    const long = await invoke(call, NS, 'sleep', { ms: 120_000 }, 'blocking=false');
    const id = long.body.activationId as string;
    await waitFor(async () => (await ours()).some((c) => c.Labels['peerless.activation'] === id && c.State === 'running'), 60_000, "the long activation's container");
    await new Promise((r) => setTimeout(r, 1000));

    await restartEngine(0);

    const a = await waitFor(
      async () => {
        const x = await activation(id);
        return x.response.status !== 'running' && x;
      },
      30_000,
      'the interrupted activation to end',
    );
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

  /** Starts a ring of n instances of fn at once and checks every one ran and heard from the one before it. */
  async function ringOf(fn: string, prefix: string, n: number): Promise<string> {
    const t0 = Date.now();
    const r = await invoke(call, NS, fn, { n }, `blocking=false&instances=${prefix}-{0..${n - 1}}`);
    expect(r.status).toBe(202);
    const members = r.body.activations as { instance: string; activationId: string }[];
    expect(members).toHaveLength(n);
    const results = await waitFor(
      async () => {
        const all = await Promise.all(members.map((m) => activation(m.activationId)));
        return all.every((a) => a.response.status !== 'running') && all;
      },
      240_000,
      `all ${n} activations to end`,
    );
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    const failed = results.filter((a) => a.response.status !== 'success');
    expect(
      failed.map((a) => a.response),
      `${failed.length} failed`,
    ).toEqual([]);
    for (const [i, a] of results.entries()) expect(a.response.result).toEqual({ me: `${prefix}-${i}`, from: `${prefix}-${(i - 1 + n) % n}` });
    expect((await engine.getNetwork(namespaceNetworkName(NS)).inspect()).Driver).toBe('overlay');
    expect((await call('GET', `/api/v1/namespaces/${NS}/instances`)).body.instances).toEqual([]);
    return seconds;
  }
  const containersOf = async (fn: string) => (await ours()).filter((c) => c.Labels['peerless.function'] === fn).length;

  it(`starts ${GROUP} instances at once, ${SEATS} to a container, on one host's overlay network: all run and reach each other, none is lost`, async () => {
    const seconds = await ringOf('ring', 'r', GROUP);
    // Packed as the function's concurrency allows: never more containers than that needs.
    const n = await containersOf('ring');
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(GROUP / SEATS);
    console.log(`${GROUP} instances in ${n} containers: all ran and exchanged messages in ${seconds} s`);
  }, 300_000);

  it(`starts ${SINGLES} instances at once in a container each on the overlay network: all run and reach each other, none is lost`, async () => {
    const seconds = await ringOf('ring1', 's', SINGLES);
    expect(await containersOf('ring1')).toBeGreaterThanOrEqual(SINGLES);
    console.log(`${SINGLES} instances in a container each: all ran and exchanged messages in ${seconds} s`);
  }, 300_000);
});
