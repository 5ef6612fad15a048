import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOPICS } from '../../gossip/protocols.ts';
import { digestOf } from '../../daemon/blobs.ts';
import { forgedEntry, forgeDelta, publishAs } from '../helpers/forger.ts';
import { api, cleanupHost, deploy, invoke, namespace, ROOT, startDaemon, waitFor, type Api, type TestDaemon, keyFile, clusterFlags } from '../helpers/daemon.ts';

// Daemons gossiping the address map, as separate processes on loopback that
// share this machine's Docker engine (so instances on different daemons can
// reach each other over their namespace's bridge). Each daemon has its own
// host ID, store, pool and libp2p identity.

const RUN = process.pid;
const KEY = randomBytes(32).toString('hex');
const port = (i: number) => 17900 + (RUN % 50) * 10 + i;
const addr = (i: number) => `/ip4/127.0.0.1/tcp/${port(i)}`;
// Long enough that a loaded CI machine's slow event loop does not time a member out before the
// refused-port report about it arrives: the test below tells the two paths apart.
const FAILURE_MS = 4000;
const hosts: TestDaemon[] = [];
const clients: { call: Api; ns: string }[] = [];
let nsAuth = '';
// Named under host 0, so that its clean-up removes the namespace network too.
const NS = `it-cl-${RUN}-h0-ns`;

async function start(i: number, opts: { key?: string; dataDir?: string; apiPort?: number } = {}): Promise<TestDaemon> {
  const flags = [...clusterFlags(i, opts.key ?? KEY, addr), '--failure-timeout-ms', String(FAILURE_MS), '--heartbeat-ms', '200'];
  return startDaemon({ hostId: `it-cl-${RUN}-h${i}`, flags, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), ...(opts.apiPort ? { port: opts.apiPort } : {}) });
}

/** members host i dropped so far, by reason, as Prometheus reads them */
const dropped = async (i: number) =>
  Object.fromEntries(
    [...(await (await fetch(`${hosts[i]!.url}/metrics`)).text()).matchAll(/^peerless_cluster_peers_dropped_total\{reason="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
  ) as Record<string, number>;
const peersOf = async (d: TestDaemon) => (await api(d.url, d.admin)('GET', '/api/v1/cluster/peers')).body;
const instancesOn = async (i: number) => (await clients[i]!.call('GET', `/api/v1/namespaces/${NS}/instances`)).body.instances as { instance: string; host: string }[];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) hosts.push(await start(i));
  await waitFor(async () => (await Promise.all(hosts.map(peersOf))).every((p) => p.peers.length === 2), 20_000, 'a full mesh of three');
  // The namespace and its functions are created on host 1 only: the registry replicates them, keys included.
  const { auth } = await namespace(hosts[0]!, NS);
  nsAuth = auth;
  await deploy(api(hosts[0]!.url, auth), NS, 'pingpong', { kind: 'nodejs', code: readFileSync(join(ROOT, 'examples/pingpong/pingpong.js'), 'utf8') });
  await deploy(api(hosts[0]!.url, auth), NS, 'hold', {
    kind: 'nodejs',
    code: `const peerless = require('peerless'); async function main(p) { await peerless.recv(undefined, p.ms || 30000).catch(() => {}); return {} }`,
  });
  for (const d of hosts) clients.push({ call: api(d.url, auth), ns: NS });
  await waitFor(
    async () => {
      const got = await Promise.all(clients.map((c) => c.call('GET', `/api/v1/namespaces/${NS}/actions`)));
      return got.every((r) => r.status === 200 && r.body.length === 2);
    },
    20_000,
    'namespace, key and functions on every host',
  );
});

afterAll(async () => {
  for (const d of hosts)
    if (d.proc.exitCode !== null && d.proc.exitCode !== 0)
      console.log(
        `daemon ${d.hostId} died; the end of its log:`,
        d
          .logs()
          .split('\n')
          .filter((l) => !l.includes('"level":30'))
          .slice(-30)
          .join('\n'),
      );
  for (const d of hosts) await d.stop().catch(() => undefined);
  for (const d of hosts) await cleanupHost(d.hostId, d.dataDir);
});

