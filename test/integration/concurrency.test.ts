import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupHost, deploy, docker, invoke, namespace, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Instances sharing a container (limits.concurrency > 1), on the real engine, in
// both runtimes: Node.js runs each in a worker thread of its own, Python in a
// process forked from the loaded interpreter. Each keeps its own ID, port,
// module state, environment, logs, record and outcome; what one does to itself
// (crash, exit, memory, time) ends it alone; the pool packs a group into as few
// containers as the concurrency allows, and admission counts containers.

const HOST = `it-conc-${process.pid}`;
let d: TestDaemon;
let A: { ns: string; call: Api };
let B: { ns: string; call: Api };

const NODE = `const os = require('os'); const peerless = require('peerless');
let calls = 0; // module state: each instance's own
async function main(p) {
  calls++;
  const me = peerless.instanceId();
  console.log('hello from ' + me);
  console.error('to stderr from ' + me);
  if (p.exit === me) process.exit(3);
  if (p.spin === me) for (;;);
  if (p.hog === me) { const a = []; for (;;) a.push(new Array(1e6).fill(me)); }
  if (p.throwLater === me) setTimeout(() => { throw new Error('thrown outside main') }, 10);
  let got = null;
  if (p.ring) {
    const i = p.ring.indexOf(me);
    const next = p.ring[(i + 1) % p.ring.length], prev = p.ring[(i + p.ring.length - 1) % p.ring.length];
    await peerless.waitFor([next], 60000); // the whole ring may not be up at once: a member ends once it has received
    await peerless.send(next, 'from ' + me);
    got = (await peerless.recv(prev, 60000)).data.toString();
  }
  if (p.sleep) await new Promise((r) => setTimeout(r, p.sleep));
  return { me, calls, host: os.hostname(), port: process.env.__OW_PEERLESS_PORT, activation: process.env.__OW_ACTIVATION_ID, got };
}`;

const PY = `import os, signal, socket, sys, time
import peerless
calls = 0  # module state: each instance's own
def main(p):
    global calls
    calls += 1
    me = peerless.instance_id()
    print('hello from ' + me)
    print('to stderr from ' + me, file=sys.stderr)
    if p.get('exit') == me:
        os._exit(3)
    if p.get('killed') == me:
        os.kill(os.getpid(), signal.SIGKILL)
    if p.get('spin') == me:
        while True:
            pass
    got = None
    ring = p.get('ring')
    if ring:
        i = ring.index(me)
        peerless.wait_for([ring[(i + 1) % len(ring)]], timeout=60)
        peerless.send(ring[(i + 1) % len(ring)], 'from ' + me)
        got = bytes(peerless.recv(ring[i - 1], timeout=60)[1]).decode()
    if p.get('sleep'):
        time.sleep(p['sleep'] / 1000)
    return {'me': me, 'calls': calls, 'host': socket.gethostname(), 'pid': os.getpid(),
            'port': os.environ.get('__OW_PEERLESS_PORT'), 'activation': os.environ.get('__OW_ACTIVATION_ID'), 'got': got}
`;

type Act = { activationId: string; end: number | null; response: { status: string; result: Record<string, unknown> }; logs: string[]; annotations: { key: string; value: unknown }[] };

const path = (ns: string, p: string) => `/api/v1/namespaces/${ns}${p}`;
const ended = (call: Api, ns: string, id: string, ms = 90_000) =>
  waitFor(
    async () => {
      const a = await call('GET', path(ns, `/activations/${id}`));
      return a.status === 200 && a.body.end ? (a.body as Act) : null;
    },
    ms,
    `activation ${id} to end`,
  );

/** Starts a group and waits for every member's record: instance ID → activation. */
async function group(call: Api, ns: string, fn: string, ids: string[], params: Record<string, unknown> = {}): Promise<Map<string, Act>> {
  const r = await invoke(call, ns, fn, params, `blocking=false&instances=${ids.join(',')}`);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const members = r.body.activations as { instance: string; activationId: string }[];
  const done = await Promise.all(members.map((m) => ended(call, ns, m.activationId)));
  return new Map(members.map((m, i) => [m.instance, done[i]!]));
}

