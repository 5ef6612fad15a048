import { afterAll, describe, expect, it } from 'vitest';
import { cleanupHost, deploy, docker, invoke, namespace, startDaemon, waitFor, api, type TestDaemon } from '../helpers/daemon.ts';

// A daemon that dies (kill -9) or stops must leave nothing running: at the
// next start its containers are removed and its unfinished activations failed.

const HOST = `it-recover-${process.pid}`;
let d: TestDaemon | undefined;

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

const ours = () => docker.listContainers({ all: true, filters: { label: [`peerless.host=${HOST}`] } });

describe('restart recovery', () => {
  it('fails activations left running by a killed daemon and removes its containers', async () => {
    d = await startDaemon({ hostId: HOST });
    const { call, ns } = await namespace(d, `${HOST}-a`);
    await deploy(call, ns, 'long', { kind: 'nodejs', code: 'async function main() { await new Promise(r => setTimeout(r, 60000)); return {} }' });
    await deploy(call, ns, 'quick', { kind: 'nodejs', code: 'function main() { return { ok: 1 } }' });
    const done = await invoke(call, ns, 'quick');
    expect(done.body.response.status).toBe('success');
    const r = await invoke(call, ns, 'long', {}, 'blocking=false');
    expect(r.status).toBe(202);
    const id = r.body.activationId;
    // The activation is on disk as running before the container is even up.
    expect((await call('GET', `/api/v1/namespaces/${ns}/activations/${id}`)).body.response.status).toBe('running');
    await waitFor(async () => (await ours()).some((c) => c.Labels['peerless.activation'] === id && c.State === 'running'), 20_000, 'long container');

    await d.kill();
    expect((await ours()).length).toBeGreaterThan(0);

    d = await startDaemon({ hostId: HOST, dataDir: d.dataDir, port: d.port });
    const after = api(d.url, d.admin);
    const a = await after('GET', `/api/v1/namespaces/${ns}/activations/${id}`);
    expect(a.body.response.status).toBe('whisk internal error');
    expect(a.body.response.result.error).toMatch(/restarted/);
    expect(a.body.end).toBeGreaterThanOrEqual(a.body.start);
    // Finished records are untouched, and nothing of the old run is left on the engine.
    expect((await after('GET', `/api/v1/namespaces/${ns}/activations/${done.body.activationId}`)).body.response.status).toBe('success');
    expect((await ours()).filter((c) => c.Labels['peerless.role'] !== 'prewarm')).toHaveLength(0);
    // The namespace, its key and its functions survived the restart.
    expect((await invoke(call, ns, 'quick')).body.response.result).toEqual({ ok: 1 });
  });

  it('drains running activations on SIGTERM and removes its containers', async () => {
    d ??= await startDaemon({ hostId: HOST });
    const { call, ns } = await namespace(d, `${HOST}-b`);
    await deploy(call, ns, 'twosec', { kind: 'nodejs', code: 'async function main() { await new Promise(r => setTimeout(r, 1500)); return { finished: true } }' });
    const r = await invoke(call, ns, 'twosec', {}, 'blocking=false');
    await waitFor(async () => (await ours()).some((c) => c.Labels['peerless.activation'] === r.body.activationId), 20_000, 'container');
    const { dataDir, port } = d;
    expect(await d.stop()).toBe(0);
    expect(await ours()).toHaveLength(0);
    d = await startDaemon({ hostId: HOST, dataDir, port });
    const a = await call('GET', `/api/v1/namespaces/${ns}/activations/${r.body.activationId}`);
    expect(a.body.response).toMatchObject({ status: 'success', result: { finished: true } });
  });
});