describe('cluster of three daemons', () => {
  it('lets an instance on one daemon find and message an instance on another', async () => {
    const pong = invoke(clients[0]!.call, NS, 'pingpong', { n: 200, size: 4096 }, 'blocking=true&result=true&instance=pong');
    await waitFor(async () => (await instancesOn(2)).some((e) => e.instance === 'pong' && e.host === hosts[0]!.hostId), 20_000, 'pong seen on host 3');
    const ping = await invoke(clients[2]!.call, NS, 'pingpong', { n: 200, size: 4096 }, 'blocking=true&result=true&instance=ping');
    expect(ping.body).toMatchObject({ role: 'ping', reply: 'got 200 messages, 819200 bytes' });
    expect((await pong).body).toEqual({ role: 'pong', received: 200, bytes: 819200 });
    // An ID alive on another daemon is taken cluster-wide.
    await invoke(clients[0]!.call, NS, 'hold', { ms: 5000 }, 'blocking=false&instance=taken');
    await waitFor(async () => (await instancesOn(1)).some((e) => e.instance === 'taken'), 20_000, 'taken seen on host 2');
    expect((await invoke(clients[1]!.call, NS, 'hold', {}, 'blocking=false&instance=taken')).status).toBe(409);
    // Gossip health as Prometheus sees it: both peers heard, none silent for longer than the failure timeout.
    const metrics = await (await fetch(`${hosts[0]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^peerless_cluster_peers 2$/m);
    expect(Number(/^peerless_gossip_heartbeat_age_seconds ([\d.]+)$/m.exec(metrics)?.[1])).toBeLessThan(FAILURE_MS / 1000);
  });

  it('grants an instance ID asked of two daemons at the same moment to exactly one of them', async () => {
    const statuses: number[][] = [];
    for (let k = 0; k < 20; k++) {
      const both = await Promise.all([0, 1].map((i) => invoke(clients[i]!.call, NS, 'hold', { ms: 300 }, `blocking=false&instance=race-${k}`)));
      statuses.push(both.map((r) => r.status).sort());
    }
    expect(statuses).toEqual(Array.from({ length: 20 }, () => [202, 409]));
  });

  it('replicates function updates and deletes, last writer wins, and catches up a late joiner', async () => {
    await deploy(clients[1]!.call, NS, 'v', { kind: 'nodejs', code: 'function main() { return { v: 1 } }' });
    await waitFor(async () => (await invoke(clients[2]!.call, NS, 'v', {}, 'blocking=true&result=true')).body?.v === 1, 20_000, 'v1 on host 3');
    await deploy(clients[2]!.call, NS, 'v', { kind: 'nodejs', code: 'function main() { return { v: 2 } }' });
    await waitFor(async () => (await invoke(clients[0]!.call, NS, 'v', {}, 'blocking=true&result=true')).body?.v === 2, 20_000, 'v2 on host 1');
    // A namespace's own quota, set on one daemon, holds on all.
    expect((await api(hosts[0]!.url, hosts[0]!.admin)('PUT', `/api/v1/namespaces/${NS}/limits`, { invocationsPerMinute: 0, concurrentActivations: 500 })).status).toBe(200);
    await waitFor(async () => (await clients[2]!.call('GET', `/api/v1/namespaces/${NS}/limits`)).body.concurrentActivations === 500, 20_000, 'limits on host 3');
    const late = await startDaemon({
      hostId: `it-cl-${RUN}-h3`,
      flags: ['--cluster-key-file', keyFile(KEY), '--cluster-listen', addr(3), '--cluster-peers', addr(0), '--failure-timeout-ms', String(FAILURE_MS), '--heartbeat-ms', '200'],
    });
    try {
      const c = api(late.url, nsAuth);
      await waitFor(async () => (await invoke(c, NS, 'v', {}, 'blocking=true&result=true')).body?.v === 2, 30_000, 'late joiner runs v2');
      expect((await c('GET', `/api/v1/namespaces/${NS}/actions`)).body.map((f: { name: string }) => f.name).sort()).toEqual(['hold', 'pingpong', 'v']);
      expect((await clients[1]!.call('DELETE', `/api/v1/namespaces/${NS}/actions/v`)).status).toBe(200);
      await waitFor(async () => (await c('GET', `/api/v1/namespaces/${NS}/actions/v`)).status === 404, 20_000, 'delete reaches the late joiner');
      expect((await clients[0]!.call('GET', `/api/v1/namespaces/${NS}/actions/v`)).status).toBe(404);
    } catch (e) {
      console.log(`late joiner's log:\n${late.logs().split('\n').slice(-40).join('\n')}`); // so a failure in CI says why
      throw e;
    } finally {
      await late.stop();
      await cleanupHost(late.hostId, late.dataDir);
    }
  });

  it('fetches code too large for a gossip message by its digest from the daemon that has it', async () => {
    // 3 MB of source: far over what rides inline, so it travels over the blob stream and is checked on arrival.
    const big = `const pad = "${'p'.repeat(3 * 1024 * 1024)}";\nfunction main() { return { size: pad.length } }`;
    expect((await deploy(clients[1]!.call, NS, 'big', { kind: 'nodejs', code: big })).status).toBe(201);
    const r = await waitFor(
      async () => {
        const x = await invoke(clients[2]!.call, NS, 'big', {}, 'blocking=true&result=true');
        return x.status === 200 && x;
      },
      30_000,
      'the big function on host 3',
    );
    expect(r.body).toEqual({ size: 3 * 1024 * 1024 });
    expect(hosts[2]!.logs()).toMatch(/"function":"big","msg":"function replicated"/);
    expect((await clients[0]!.call('GET', `/api/v1/namespaces/${NS}/actions/big?code=true`)).body.exec.code).toBe(big);
  });

  it("drops a dead daemon's instances from every map within the failure timeout, and takes a restart as a new incarnation", async () => {
    await invoke(clients[1]!.call, NS, 'hold', {}, 'blocking=false&instance=doomed');
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'doomed') && (await instancesOn(2)).some((e) => e.instance === 'doomed'), 20_000, 'doomed everywhere');
    const { dataDir, port: apiPort } = hosts[1]!;
    const before = await Promise.all([dropped(0), dropped(2)]);
    await hosts[1]!.kill();
    try {
      const t0 = Date.now();
      await waitFor(async () => !(await instancesOn(0)).some((e) => e.instance === 'doomed') && !(await instancesOn(2)).some((e) => e.instance === 'doomed'), 10_000, 'doomed gone');
      // Well before the failure timeout: its host refused its port, and the daemons said so to each other.
      expect(Date.now() - t0).toBeLessThan(FAILURE_MS);
      expect((await peersOf(hosts[0]!)).peers).toHaveLength(1);
      const after = await Promise.all([dropped(0), dropped(2)]);
      for (const k of [0, 1]) expect({ ...after[k], down: after[k]!.down - 1 }).toEqual(before[k]);
    } finally {
      // Back for the tests that follow, whatever happened above.
      hosts[1] = await start(1, { dataDir, apiPort });
    }
    await waitFor(async () => (await peersOf(hosts[0]!)).peers.length === 2, 20_000, 'restarted daemon back');
    const back = (await peersOf(hosts[0]!)).peers.find((p: { host: string }) => p.host === hosts[1]!.hostId);
    expect(back.incarnation).toBeGreaterThan(0);
    await invoke(clients[1]!.call, NS, 'hold', { ms: 3000 }, 'blocking=false&instance=reborn');
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'reborn'), 20_000, 'reborn seen');
  });

  it('drops a cleanly stopped daemon at once (it says goodbye)', async () => {
    // The holder ends by itself after 4 s: SIGTERM lets running activations finish, and the test is not to wait long.
    await invoke(clients[2]!.call, NS, 'hold', { ms: 4000 }, 'blocking=false&instance=leaver');
    await waitFor(async () => (await instancesOn(0)).some((e) => e.instance === 'leaver'), 20_000, 'leaver seen');
    const { dataDir, port: apiPort } = hosts[2]!;
    const stopping = hosts[2]!.stop();
    const t0 = Date.now();
    await waitFor(async () => !(await instancesOn(0)).some((e) => e.instance === 'leaver'), 10_000, 'leaver gone');
    expect(Date.now() - t0).toBeLessThan(1000);
    await stopping;
    hosts[2] = await start(2, { dataDir, apiPort });
  });

  it('forwards an invocation when the receiving daemon is full, and reads the activation from anywhere', async () => {
    const small = await startDaemon({
      hostId: `it-cl-${RUN}-s`,
      flags: ['--cluster-key-file', keyFile(KEY), '--cluster-listen', addr(6), '--cluster-peers', addr(0), '--memory-budget-mb', '128', '--heartbeat-ms', '200'],
    });
    try {
      const c = api(small.url, nsAuth);
      await deploy(
        clients[0]!.call,
        NS,
        'hold128',
        { kind: 'nodejs', code: `const peerless = require('peerless'); async function main(p) { await peerless.recv(undefined, p.ms).catch(() => {}); return { on: process.env.__OW_PEERLESS_IP } }` },
        { limits: { memory: 128 } },
      );
      await deploy(clients[0]!.call, NS, 'where', { kind: 'nodejs', code: 'function main() { return { ok: true } }' }, { limits: { memory: 128 } });
      await waitFor(async () => (await c('GET', `/api/v1/namespaces/${NS}/actions/where`)).status === 200 && (await peersOf(small)).peers.length >= 3, 20_000, 'small caught up');
      // Fill the small daemon, then invoke through it.
      await deploy(clients[0]!.call, NS, 'slow', { kind: 'nodejs', code: 'async function main() { await new Promise(r => setTimeout(r, 30000)); return {} }' }, { limits: { memory: 128 } });
      const filler = await invoke(c, NS, 'hold128', { ms: 15000 }, 'blocking=false');
      expect(filler.status).toBe(202);
      await waitFor(async () => (await c('GET', '/api/v1/status')).body.containers.busy === 1, 20_000, 'filler running');
      const r = await invoke(c, NS, 'where', {}, 'blocking=true');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.response.result).toEqual({ ok: true });
      expect(r.body.host).not.toBe(small.hostId);
      expect(hosts.map((h) => h.hostId)).toContain(r.body.host);
      // The record lives where it ran; the small daemon finds it for the caller.
      const again = await c('GET', `/api/v1/namespaces/${NS}/activations/${r.body.activationId}`);
      expect(again.status).toBe(200);
      expect(again.body.host).toBe(r.body.host);
      expect((await c('GET', `/api/v1/namespaces/${NS}/activations/${'f'.repeat(32)}`)).status).toBe(404);
      // A group through the full daemon goes wholly to the others, and nothing else starts here.
      const g = await invoke(c, NS, 'where', {}, `blocking=true&instances=${encodeURIComponent('full-{0..1}')}`);
      expect(g.status, JSON.stringify(g.body).slice(0, 300)).toBe(200);
      expect(g.body.activations.map((a: { host: string; annotations: { key: string; value: unknown }[] }) => a.host).filter((h: string) => h === small.hostId)).toEqual([]);
      expect(g.body.activations).toHaveLength(2);

      // The executing daemon dies mid-invocation: the caller gets a failed activation, not a hang.
      await waitFor(async () => (await c('GET', `/api/v1/namespaces/${NS}/actions/slow`)).status === 200, 20_000, 'slow replicated');
      const slow = invoke(c, NS, 'slow', {}, 'blocking=true');
      // Where it runs: every daemon lists every daemon's activations, each with the host that holds it.
      const i = await waitFor(
        async () => {
          const list = (await clients[0]!.call('GET', `/api/v1/namespaces/${NS}/activations?name=slow`)).body as { host: string; response: { status: string } }[];
          const running = Array.isArray(list) ? list.find((a) => a.response.status === 'running') : undefined;
          return running ? hosts.findIndex((h) => h.hostId === running.host) + 1 : 0;
        },
        20_000,
        'slow running somewhere',
      );
      const victim = hosts[i - 1]!;
      const { dataDir, port: apiPort } = victim;
      await victim.kill();
      const failed = await slow;
      expect(failed.status).toBe(500);
      expect(failed.body.response).toMatchObject({ status: 'whisk internal error', result: { error: `The host ${victim.hostId} running the activation is gone.` } });
      expect((await c('GET', `/api/v1/namespaces/${NS}/activations/${failed.body.activationId}`)).body.response.status).toBe('whisk internal error');
      hosts[i - 1] = await start(i - 1, { dataDir, apiPort });
    } finally {
      await small.stop();
      await cleanupHost(small.hostId, small.dataDir);
    }
  });

  it('replicates packages, triggers and rules; fires, runs sequences and serves web actions through a daemon that did not create them', async () => {
    const [c0, c1, c2] = clients.map((c) => c.call) as [Api, Api, Api];
    expect((await c0('PUT', `/api/v1/namespaces/${NS}/packages/tools`, { parameters: [{ key: 'unit', value: 'cm' }] })).status).toBe(201);
    expect(
      (
        await deploy(
          c0,
          NS,
          'tools/measure',
          { kind: 'nodejs', code: 'function main(p) { return { n: (p.n || 1) * 2, unit: p.unit, from: p.from } }' },
          { annotations: [{ key: 'web-export', value: true }] },
        )
      ).status,
    ).toBe(201);
    expect((await deploy(c0, NS, 'plus1', { kind: 'nodejs', code: 'function main(p) { return { ...p, n: p.n + 1 } }' })).status).toBe(201);
    // The registry is eventually consistent: the sequence is made on host 2 once its components have arrived there.
    await waitFor(
      async () => (await c1('GET', `/api/v1/namespaces/${NS}/actions/plus1`)).status === 200 && (await c1('GET', `/api/v1/namespaces/${NS}/actions/tools/measure`)).status === 200,
      20_000,
      'components on host 2',
    );
    const chain = await deploy(c1, NS, 'chain', { kind: 'sequence', components: [`/${NS}/tools/measure`, '/_/plus1', `/${NS}/tools/measure`] });
    expect(chain.status, JSON.stringify(chain.body)).toBe(201);
    expect((await c1('PUT', `/api/v1/namespaces/${NS}/triggers/bell`, { parameters: [{ key: 'from', value: 'bell' }] })).status).toBe(201);
    expect((await c1('PUT', `/api/v1/namespaces/${NS}/rules/ring`, { trigger: '/_/bell', action: 'tools/measure' })).status).toBe(201);
    await waitFor(
      async () =>
        (await c2('GET', `/api/v1/namespaces/${NS}/rules/ring`)).status === 200 &&
        (await c2('GET', `/api/v1/namespaces/${NS}/actions/chain`)).status === 200 &&
        (await c2('GET', `/api/v1/namespaces/${NS}/actions/tools/measure`)).status === 200,
      20_000,
      'entities on host 3',
    );

    // Fired through host 3, which made none of it; the trigger's record names the action activation it started.
    const fired = await c2('POST', `/api/v1/namespaces/${NS}/triggers/bell`, { n: 5 });
    expect(fired.status).toBe(202);
    const line = JSON.parse((await c2('GET', `/api/v1/namespaces/${NS}/activations/${fired.body.activationId}`)).body.logs[0]);
    expect(line).toMatchObject({ success: true, rule: `${NS}/ring` });
    const ran = await waitFor(
      async () => {
        const a = await c0('GET', `/api/v1/namespaces/${NS}/activations/${line.activationId}`);
        return a.status === 200 && a.body.response.status !== 'running' && a.body;
      },
      20_000,
      "the rule's activation",
    );
    expect(ran.response.result).toEqual({ n: 10, unit: 'cm', from: 'bell' });

    // A sequence through host 3: package parameters reach both of its package's components.
    const seq = await invoke(c2, NS, 'chain', { n: 1 }, 'blocking=true');
    expect(seq.status, JSON.stringify(seq.body)).toBe(200);
    expect(seq.body.response.result).toEqual({ n: 6, unit: 'cm' });
    expect(seq.body.logs).toHaveLength(3);
    for (const id of seq.body.logs) expect((await c0('GET', `/api/v1/namespaces/${NS}/activations/${id}`)).body.cause).toBe(seq.body.activationId);

    // A web action through host 2, with no key.
    const web = await fetch(`${hosts[1]!.url}/api/v1/web/${NS}/tools/measure.json?n=4`);
    expect(await web.json()).toMatchObject({ n: 8, unit: 'cm' });

    // A rule disabled on one daemon is disabled everywhere.
    expect((await c0('POST', `/api/v1/namespaces/${NS}/rules/ring`, { status: 'inactive' })).status).toBe(200);
    await waitFor(async () => (await c2('GET', `/api/v1/namespaces/${NS}/rules/ring`)).body.status === 'inactive', 20_000, 'rule disabled on host 3');
    expect((await c2('POST', `/api/v1/namespaces/${NS}/triggers/bell`, {})).status).toBe(204);
  });

  it('spreads a group over the daemons by free memory', async () => {
    const r = await invoke(clients[0]!.call, NS, 'pingpong', { n: 1, size: 1 }, `blocking=true&instances=${encodeURIComponent('ping,pong')}`);
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    const g = await invoke(clients[0]!.call, NS, 'hold', { ms: 1 }, `blocking=true&instances=${encodeURIComponent('sp-{0..8}')}`);
    expect(g.status, JSON.stringify(g.body).slice(0, 300)).toBe(200);
    const hostsUsed = new Set(g.body.activations.map((a: { host: string }) => a.host));
    expect(g.body.activations).toHaveLength(9);
    expect(hostsUsed.size).toBeGreaterThan(1);
    expect(g.body.activations.every((a: { response: { status: string } }) => a.response.status === 'success')).toBe(true);
  });

  it('finds its peers through hyperswarm, with no static peer list', async () => {
    const { default: createTestnet } = await import('hyperdht/testnet.js');
    const testnet = await createTestnet(3, { host: '127.0.0.1' });
    const key = randomBytes(32).toString('hex');
    const boot = testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(',');
    const flags = (i: number) => ['--cluster-key-file', keyFile(key), '--cluster-listen', addr(7 + i), '--cluster-hyperswarm', 'true', '--cluster-bootstrap', boot, '--heartbeat-ms', '200'];
    const a = await startDaemon({ hostId: `it-cl-${RUN}-ha`, flags: flags(0) });
    const b = await startDaemon({ hostId: `it-cl-${RUN}-hb`, flags: flags(1) });
    try {
      await waitFor(
        async () => (await peersOf(a)).peers.some((p: { host: string }) => p.host === b.hostId) && (await peersOf(b)).peers.some((p: { host: string }) => p.host === a.hostId),
        60_000,
        'a and b find each other',
      );
    } catch (e) {
      for (const d of [a, b]) console.log(`${d.hostId}'s log:\n${d.logs().split('\n').slice(-40).join('\n')}`); // so a failure in CI says why
      throw e;
    } finally {
      await a.stop();
      await b.stop();
      await cleanupHost(a.hostId, a.dataDir);
      await cleanupHost(b.hostId, b.dataDir);
      await testnet.destroy();
    }
  }, 120_000);

  it('keeps out a daemon without the cluster key', async () => {
    const outsider = await startDaemon({ hostId: `it-cl-${RUN}-x`, flags: ['--cluster-key-file', keyFile(randomBytes(32).toString('hex')), '--cluster-listen', addr(5), '--cluster-peers', addr(0)] });
    try {
      await new Promise((r) => setTimeout(r, 2500));
      expect((await peersOf(outsider)).peers).toEqual([]);
      for (const d of hosts) expect((await peersOf(d)).peers.map((p: { host: string }) => p.host)).not.toContain(`it-cl-${RUN}-x`);
    } finally {
      await outsider.stop();
      await cleanupHost(outsider.hostId, outsider.dataDir);
    }
  });

  it('drops a delta whose origin is not its signer', async () => {
    const victim = (await peersOf(hosts[0]!)).self.peerId;
    const before = (await api(hosts[1]!.url, hosts[1]!.admin)('GET', '/api/v1/status')).body.forgedDropped;
    const forger = await forgeDelta(KEY, addr(1), victim, forgedEntry(NS, 'forged'));
    try {
      await waitFor(async () => (await api(hosts[1]!.url, hosts[1]!.admin)('GET', '/api/v1/status')).body.forgedDropped > before, 5000, 'forgery noticed');
      for (let i = 0; i < 3; i++) expect((await instancesOn(i)).map((e) => e.instance)).not.toContain('forged');
    } finally {
      await forger.stop();
    }
  });

  it('drops and counts signed address-map messages that are malformed, and every daemon stays up', async () => {
    const status = async (i: number) => (await api(hosts[i]!.url, hosts[i]!.admin)('GET', '/api/v1/status')).body;
    const before = await Promise.all([0, 1, 2].map(status));
    // Signed by their sender, in its own name: the signature is good, the contents are not.
    const forger = await publishAs(KEY, addr(1), (self) => [
      { type: 'delta', origin: self, incarnation: 1, seq: 1, changes: null },
      { type: 'delta', origin: self, incarnation: 1, seq: 2, changes: [null] },
      { type: 'delta', origin: self, incarnation: 1, seq: 3, changes: [{ kind: 'upsert', entry: { ...forgedEntry(NS, 'bad'), port: 'x' } }] },
      { type: 'snapshot', origin: self, incarnation: 1, seq: 1, entries: 'all of them' },
      { type: 'heartbeat', origin: self, incarnation: '1', seq: 1 },
      { type: 'delta', origin: self, incarnation: 1, seq: 2 ** 63, changes: {} },
    ]);
    try {
      await waitFor(async () => (await status(1)).malformedDropped >= before[1].malformedDropped + 6, 10_000, 'six malformed messages counted');
      await new Promise((r) => setTimeout(r, 500)); // what else received them has had its chance to fall over
      for (let i = 0; i < 3; i++) {
        expect(hosts[i]!.proc.exitCode, `daemon ${i}`).toBeNull();
        expect((await status(i)).malformedDropped).toBeGreaterThanOrEqual(before[i].malformedDropped);
        expect((await instancesOn(i)).map((e) => e.instance)).not.toContain('bad');
      }
    } finally {
      await forger.stop();
    }
  });
  it('drops and counts signed registry messages that are malformed: nothing is stored, every daemon stays up', async () => {
    const status = async (i: number) => (await api(hosts[i]!.url, hosts[i]!.admin)('GET', '/api/v1/status')).body;
    const before = await Promise.all([0, 1, 2].map(status));
    const hlc = `${String(Date.now() + 1000).padStart(15, '0')}:000000:forger`;
    // Each carries its code inline, matching its digest: only the record's own shape can keep it out.
    const source = Buffer.from('function main() { return {} }');
    const code = source.toString('base64');
    const rec = {
      namespace: NS,
      runtime: { kind: 'nodejs' },
      digest: digestOf(source),
      binary: false,
      main: 'main',
      limits: { memoryMb: 128, timeoutMs: 1000, concurrency: 1 },
      parameters: {},
      version: 1,
      created: 0,
      updated: 0,
    };
    const forger = await publishAs(
      KEY,
      addr(1),
      () => [
        { type: 'fn', ns: NS, name: 'evil-1', hlc, deleted: false, record: { ...rec, name: 'evil-1', runtime: null }, code },
        { type: 'fn', ns: NS, name: 'evil-2', hlc, deleted: false, record: { ...rec, name: 'evil-2', limits: { memoryMb: 'lots' } }, code },
        { type: 'fn', ns: NS, name: 'evil-3', hlc: 'zzz-pins-it-forever', deleted: false, record: { ...rec, name: 'evil-3' }, code },
        { type: 'ent', kind: 'rule', ns: NS, name: 'evil-4', hlc, deleted: false, doc: { namespace: NS, name: 'evil-4', status: 'sleeping' } },
        { type: 'ent', kind: 'virus', ns: NS, name: 'evil-5', hlc, deleted: false, doc: {} },
        { type: 'fn', ns: NS, name: 'pingpong', hlc: null, deleted: true },
      ],
      TOPICS.registry,
    );
    try {
      await waitFor(async () => (await status(1)).registryMalformedDropped >= before[1].registryMalformedDropped + 6, 10_000, 'six malformed registry messages counted');
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < 3; i++) {
        expect(hosts[i]!.proc.exitCode, `daemon ${i}`).toBeNull();
        for (const n of ['evil-1', 'evil-2', 'evil-3']) expect((await clients[i]!.call('GET', `/api/v1/namespaces/${NS}/actions/${n}`)).status, `${n} on ${i}`).toBe(404);
        expect((await clients[i]!.call('GET', `/api/v1/namespaces/${NS}/rules/evil-4`)).status).toBe(404);
        expect((await clients[i]!.call('GET', `/api/v1/namespaces/${NS}/actions/pingpong`)).status).toBe(200);
      }
    } finally {
      await forger.stop();
    }
  });
});
