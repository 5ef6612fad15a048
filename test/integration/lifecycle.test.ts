import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotation, cleanupHost, deploy, docker, invoke, namespace, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// The single-host platform end to end, against the real Docker engine.

const HOST = `it-life-${process.pid}`;
let d: TestDaemon;
let call: Api;
let ns: string;

const containersOf = async (fn: string) => docker.listContainers({ all: true, filters: { label: [`peerless.host=${HOST}`, `peerless.function=${fn}`] } });

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '300', '--idle-timeout-ms', '2500'] });
  ({ call, ns } = await namespace(d, `${HOST}-a`));
});

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

describe('functions', () => {
  it('creates, reads, updates, lists and deletes a function', async () => {
    const code = 'function main(p) { return { v: 1, p } }';
    const c = await call('PUT', `/api/v1/namespaces/${ns}/actions/crud`, { exec: { kind: 'nodejs', code }, limits: { memory: 128, timeout: 5000 }, parameters: [{ key: 'x', value: 7 }] });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ name: 'crud', version: '0.0.1', limits: { memory: 128, timeout: 5000 }, exec: { kind: 'nodejs', main: 'main' } });
    expect(c.body.exec.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const again = await call('PUT', `/api/v1/namespaces/${ns}/actions/crud`, { exec: { kind: 'nodejs', code } });
    expect(again.status).toBe(409);

    const g = await call('GET', `/api/v1/namespaces/${ns}/actions/crud`);
    expect(g.body.exec.code).toBe(code);
    expect(g.body.parameters).toEqual([{ key: 'x', value: 7 }]);

    const r1 = await invoke(call, ns, 'crud', { y: 1 });
    expect(r1.body.response.result).toEqual({ v: 1, p: { x: 7, y: 1 } });

    const u = await deploy(call, ns, 'crud', { kind: 'nodejs', code: 'function main() { return { v: 2 } }' });
    expect(u.status).toBe(200);
    expect(u.body.version).toBe('0.0.2');
    // An update must never be served by a container holding the old code.
    const r2 = await invoke(call, ns, 'crud');
    expect(r2.body.response.result).toEqual({ v: 2 });

    const list = await call('GET', `/api/v1/namespaces/${ns}/actions`);
    expect(list.body.map((f: { name: string }) => f.name)).toContain('crud');

    expect((await call('DELETE', `/api/v1/namespaces/${ns}/actions/crud`)).status).toBe(200);
    expect((await call('GET', `/api/v1/namespaces/${ns}/actions/crud`)).status).toBe(404);
    expect((await invoke(call, ns, 'crud')).status).toBe(404);
  });
});

