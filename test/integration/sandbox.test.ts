import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlNetworkName, ensureNamespaceNetwork, namespaceNetworkName, swarmActive } from '../../sandbox/networks.ts';
import { annotation, cleanupHost, deploy, docker, invoke, namespace, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Networks, tenant isolation, prewarmed containers and user images, on the real engine.

const HOST = `it-sbx-${process.pid}`;
let d: TestDaemon;
let A: { ns: string; call: Api };
let B: { ns: string; call: Api };

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST, flags: ['--prewarm-nodejs', '1'] });
  A = await namespace(d, `${HOST}-a`);
  B = await namespace(d, `${HOST}-b`);
});

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
  await docker
    .getImage('peerless-test/blackbox')
    .remove({ force: true })
    .catch(() => undefined);
});

/** The server's address on a network, found through the address map (it may run in a prewarmed container). */
async function addressesOf(call: Api, ns: string, instance: string) {
  const e = await waitFor(
    async () => {
      const g = await call('GET', `/api/v1/namespaces/${ns}/instances/${instance}`);
      return g.status === 200 && g.body.state === 'running' && g.body;
    },
    20_000,
    `${instance} running`,
  );
  for (const c of await docker.listContainers({ filters: { label: [`peerless.host=${HOST}`] } })) {
    const nets = (await docker.getContainer(c.Id).inspect()).NetworkSettings.Networks;
    if (nets[namespaceNetworkName(ns)]?.IPAddress === e.ip) return { nsIp: e.ip as string, ctlIp: nets[controlNetworkName(HOST)]!.IPAddress };
  }
  throw new Error(`no container has ${e.ip}`);
}

// A function that listens on TCP 7000 for a few seconds, and one that tries to connect to an address.
const SERVER = `const net = require('net'); async function main(p) { const s = net.createServer(c => c.end('pong')).listen(7000); await new Promise(r => setTimeout(r, p.ms)); s.close(); return {} }`;
const PROBE = `const net = require('net'); function main(p) { return new Promise(r => { const s = net.connect(7000, p.ip); s.setTimeout(1500, () => { s.destroy(); r({ reached: false, why: 'timeout' }) }); s.on('data', d => { s.destroy(); r({ reached: String(d) === 'pong' }) }); s.on('error', e => r({ reached: false, why: e.code })) }) }`;

describe('networks', () => {
  it('gives each namespace its own network, idempotently, and a control bridge without inter-container traffic', async () => {
    const nets = await docker.listNetworks();
    const names = nets.map((n) => n.Name);
    expect(names).toContain(namespaceNetworkName(A.ns));
    expect(names).toContain(namespaceNetworkName(B.ns));
    const mine = nets.find((n) => n.Name === namespaceNetworkName(A.ns))!;
    expect(mine.Driver).toBe((await swarmActive(docker)) ? 'overlay' : 'bridge');
    const again = await ensureNamespaceNetwork(docker, A.ns);
    expect(again.name).toBe(mine.Name);
    expect((await docker.listNetworks({ filters: { name: [mine.Name] } })).filter((n) => n.Name === mine.Name)).toHaveLength(1);
    const ctl = await docker.getNetwork(controlNetworkName(HOST)).inspect();
    expect(ctl.Options?.['com.docker.network.bridge.enable_icc']).toBe('false');
  });

  it('lets instances of one namespace reach each other, and no one else', async () => {
    await deploy(A.call, A.ns, 'server', { kind: 'nodejs', code: SERVER });
    await deploy(A.call, A.ns, 'probe', { kind: 'nodejs', code: PROBE });
    await deploy(B.call, B.ns, 'probe', { kind: 'nodejs', code: PROBE });
    await invoke(A.call, A.ns, 'server', { ms: 8000 }, 'blocking=false&instance=server');
    const { nsIp, ctlIp } = await addressesOf(A.call, A.ns, 'server');
    await new Promise((r) => setTimeout(r, 500));

    const same = await invoke(A.call, A.ns, 'probe', { ip: nsIp });
    expect(same.body.response.result).toEqual({ reached: true });
    const otherTenant = await invoke(B.call, B.ns, 'probe', { ip: nsIp });
    expect(otherTenant.body.response.result.reached).toBe(false);
    // The control bridge is no back door: inter-container traffic is off there, even within a namespace.
    const viaControl = await invoke(B.call, B.ns, 'probe', { ip: ctlIp });
    expect(viaControl.body.response.result.reached).toBe(false);
    const sameViaControl = await invoke(A.call, A.ns, 'probe', { ip: ctlIp });
    expect(sameViaControl.body.response.result.reached).toBe(false);
  });
});

describe('pool', () => {
  it('serves a first invocation from a prewarmed container and replaces it', async () => {
    const prewarmed = () => docker.listContainers({ filters: { label: [`peerless.host=${HOST}`, 'peerless.role=prewarm'] } });
    await waitFor(async () => (await prewarmed()).length >= 1, 20_000, 'a prewarmed container');
    await deploy(A.call, A.ns, 'pw', { kind: 'nodejs', code: 'function main() { return { pw: 1 } }' });
    const r = await invoke(A.call, A.ns, 'pw');
    expect(r.body.response.result).toEqual({ pw: 1 });
    expect(annotation(r.body, 'coldStart')).toBe(true);
    expect(annotation(r.body, 'prewarmed')).toBe(true);
    // The pool tops itself up again.
    await waitFor(async () => (await prewarmed()).filter((c) => c.Labels['peerless.function'] === undefined).length >= 1, 20_000, 'prewarm top-up');
  });
});

describe('user images', () => {
  it('runs any local image that speaks the action protocol (--runtime image:NAME)', async () => {
    const ctx = mkdtempSync(join(tmpdir(), 'peerless-bb-'));
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM peerless/runtime-nodejs:latest\nCOPY proxy.mjs /proxy/proxy.mjs\n');
    writeFileSync(
      join(ctx, 'proxy.mjs'),
      `import http from 'node:http';
http.createServer((req, res) => { let b = ''; req.on('data', c => b += c); req.on('end', () => {
  const body = JSON.parse(b || '{}');
  const out = req.url === '/init' ? { ok: true } : { blackbox: true, got: body.value };
  if (req.url === '/run') { console.log('blackbox ran'); console.log('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX'); console.error('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX'); }
  res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(out)); }); }).listen(8080);\n`,
    );
    execFileSync('docker', ['build', '-q', '-t', 'peerless-test/blackbox', ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    rmSync(ctx, { recursive: true, force: true });
    const c = await deploy(A.call, A.ns, 'bb', { kind: 'blackbox', image: 'peerless-test/blackbox' });
    expect(c.body.exec).toMatchObject({ kind: 'blackbox', image: 'peerless-test/blackbox' });
    const r = await invoke(A.call, A.ns, 'bb', { q: 1 });
    expect(r.body.response.result).toEqual({ blackbox: true, got: { q: 1 } });
    expect(r.body.logs.some((l: string) => l.endsWith('stdout: blackbox ran'))).toBe(true);
    const missing = await deploy(A.call, A.ns, 'bb-missing', { kind: 'blackbox', image: 'peerless-test/does-not-exist' });
    expect(missing.status).toBe(201);
    const m = await invoke(A.call, A.ns, 'bb-missing');
    expect(m.body.response).toMatchObject({ status: 'action developer error', result: { error: expect.stringMatching(/image peerless-test\/does-not-exist does not exist/) } });
    expect(d.proc.exitCode).toBeNull();
  });
});
