import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { annotation, cleanupHost, deploy, docker, invoke, namespace, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Faults from outside the daemon: a container killed or removed by someone
// else, and a data disk that fills up. Each must end in a clear state with
// nothing lost and nothing left running. (Engine restarts: test/cluster/engine.test.ts,
// which restarts an engine of its own rather than the machine's.)

const HOST = `it-faults-${process.pid}`;
const DISK_HOST = `it-disk-${process.pid}`;
const daemons: TestDaemon[] = [];
let mountPoint: string | undefined;

afterAll(async () => {
  for (const d of daemons) await d.stop();
  await cleanupHost(HOST, daemons[0]?.dataDir);
  await cleanupHost(DISK_HOST);
  if (mountPoint) {
    execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  }
}, 60_000);

const containersOf = (host: string, activation?: string) =>
  docker.listContainers({ all: true, filters: { label: [`peerless.host=${host}`, ...(activation ? [`peerless.activation=${activation}`] : [])] } });

const activation = async (call: Api, ns: string, id: string) => (await call('GET', `/api/v1/namespaces/${ns}/activations/${id}`)).body;

describe('a container killed from outside', () => {
  let d: TestDaemon;
  let call: Api;
  let ns: string;

  it('fails the activation it was running with a clear error, removes it, and serves the next one', async () => {
    d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '60000'] });
    daemons.push(d);
    ({ call, ns } = await namespace(d, `${HOST}-k`));
    await deploy(call, ns, 'sleep', { kind: 'nodejs', code: 'async function main(p) { await new Promise(r => setTimeout(r, p.ms)); return { slept: p.ms } }' });
    const r = await invoke(call, ns, 'sleep', { ms: 30_000 }, 'blocking=false');
    const id = r.body.activationId as string;
    const [c] = await waitFor(
      async () => {
        const cs = await containersOf(HOST, id);
        return cs.length > 0 && cs[0]!.State === 'running' && cs;
      },
      30_000,
      "the activation's container",
    );
    // Give the proxy time to take the /run: the kill must land mid-invocation.
    await new Promise((s) => setTimeout(s, 1000));
    await docker.getContainer(c!.Id).kill();
    const a = await waitFor(
      async () => {
        const x = await activation(call, ns, id);
        return x.response.status !== 'running' && x;
      },
      10_000,
      'the activation to end',
    );
    expect(a.response.status).toBe('whisk internal error');
    expect(a.response.result.error).toMatch(/stopped from outside the action/);
    await waitFor(async () => (await containersOf(HOST, id)).length === 0, 10_000, 'the killed container to be removed');
    const next = await invoke(call, ns, 'sleep', { ms: 1 });
    expect(next.body.response).toMatchObject({ status: 'success', result: { slept: 1 } });
  }, 90_000);

  it('drops an idle container removed from outside, so the next invocation does not hit it', async () => {
    const warm = await invoke(call, ns, 'sleep', { ms: 1 });
    expect(warm.body.response.status).toBe('success');
    const idle = (await containersOf(HOST)).filter((c) => c.Labels['peerless.function'] === 'sleep');
    expect(idle).toHaveLength(1);
    await docker.getContainer(idle[0]!.Id).remove({ force: true });
    await waitFor(async () => ((await d.logs()).match(/idle container died outside the platform/g) ?? []).length > 0, 5_000, 'the pool to notice');
    const after = await invoke(call, ns, 'sleep', { ms: 2 });
    expect(after.body.response).toMatchObject({ status: 'success', result: { slept: 2 } });
    expect(annotation(after.body, 'coldStart')).toBe(true);
  }, 60_000);
});

describe('a full data disk', () => {
  it('answers 507 problem+json, keeps finished outcomes in memory, and writes them once there is room', async () => {
    mountPoint = mkdtempSync(join(tmpdir(), 'peerless-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint]);
    const dataDir = join(mountPoint, 'data');
    mkdirSync(dataDir);
    // As under systemd: state on the data disk, sockets and container directories on the runtime directory.
    const d = await startDaemon({ hostId: DISK_HOST, dataDir, flags: ['--run-dir', mkdtempSync(join(tmpdir(), 'peerless-run-'))] });
    daemons.push(d);
    const { call, ns } = await namespace(d, `${DISK_HOST}-d`);
    await deploy(call, ns, 'sleep', { kind: 'nodejs', code: 'async function main(p) { await new Promise(r => setTimeout(r, p.ms)); return { slept: p.ms, pad: "x".repeat(p.pad ?? 0) } }' });
    expect((await invoke(call, ns, 'sleep', { ms: 1 })).body.response.status).toBe('success');

    // An activation that starts with room and ends without.
    const inFlight = invoke(call, ns, 'sleep', { ms: 3000, pad: 200_000 });
    await new Promise((r) => setTimeout(r, 800));
    const filler = join(mountPoint, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      /* dd stops at "No space left on device": that is the point */
    }

    const create = await deploy(call, ns, 'other', { kind: 'nodejs', code: `function main() { return { big: "${'y'.repeat(300_000)}" } }` });
    expect(create.status).toBe(507);
    expect(create.type).toContain('application/problem+json');
    expect(create.body).toMatchObject({ status: 507, type: 'https://peerless.dev/problems/insufficient_storage' });
    expect(JSON.stringify(create.body)).not.toMatch(/at .*\.ts:\d+/);

    const finished = await inFlight;
    expect(finished.status).toBe(200);
    expect(finished.body.response).toMatchObject({ status: 'success', result: { slept: 3000 } });
    const id = finished.body.activationId as string;
    const status = (await call('GET', '/api/v1/status')).body;
    expect(status.unsavedActivations).toBe(1);

    // Invocations refused while full are refused before anything runs: no record, no container.
    const before = new Set((await containersOf(DISK_HOST)).map((c) => c.Id));
    const refused = await invoke(call, ns, 'sleep', { ms: 1, pad: 200_000 });
    expect(refused.status).toBe(507);
    expect(refused.body.type).toBe('https://peerless.dev/problems/insufficient_storage');
    expect((await containersOf(DISK_HOST)).filter((c) => !before.has(c.Id))).toHaveLength(0);
    expect((await fetch(`${d.url}/healthz`)).ok).toBe(true);

    rmSync(filler);
    const saved = await waitFor(
      async () => {
        const a = await activation(call, ns, id);
        return a.response.status === 'success' && a;
      },
      10_000,
      'the kept outcome to reach the disk',
    );
    expect(saved.response.result.slept).toBe(3000);
    expect((await call('GET', '/api/v1/status')).body.unsavedActivations).toBe(0);
    const list = (await call('GET', `/api/v1/namespaces/${ns}/activations?limit=50`)).body as { response?: { status: string } }[];
    expect(list.filter((a) => a.response?.status === 'running')).toHaveLength(0);
    expect((await deploy(call, ns, 'other', { kind: 'nodejs', code: 'function main() { return { ok: 1 } }' })).status).toBe(201);
    expect((await invoke(call, ns, 'other')).body.response.result).toEqual({ ok: 1 });
  }, 120_000);
});