describe('invocation', () => {
  it('runs blocking, cold then warm, with logs and the activation context', async () => {
    await deploy(call, ns, 'echo', {
      kind: 'nodejs',
      code: `function main(p) { console.log('hello', p.name); console.error('to stderr'); return { hi: p.name, id: process.env.__OW_ACTIVATION_ID, ns: process.env.__OW_NAMESPACE } }`,
    });
    const cold = await invoke(call, ns, 'echo', { name: 'ünïcødé' });
    expect(cold.status).toBe(200);
    expect(cold.body.response).toMatchObject({ status: 'success', statusCode: 0, success: true });
    expect(cold.body.response.result).toEqual({ hi: 'ünïcødé', id: cold.body.activationId, ns });
    expect(annotation(cold.body, 'coldStart')).toBe(true);
    expect(annotation(cold.body, 'initTime')).toBeTypeOf('number');
    expect(cold.body.logs.some((l: string) => /stdout: hello ünïcødé$/.test(l))).toBe(true);
    expect(cold.body.logs.some((l: string) => /stderr: to stderr$/.test(l))).toBe(true);
    expect(cold.body.logs.join('\n')).not.toContain('XXX_THE_END');

    const warm = await invoke(call, ns, 'echo', { name: 'again' });
    expect(annotation(warm.body, 'coldStart')).toBe(false);
    expect(annotation(warm.body, 'initTime')).toBeUndefined();
    // Each activation gets only its own logs.
    const out = warm.body.logs.filter((l: string) => l.includes('stdout:'));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/hello again/);

    const result = await invoke(call, ns, 'echo', { name: 'r' }, 'blocking=true&result=true');
    expect(result.body).toMatchObject({ hi: 'r' });
  });

  it('runs non-blocking: 202 with an id, then the record is readable', async () => {
    await deploy(call, ns, 'slowish', { kind: 'nodejs', code: 'async function main(p) { await new Promise(r => setTimeout(r, 300)); return { done: p.n } }' });
    const r = await invoke(call, ns, 'slowish', { n: 3 }, 'blocking=false');
    expect(r.status).toBe(202);
    expect(r.body.activationId).toMatch(/^[0-9a-f]{32}$/);
    const first = await call('GET', `/api/v1/namespaces/${ns}/activations/${r.body.activationId}`);
    expect(first.status).toBe(200);
    const a = await waitFor(
      async () => {
        const g = await call('GET', `/api/v1/namespaces/${ns}/activations/${r.body.activationId}`);
        return g.body.response.status !== 'running' && g.body;
      },
      30_000,
      'activation to finish',
    );
    expect(a.response).toMatchObject({ status: 'success', result: { done: 3 } });
    expect(a.end - a.start).toBe(a.duration);
    const res = await call('GET', `/api/v1/namespaces/${ns}/activations/${r.body.activationId}/result`);
    expect(res.body.result).toEqual({ done: 3 });
    const list = await call('GET', `/api/v1/namespaces/${ns}/activations?name=slowish`);
    expect(list.body[0].activationId).toBe(r.body.activationId);
  });

  it('pauses an idle container after the grace and unpauses it on demand', async () => {
    await deploy(call, ns, 'pausable', { kind: 'nodejs', code: 'let n = 0; function main() { return { n: ++n } }' });
    expect((await invoke(call, ns, 'pausable')).body.response.result).toEqual({ n: 1 });
    const [c] = await waitFor(
      async () => {
        const cs = await containersOf('pausable');
        return cs.length === 1 && cs[0]!.State === 'paused' && cs;
      },
      5000,
      'container to be paused',
    );
    const again = await invoke(call, ns, 'pausable');
    // Same container (state kept), warm, and running again.
    expect(again.body.response.result).toEqual({ n: 2 });
    expect(annotation(again.body, 'coldStart')).toBe(false);
    const st = await docker.getContainer(c!.Id).inspect();
    expect(st.State.Paused).toBe(false);
  });

  it('removes a container after the idle timeout', async () => {
    await deploy(call, ns, 'idle', { kind: 'nodejs', code: 'function main() { return {} }' });
    await invoke(call, ns, 'idle');
    expect(await containersOf('idle')).toHaveLength(1);
    await waitFor(async () => (await containersOf('idle')).length === 0, 10_000, 'idle container removal');
    const next = await invoke(call, ns, 'idle');
    expect(annotation(next.body, 'coldStart')).toBe(true);
  });

  it('runs concurrent invocations of one function in separate containers', async () => {
    await deploy(call, ns, 'conc', { kind: 'nodejs', code: "async function main(p) { await new Promise(r => setTimeout(r, 500)); return { i: p.i, container: require('os').hostname() } }" });
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => invoke(call, ns, 'conc', { i })));
    expect(rs.map((r) => r.body.response.result.i).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(rs.map((r) => r.body.activationId)).size).toBe(6);
    // A container runs one activation at a time (concurrency 1), so six overlapping runs ran in six containers.
    // Counted by the containers the runs saw: the first to finish may be idle past the 2.5 s timeout, and gone,
    // before the last of six cold starts on a busy machine ends.
    expect(new Set(rs.map((r) => r.body.response.result.container)).size).toBe(6);
  });

  it('runs Python functions', async () => {
    await deploy(call, ns, 'py', { kind: 'python', code: 'import os\ndef main(p):\n    print("py says", p.get("x"))\n    return {"x2": p.get("x", 0) * 2, "id": os.environ["__OW_ACTIVATION_ID"]}\n' });
    const r = await invoke(call, ns, 'py', { x: 21 });
    expect(r.body.response.result).toEqual({ x2: 42, id: r.body.activationId });
    expect(r.body.logs.some((l: string) => l.endsWith('stdout: py says 21'))).toBe(true);
  });

  it('uses an entry point other than main', async () => {
    await deploy(call, ns, 'altmain', { kind: 'nodejs', code: 'function other(p) { return { other: true } }', main: 'other' });
    expect((await invoke(call, ns, 'altmain')).body.response.result).toEqual({ other: true });
    await deploy(call, ns, 'altmain-py', { kind: 'python', code: 'def handler(p):\n    return {"h": 1}\n', main: 'handler' });
    expect((await invoke(call, ns, 'altmain-py')).body.response.result).toEqual({ h: 1 });
  });
});