const containers = async (ns: string, fn: string) => (await docker.listContainers({ filters: { label: [`peerless.namespace=${ns}`, `peerless.function=${fn}`] } })).map((c) => c.Id);

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST, flags: ['--memory-budget-mb', '2048'] });
  A = await namespace(d, `${HOST}-a`);
  B = await namespace(d, `${HOST}-b`);
  for (const [name, kind, code, limits] of [
    ['shnode', 'nodejs', NODE, { concurrency: 4, memory: 256, timeout: 10_000 }],
    ['shpy', 'python', PY, { concurrency: 4, memory: 256, timeout: 10_000 }],
    ['solo', 'nodejs', NODE, {}],
  ] as const) {
    const r = await deploy(A.call, A.ns, name, { kind, code }, { limits });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  expect((await deploy(B.call, B.ns, 'shnode', { kind: 'nodejs', code: NODE }, { limits: { concurrency: 4 } })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

describe.each([
  ['Node.js worker threads', 'shnode'],
  ['Python forked processes', 'shpy'],
])('instances sharing a container: %s', (_, fn) => {
  it('gives each instance of a group its own ID, port, module state, environment, logs and record, in one container', async () => {
    const ids = ['s-0', 's-1', 's-2', 's-3'];
    const acts = await group(A.call, A.ns, fn, ids, { ring: ids });
    const results = ids.map((id) => acts.get(id)!.response.result);
    for (const [i, id] of ids.entries()) {
      const a = acts.get(id)!;
      expect(a.response.status, JSON.stringify(a.response.result)).toBe('success');
      expect(a.response.result).toMatchObject({ me: id, calls: 1, activation: a.activationId, got: `from ${ids[(i + 3) % 4]}` });
      // Its own logs, both streams, nothing of the others'.
      const text = a.logs.map((l) => l.replace(/^\S+ /, ''));
      expect(text).toEqual(expect.arrayContaining([`stdout: hello from ${id}`, `stderr: to stderr from ${id}`]));
      expect(a.logs.filter((l) => ids.some((o) => o !== id && l.endsWith(` from ${o}`)))).toEqual([]);
    }
    expect(new Set(results.map((r) => r.host)).size).toBe(1);
    expect(new Set(results.map((r) => r.port))).toEqual(new Set(['7700', '7701', '7702', '7703']));
    if (fn === 'shpy') expect(new Set(results.map((r) => r.pid)).size).toBe(4);
    expect(await containers(A.ns, fn)).toHaveLength(1);
  }, 120_000);

  it('exchanges messages between instances in the container and an instance in a container of its own', async () => {
    const r = await invoke(A.call, A.ns, 'solo', { ring: ['x-0', 'x-1', 'solo-x'] }, 'blocking=false&instance=solo-x');
    expect(r.status).toBe(202);
    const acts = await group(A.call, A.ns, fn, ['x-0', 'x-1'], { ring: ['x-0', 'x-1', 'solo-x'] });
    const solo = await ended(A.call, A.ns, r.body.activationId);
    const why = JSON.stringify({ solo: solo.response, x0: acts.get('x-0')!.response, x1: acts.get('x-1')!.response, logs: solo.logs });
    expect(solo.response.result, why).toMatchObject({ got: 'from x-1' });
    expect(acts.get('x-0')!.response.result, why).toMatchObject({ got: 'from solo-x' });
    expect(acts.get('x-1')!.response.result, why).toMatchObject({ got: 'from x-0' });
    expect(solo.response.result.host).not.toBe(acts.get('x-0')!.response.result.host);
  }, 120_000);

  it('ends an instance that exits alone, with a clear error; the others in its container finish', async () => {
    const ids = ['e-0', 'e-1', 'e-2'];
    const acts = await group(A.call, A.ns, fn, ids, { exit: 'e-1', sleep: 300 });
    expect(acts.get('e-1')!.response).toMatchObject({ status: 'action developer error', result: { error: expect.stringContaining('exited unexpectedly (exit code 3)') } });
    for (const id of ['e-0', 'e-2']) expect(acts.get(id)!.response.status).toBe('success');
    expect(new Set(['e-0', 'e-2'].map((id) => acts.get(id)!.response.result.host)).size).toBe(1);
  }, 120_000);

  it('ends an instance that overran its time alone; its container keeps serving', async () => {
    const ids = ['t-0', 't-1', 't-2'];
    const acts = await group(A.call, A.ns, fn, ids, { spin: 't-0' });
    expect(acts.get('t-0')!.response).toMatchObject({ status: 'action developer error', result: { error: expect.stringContaining('exceeded its time limits') } });
    expect(acts.get('t-0')!.logs.join('\n')).toContain('hello from t-0');
    for (const id of ['t-1', 't-2']) expect(acts.get(id)!.response.status).toBe('success');
    const host = acts.get('t-1')!.response.result.host;
    // The spinning instance is gone, not left burning the container: the next group is served there, and fast.
    const again = await group(A.call, A.ns, fn, ['t-3']);
    expect(again.get('t-3')!.response.result).toMatchObject({ host });
  }, 120_000);
});

describe('what one instance does to its shared container', () => {
  it('Node.js: an instance that runs out of heap ends alone with a memory error', async () => {
    const acts = await group(A.call, A.ns, 'shnode', ['m-0', 'm-1'], { hog: 'm-0', sleep: 300 });
    expect(acts.get('m-0')!.response).toMatchObject({ status: 'action developer error', result: { error: 'The action exhausted its memory and was aborted.' } });
    expect(acts.get('m-1')!.response.status).toBe('success');
  }, 120_000);

  it('Python: an instance killed by the kernel (as its OOM killer does) ends alone, and the error says memory', async () => {
    const acts = await group(A.call, A.ns, 'shpy', ['k-0', 'k-1'], { killed: 'k-0', sleep: 300 });
    expect(acts.get('k-0')!.response).toMatchObject({ status: 'action developer error', result: { error: expect.stringContaining('exhausted its memory') } });
    expect(acts.get('k-1')!.response.status).toBe('success');
  }, 120_000);

  it('Node.js: an exception thrown outside main ends that instance alone', async () => {
    const acts = await group(A.call, A.ns, 'shnode', ['u-0', 'u-1'], { throwLater: 'u-0', sleep: 500 });
    expect(acts.get('u-0')!.response).toMatchObject({ status: 'action developer error', result: { error: expect.stringContaining('exited unexpectedly') } });
    expect(acts.get('u-0')!.logs.join('\n')).toContain('thrown outside main');
    expect(acts.get('u-1')!.response.status).toBe('success');
  }, 120_000);

  it('a container that dies ends every instance in it, each with an error that says so', async () => {
    const r = await invoke(A.call, A.ns, 'shpy', { sleep: 15_000 }, 'blocking=false&instances=z-0,z-1,z-2');
    expect(r.status).toBe(202);
    await waitFor(async () => (await A.call('GET', path(A.ns, '/instances/z-2'))).body?.state === 'running', 60_000, 'z-2 running');
    // The container of the three: the one whose address is theirs.
    const ip = (await A.call('GET', path(A.ns, '/instances/z-0'))).body.ip as string;
    const all = await docker.listContainers({ filters: { label: [`peerless.namespace=${A.ns}`, 'peerless.function=shpy'] } });
    const target = all.find((c) => Object.values(c.NetworkSettings.Networks).some((n) => n.IPAddress === ip));
    expect(target).toBeDefined();
    // As the kernel's OOM killer would: the interpreter all of them forked from gets SIGKILL.
    await docker.getContainer(target!.Id).kill({ signal: 'SIGKILL' });
    const acts = await Promise.all((r.body.activations as { activationId: string }[]).map((m) => ended(A.call, A.ns, m.activationId)));
    for (const a of acts) {
      expect(a.response.status).not.toBe('success');
      expect(JSON.stringify(a.response.result)).toMatch(/stopped from outside|Every instance/);
    }
  }, 120_000);
});

describe('placement and walls', () => {
  it('packs a group into as few containers as its concurrency allows', async () => {
    const before = new Set(await containers(A.ns, 'shpy'));
    const ids = Array.from({ length: 8 }, (_, i) => `p-${i}`);
    const acts = await group(A.call, A.ns, 'shpy', ids, { sleep: 1000 });
    for (const a of acts.values()) expect(a.response.status).toBe('success');
    expect(new Set([...acts.values()].map((a) => a.response.result.host)).size).toBe(2);
    // Reused or new, never more than the two that eight instances of concurrency 4 need.
    expect((await containers(A.ns, 'shpy')).filter((c) => !before.has(c)).length).toBeLessThanOrEqual(2);
  }, 120_000);

  it("never puts two functions', or two namespaces', instances in one container", async () => {
    const [a, b, c] = await Promise.all([
      group(A.call, A.ns, 'shnode', ['w-0', 'w-1'], { sleep: 1000 }),
      group(A.call, A.ns, 'solo', ['w-2'], { sleep: 1000 }),
      group(B.call, B.ns, 'shnode', ['w-0', 'w-1'], { sleep: 1000 }),
    ]);
    const hostsOf = (m: Map<string, Act>) => new Set([...m.values()].map((x) => x.response.result.host));
    expect(hostsOf(a).size).toBe(1);
    expect(hostsOf(c).size).toBe(1);
    const all = [...hostsOf(a), ...hostsOf(b), ...hostsOf(c)];
    expect(new Set(all).size).toBe(3);
  }, 120_000);

  it('admits a group by the containers it needs: 16 instances of 8 to a 512 MB container fit in 1024 MB, 17 do not', async () => {
    const small = await startDaemon({ hostId: `${HOST}-s`, flags: ['--memory-budget-mb', '1024', '--prewarm-nodejs', '0'] });
    try {
      const S = await namespace(small, `${HOST}-s-ns`);
      expect((await deploy(S.call, S.ns, 'packed', { kind: 'python', code: PY }, { limits: { concurrency: 8, memory: 512 } })).status).toBe(201);
      const refused = await invoke(S.call, S.ns, 'packed', {}, `blocking=false&instances=${Array.from({ length: 17 }, (_, i) => `q-${i}`).join(',')}`);
      expect(refused.status, JSON.stringify(refused.body)).toBe(503);
      expect(refused.body.detail).toContain('8 to a container of 512 MB');
      const acts = await group(
        S.call,
        S.ns,
        'packed',
        Array.from({ length: 16 }, (_, i) => `q-${i}`),
        { sleep: 500 },
      );
      for (const a of acts.values()) expect(a.response.status, JSON.stringify(a.response.result)).toBe('success');
      expect(new Set([...acts.values()].map((a) => a.response.result.host)).size).toBe(2);
    } finally {
      await small.stop();
      await cleanupHost(`${HOST}-s`, small.dataDir);
    }
  }, 120_000);

  it('refuses a concurrency out of range with a 400 that names the field', async () => {
    for (const concurrency of [0, 501, 1.5]) {
      const r = await deploy(A.call, A.ns, 'bad', { kind: 'nodejs', code: NODE }, { limits: { concurrency } });
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.body)).toContain('concurrency');
    }
  });
});