describe('failures', () => {
  it('reports code that throws as an application error with its logs', async () => {
    await deploy(call, ns, 'throws', { kind: 'nodejs', code: 'function main() { throw new Error("boom") }' });
    const r = await invoke(call, ns, 'throws');
    expect(r.status).toBe(502);
    expect(r.body.response).toMatchObject({ status: 'application error', statusCode: 1, success: false });
    expect(r.body.response.result.error).toContain('boom');
    expect(r.body.logs.join('\n')).toContain('Error: boom');
    // The container survived and serves the next call.
    expect((await invoke(call, ns, 'throws')).body.response.status).toBe('application error');
  });

  it('reports a returned error as an application error', async () => {
    await deploy(call, ns, 'apperr', { kind: 'python', code: 'def main(p):\n    return {"error": "bad n"}\n' });
    const r = await invoke(call, ns, 'apperr');
    expect(r.body.response).toMatchObject({ status: 'application error', result: { error: 'bad n' } });
  });

  it('reports code that does not parse as a developer error', async () => {
    await deploy(call, ns, 'syntax', { kind: 'nodejs', code: 'function main( { return 1' });
    const r = await invoke(call, ns, 'syntax');
    expect(r.body.response).toMatchObject({ status: 'action developer error', statusCode: 2 });
    expect(r.body.response.result.error).toMatch(/Initialization has failed/);
    await deploy(call, ns, 'syntax-py', { kind: 'python', code: 'def main(p)\n  return {}\n' });
    expect((await invoke(call, ns, 'syntax-py')).body.response.status).toBe('action developer error');
  });

  it('reports a missing entry point as a developer error', async () => {
    await deploy(call, ns, 'nomain', { kind: 'nodejs', code: 'function notmain() { return {} }' });
    const r = await invoke(call, ns, 'nomain');
    expect(r.body.response.status).toBe('action developer error');
    expect(r.body.response.result.error).toMatch(/entrypoint 'main' is not a function/);
    await deploy(call, ns, 'nomain-py', { kind: 'python', code: 'x = 1\n' });
    expect((await invoke(call, ns, 'nomain-py')).body.response.result.error).toMatch(/entrypoint 'main'/);
  });

  it("reports a result that is neither a dictionary nor an array as a developer error, as OpenWhisk's proxies do", async () => {
    await deploy(call, ns, 'nondict', { kind: 'nodejs', code: 'function main() { return 42 }' });
    const r = await invoke(call, ns, 'nondict');
    expect(r.status).toBe(502);
    expect(r.body.response).toMatchObject({ status: 'action developer error', result: { error: 'The action did not return a dictionary or array.' } });
    await deploy(call, ns, 'nondict-py', { kind: 'python', code: 'def main(args):\n    return "text"\n' });
    expect((await invoke(call, ns, 'nondict-py')).body.response).toMatchObject({ status: 'action developer error', result: { error: 'The action did not return a dictionary or array.' } });
    // Arrays are results (OpenWhisk since apache/openwhisk#5290).
    await deploy(call, ns, 'array', { kind: 'nodejs', code: 'function main() { return [1, 2] }' });
    expect((await invoke(call, ns, 'array')).body.response).toMatchObject({ status: 'success', result: [1, 2] });
  });

  it('kills a function past its time limit and keeps serving', async () => {
    await deploy(call, ns, 'sleepy', { kind: 'nodejs', code: 'function main(p) { if (p.spin) { for(;;){} } return { ok: true } }' }, { limits: { timeout: 1000 } });
    await invoke(call, ns, 'sleepy'); // warm it
    const t0 = Date.now();
    const r = await invoke(call, ns, 'sleepy', { spin: true });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.body.response).toMatchObject({ status: 'action developer error', result: { error: 'The action exceeded its time limits of 1000 milliseconds.' } });
    await waitFor(async () => (await containersOf('sleepy')).length === 0, 5000, 'timed-out container removal');
    const after = await invoke(call, ns, 'sleepy');
    expect(after.body.response.result).toEqual({ ok: true });
    expect(annotation(after.body, 'coldStart')).toBe(true);
  });

  it('kills a function that runs out of memory', async () => {
    await deploy(
      call,
      ns,
      'hog',
      {
        kind: 'nodejs',
        code: 'const keep = []; function main() { for (;;) { const b = Buffer.alloc(16 * 1024 * 1024); b.fill(1); keep.push(b) } }',
      },
      { limits: { memory: 128, timeout: 30_000 } },
    );
    const r = await invoke(call, ns, 'hog');
    expect(r.body.response).toMatchObject({ status: 'action developer error', result: { error: 'The action exhausted its memory and was aborted.' } });
    await waitFor(async () => (await containersOf('hog')).length === 0, 5000, 'OOM container removal');
  });

  it('hardens every container: no capabilities, no new privileges, read-only root, non-root user, limits', async () => {
    await deploy(
      call,
      ns,
      'hard',
      {
        kind: 'nodejs',
        code: 'const fs = require("fs"); function main() { let root = "writable"; try { fs.writeFileSync("/x", "1") } catch (e) { root = e.code } fs.writeFileSync("/tmp/x", "1"); return { uid: process.getuid(), root } }',
      },
      { limits: { memory: 192 } },
    );
    const r = await invoke(call, ns, 'hard');
    expect(r.body.response.result).toEqual({ uid: 10001, root: 'EROFS' });
    const [c] = await containersOf('hard');
    const info = await docker.getContainer(c!.Id).inspect();
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.Memory).toBe(192 * 1024 * 1024);
    expect(info.HostConfig.PidsLimit).toBeGreaterThan(0);
    expect(info.Config.Labels).toMatchObject({ 'peerless.managed-by': 'peerless', 'peerless.host': HOST, 'peerless.namespace': ns, 'peerless.function': 'hard' });
    expect(info.Config.Labels['peerless.activation']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('counts what happened in Prometheus metrics', async () => {
    const res = await fetch(`${d.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/peerless_invocations_total\{status="success",start="cold"\} (\d+)/)).toBeGreaterThan(0);
    expect(value(/peerless_invocations_total\{status="success",start="warm"\} (\d+)/)).toBeGreaterThan(0);
    expect(value(/peerless_invocations_total\{status="action developer error",start="\w+"\} (\d+)/)).toBeGreaterThan(0);
    const count = value(/peerless_activation_duration_seconds_count (\d+)/);
    expect(value(/peerless_activation_duration_seconds_bucket\{le="\+Inf"\} (\d+)/)).toBe(count);
    expect(text).toMatch(/peerless_containers\{state="idle"\} \d+/);
    expect(value(/peerless_engine_up (\d+)/)).toBe(1);
    expect(value(/peerless_activations_unsaved (\d+)/)).toBe(0);
  });
});
