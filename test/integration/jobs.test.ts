import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, cleanupHost, deploy, docker, invoke, namespace, ROOT, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Jobs on a cluster of three daemons with the demo's budgets (6144 MB each),
// as separate processes on loopback sharing this machine's Docker engine:
// the README's wordcount at 35 and 100 workers, gang admission and its queue,
// cancel, the quota on every path, a killed daemon under a running job (with
// and without restarts), and activation lists across daemons.

const RUN = process.pid;
const KEY = randomBytes(32).toString('hex');
const port = (i: number) => 18400 + (RUN % 50) * 10 + i;
const addr = (i: number) => `/ip4/127.0.0.1/tcp/${port(i)}`;
const hosts: TestDaemon[] = [];
const calls: Api[] = [];
const NS = `it-job-${RUN}-h0-ns`;
const BUDGET_MB = 6144;
let nsAuth = '';

async function start(i: number, opts: { dataDir?: string; apiPort?: number } = {}): Promise<TestDaemon> {
  const flags = ['--cluster-key', KEY, '--cluster-listen', addr(i), '--cluster-peers', [0, 1, 2].filter((j) => j !== i).map(addr).join(','),
    '--failure-timeout-ms', '1500', '--heartbeat-ms', '200', '--memory-budget-mb', String(BUDGET_MB)];
  return startDaemon({ hostId: `it-job-${RUN}-h${i}`, flags, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), ...(opts.apiPort ? { port: opts.apiPort } : {}) });
}

const js = (code: string) => ({ kind: 'nodejs', code });
const path = (p: string) => `/api/v1/namespaces/${NS}${p}`;
const jobOf = async (i: number, id: string) => (await calls[i]!('GET', path(`/jobs/${id}`))).body;
type Job = { status: string; reason: string | null; end: number | null; members: { instance: string; host: string; state: string; epoch: number; outcome: { status: string; error: string | null } | null }[] };
const containersOf = async (fn: string) =>
  (await docker.listContainers({ filters: { label: [`peerless.namespace=${NS}`, `peerless.function=${fn}`] } })).length;

const FUNCTIONS: Record<string, { exec: Record<string, unknown>; limits?: Record<string, unknown> }> = {
  wordcount: { exec: js(readFileSync(join(ROOT, 'examples/wordcount/master.js'), 'utf8')), limits: { timeout: 300_000 } },
  'wordcount-worker': { exec: js(readFileSync(join(ROOT, 'examples/wordcount/worker.js'), 'utf8')), limits: { memory: 128 } },
  // Holds its memory for p.ms.
  hold: { exec: js(`async function main(p) { await new Promise((r) => setTimeout(r, p.ms ?? 1000)); return { at: Date.now() } }`), limits: { memory: 2048 } },
  small: { exec: js(`async function main(p) { await new Promise((r) => setTimeout(r, p.ms ?? 0)); return { ok: true } }`), limits: { memory: 128 } },
  // Spawns a group of p.n `small` and reports what the function API said.
  spawner: { exec: js(`const peerless = require('peerless');
    async function main(p) {
      try { await peerless.spawn('small', { instances: 'sp-{0..' + (p.n - 1) + '}', params: { ms: 3000 } }); return { spawned: p.n } }
      catch (e) { return { refused: e.status, detail: e.body && e.body.detail } }
    }`), limits: { memory: 128 } },
  // A worker: waits for its master's word, then answers after p.delay (p.fast once restarted).
  jworker: { exec: js(`const peerless = require('peerless');
    async function main(p) {
      await peerless.recv(p.master);
      const me = (await peerless.self()).entry;
      await new Promise((r) => setTimeout(r, me.epoch ? 0 : p.delay));
      await peerless.send(p.master, JSON.stringify({ id: me.instance, epoch: me.epoch ?? 0, host: me.host }));
      return {};
    }`), limits: { memory: 128 } },
  // A master: spawns p.n workers, tells each to go, gathers; a restarted worker is told again.
  jmaster: { exec: js(`const peerless = require('peerless');
    async function main(p) {
      const me = peerless.instanceId();
      const ids = Array.from({ length: p.n }, (_, i) => me + '-w' + i);
      await peerless.spawn('jworker', { instances: ids, params: { master: me, delay: p.delay }, ...(p.restart ? { restart: p.restart } : {}) });
      await peerless.waitFor(ids, 60000);
      await Promise.all(ids.map((id) => peerless.send(id, 'go')));
      const one = async (id) => {
        for (;;) {
          try { return JSON.parse((await peerless.recv(id)).data.toString()) }
          catch (e) {
            if (!(e instanceof peerless.PeerRestartedError)) throw e;
            await peerless.waitFor([id], 60000);
            await peerless.send(id, 'go');
          }
        }
      };
      try { return { answers: await Promise.all(ids.map(one)) } }
      catch (e) { return { failed: { name: e.name, instance: e.instance, message: e.message, at: Date.now() } } }
    }`), limits: { memory: 256, timeout: 120_000 } },
};

beforeAll(async () => {
  for (let i = 0; i < 3; i++) hosts.push(await start(i));
  const peersOf = async (d: TestDaemon) => (await api(d.url, d.admin)('GET', '/api/v1/cluster/peers')).body;
  await waitFor(async () => (await Promise.all(hosts.map(peersOf))).every((p) => p.peers.length === 2 && p.peers.every((x: { synced: boolean }) => x.synced)), 30_000, 'a full mesh of three');
  nsAuth = (await namespace(hosts[0]!, NS)).auth;
  for (const d of hosts) calls.push(api(d.url, nsAuth));
  for (const [name, f] of Object.entries(FUNCTIONS)) expect((await deploy(calls[0]!, NS, name, f.exec, f.limits ? { limits: f.limits } : {})).status).toBe(201);
  const n = Object.keys(FUNCTIONS).length;
  await waitFor(async () => (await Promise.all(calls.map((c) => c('GET', path('/actions'))))).every((r) => r.status === 200 && r.body.length === n), 30_000, 'functions on every host');
});

afterAll(async () => {
  for (const d of hosts) await d.stop().catch(() => undefined);
  for (const d of hosts) await cleanupHost(d.hostId, d.dataDir);
});

describe('jobs on three daemons', () => {
  it("runs the README's 35-worker wordcount across all three daemons, then 100 workers", async () => {
    const input = JSON.parse(readFileSync(join(ROOT, 'examples/wordcount/input-50.json'), 'utf8'));
    const r = await invoke(calls[0]!, NS, 'wordcount', input, 'blocking=true&result=true&instance=wc');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ workers: 35, words: 285 });
    // The job is read through another daemon than the one that coordinates it.
    const job = (await jobOf(1, r.body.job)) as Job;
    expect(job.status).toBe('succeeded');
    expect(new Set(job.members.map((m) => m.host)).size).toBe(3);

    // 100 workers do not fit on one daemon (12,800 MB): the job spreads them, and the master waits past the blocking limit.
    const big = await invoke(calls[0]!, NS, 'wordcount', { ...input, workers: 100 }, 'blocking=false&instance=wc100');
    expect(big.status).toBe(202);
    const done = await waitFor(async () => {
      const a = await calls[2]!('GET', path(`/activations/${big.body.activationId}`));
      return a.status === 200 && a.body.end ? a.body : null;
    }, 280_000, 'the 100-worker wordcount');
    expect(done.response.result).toMatchObject({ workers: 100, words: 285 });
    const j100 = (await jobOf(2, done.response.result.job)) as Job;
    expect(j100.members.filter((m) => m.state === 'succeeded')).toHaveLength(100);
    expect(new Set(j100.members.map((m) => m.host)).size).toBe(3);
  }, 400_000);

  it('refuses a group larger than the cluster at once, starting nothing', async () => {
    const before = (await calls[0]!('GET', path('/activations?name=hold&limit=200'))).body.length;
    const t0 = Date.now();
    const r = await invoke(calls[0]!, NS, 'hold', {}, 'blocking=false&instances=big-{0..9}'); // 10 × 2048 MB; the cluster holds 9
    const ms = Date.now() - t0;
    expect(r.status).toBe(503);
    expect(r.type).toContain('application/problem+json');
    expect(r.body).toMatchObject({ field: '/query/instances' });
    expect(r.body.detail).toMatch(/room for 9 of the 10 members of 2048 MB: 2048 MB more/);
    expect(ms).toBeLessThan(1000);
    expect((await calls[1]!('GET', path('/instances'))).body.instances.filter((e: { instance: string }) => e.instance.startsWith('big-'))).toEqual([]);
    expect((await calls[0]!('GET', path('/activations?name=hold&limit=200'))).body.length).toBe(before);
    expect(await containersOf('hold')).toBe(0);
  });

  it('queues a group until room frees, or refuses it at its deadline with nothing started', async () => {
    const holders = await invoke(calls[0]!, NS, 'hold', { ms: 6000 }, 'blocking=false&instances=q-hold-{0..6}'); // 7 of 9 slots
    expect(holders.status).toBe(202);
    const late = await invoke(calls[1]!, NS, 'hold', {}, 'blocking=false&instances=q-late-{0..3}&queueTimeout=1000');
    expect(late.status).toBe(503);
    expect(late.body).toMatchObject({ field: '/query/queueTimeout' });
    expect((await calls[0]!('GET', path('/instances'))).body.instances.some((e: { instance: string }) => e.instance.startsWith('q-late-'))).toBe(false);
    const t0 = Date.now();
    const waited = await invoke(calls[1]!, NS, 'hold', { ms: 10 }, 'blocking=true&instances=q-wait-{0..3}&queueTimeout=30000');
    expect(waited.status, JSON.stringify(waited.body)).toBe(200);
    const holdEnds = await Promise.all(holders.body.activations.map(async (a: { activationId: string }) => (await calls[0]!('GET', path(`/activations/${a.activationId}`))).body.end));
    // It started only once the holders had ended (and they ran their 6 s).
    expect(Date.now() - t0).toBeGreaterThan(3000);
    for (const a of waited.body.activations) expect(a.start).toBeGreaterThanOrEqual(Math.min(...holdEnds));
  }, 90_000);

  it('kills a running 35-member job on every daemon, leaving no container of it', async () => {
    const r = await invoke(calls[0]!, NS, 'small', { ms: 120_000 }, 'blocking=false&instances=k-{0..34}');
    expect(r.status).toBe(202);
    await waitFor(async () => ((await jobOf(0, r.body.jobId)) as Job).members.every((m) => m.state === 'running'), 120_000, 'all 35 members running');
    expect(new Set(((await jobOf(0, r.body.jobId)) as Job).members.map((m) => m.host)).size).toBeGreaterThan(1);
    const t0 = Date.now();
    const killed = await calls[2]!('DELETE', path(`/jobs/${r.body.jobId}`)); // through a daemon that does not coordinate it
    expect(killed.status).toBe(200);
    await waitFor(async () => (await containersOf('small')) === 0, 5000, 'no container of the job left');
    const j = (await waitFor(async () => { const x = (await jobOf(1, r.body.jobId)) as Job; return x.end ? x : null; }, 5000, 'the job to end')) as Job;
    expect(j.status).toBe('cancelled');
    expect(j.members.every((m) => m.state === 'cancelled')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(6000);
  }, 180_000);

  it('holds the quota on every path: forwarded, grouped and spawned work', async () => {
    const admin = api(hosts[0]!.url, hosts[0]!.admin);
    const limits = async (n: number) => expect((await admin('PUT', `/api/v1/namespaces/${NS}/limits`, { invocationsPerMinute: 0, concurrentActivations: n })).status).toBe(200);
    // Grouped: a group over the limit is refused whole.
    await limits(3);
    const g = await invoke(calls[0]!, NS, 'small', {}, 'blocking=false&instances=qg-{0..3}');
    expect(g.status).toBe(429);
    // Forwarded: host 0 is full (three named 2048 MB instances), so single invocations of hold run on other daemons;
    // each holds its slot until it ends there, so the fourth is refused.
    await limits(5);
    const fill = await invoke(calls[0]!, NS, 'hold', { ms: 5000 }, 'blocking=false&instances=qf-{0..2}');
    expect(fill.status).toBe(202);
    const one = await invoke(calls[0]!, NS, 'hold', { ms: 5000 }, 'blocking=false');
    const two = await invoke(calls[0]!, NS, 'hold', { ms: 5000 }, 'blocking=false');
    expect([one.status, two.status]).toEqual([202, 202]);
    const ran = await waitFor(async () => (await calls[0]!('GET', path(`/activations/${one.body.activationId}`))).body, 10_000, 'the forwarded activation');
    expect(ran.host).not.toBe(hosts[0]!.hostId);
    const three = await invoke(calls[0]!, NS, 'hold', { ms: 10 }, 'blocking=false');
    expect(three.status).toBe(429);
    // Spawned: the spawner itself and 3 spawned would be 4 of a limit of 3.
    await waitFor(async () => (await invoke(calls[0]!, NS, 'small', {}, 'blocking=true')).status === 200, 20_000, 'the namespace to be idle again');
    await limits(3);
    const s = await invoke(calls[0]!, NS, 'spawner', { n: 3 }, 'blocking=true&result=true');
    expect(s.body).toMatchObject({ refused: 429 });
    await limits(0);
  }, 60_000);

  it('lists activations from every daemon, and names a daemon that does not answer', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await invoke(calls[i]!, NS, 'small', {}, `blocking=true&instance=list-${i}`)).body.activationId);
    const all = await calls[0]!('GET', path('/activations?name=small&limit=200'));
    expect(all.status).toBe(200);
    const listed = all.body.map((a: { activationId: string }) => a.activationId);
    for (const id of ids) expect(listed).toContain(id);
    expect(new Set(all.body.filter((a: { activationId: string }) => ids.includes(a.activationId)).map((a: { host: string }) => a.host)).size).toBe(3);
    // Newest first, and paging honoured across daemons.
    const starts = all.body.map((a: { start: number }) => a.start);
    expect([...starts].sort((a, b) => b - a)).toEqual(starts);
    const page = (await calls[1]!('GET', path('/activations?name=small&limit=2&skip=1'))).body;
    expect(page.map((a: { activationId: string }) => a.activationId)).toEqual(listed.slice(1, 3));
    // A daemon that hangs: the list still answers, and says whose records are missing.
    hosts[2]!.proc.kill('SIGSTOP');
    try {
      const res = await fetch(`${hosts[0]!.url}${path('/activations?limit=5')}`, { headers: { authorization: `Basic ${Buffer.from(nsAuth).toString('base64')}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('peerless-missing-hosts')).toBe(hosts[2]!.hostId);
    } finally {
      hosts[2]!.proc.kill('SIGCONT');
    }
  }, 60_000);

  it("fails the master's blocked call within 2 s naming members lost with their daemon (kill -9), and the job says why", async () => {
    const r = await invoke(calls[0]!, NS, 'jmaster', { n: 6, delay: 60_000 }, 'blocking=false&instance=jm');
    expect(r.status).toBe(202);
    const job = await childJob('jm');
    const victim = 2;
    const lost = job.members.filter((m) => m.host === hosts[victim]!.hostId).map((m) => m.instance);
    expect(lost.length).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 500)); // the master is blocked on its gather
    const t0 = Date.now();
    await hosts[victim]!.kill();
    const done = await waitFor(async () => {
      const a = await calls[0]!('GET', path(`/activations/${r.body.activationId}`));
      return a.status === 200 && a.body.end ? a.body : null;
    }, 20_000, 'the master to end');
    const f = done.response.result.failed;
    expect(f.name).toBe('PeerGoneError');
    expect(lost).toContain(f.instance);
    expect(f.at - t0).toBeLessThan(2000);
    const j = await waitFor(async () => { const x = (await jobOf(0, job.jobId)) as Job; return x.end ? x : null; }, 10_000, 'the job to end');
    expect(j.status).toBe('failed');
    for (const id of lost) expect(j.members.find((m) => m.instance === id)!.outcome!.error).toMatch(/host .* is gone/);
    hosts[victim] = await restart(victim);
  }, 120_000);

  it('with restart on-failure, starts members lost with their daemon elsewhere and the job completes', async () => {
    const r = await invoke(calls[0]!, NS, 'jmaster', { n: 6, delay: 4000, restart: 'on-failure:2' }, 'blocking=false&instance=jr');
    const job = await childJob('jr');
    const victim = 1;
    const lost = job.members.filter((m) => m.host === hosts[victim]!.hostId).map((m) => m.instance);
    expect(lost.length).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 500));
    await hosts[victim]!.kill();
    const done = await waitFor(async () => {
      const a = await calls[0]!('GET', path(`/activations/${r.body.activationId}`));
      return a.status === 200 && a.body.end ? a.body : null;
    }, 60_000, 'the master to end');
    const answers = done.response.result.answers as { id: string; epoch: number; host: string }[];
    expect(answers, JSON.stringify(done.response.result)).toHaveLength(6);
    for (const a of answers.filter((x) => lost.includes(x.id))) {
      expect(a.epoch).toBe(1);
      expect(a.host).not.toBe(hosts[victim]!.hostId);
    }
    const j = await waitFor(async () => { const x = (await jobOf(0, job.jobId)) as Job; return x.end ? x : null; }, 10_000, 'the job to end');
    expect(j.status).toBe('succeeded');
    hosts[victim] = await restart(victim);
  }, 120_000);

  it('answers bad input on the new routes with a problem naming the field, starting nothing', async () => {
    const cases: [string, string, string][] = [
      ['GET', path('/jobs/0123456789abcdef0123456789abcdef'), '/params/id'],
      ['GET', path('/jobs/not-a-job'), '/params/id'],
      ['DELETE', path('/jobs/0123456789abcdef0123456789abcdef'), '/params/id'],
      ['POST', path('/actions/small?instances=b-{0..3}&restart=always'), '/query/restart'],
      ['POST', path('/actions/small?instances=b-{0..3}&restart=on-failure:99'), '/query/restart'],
      ['POST', path('/actions/small?instance=b-1&restart=on-failure'), '/query/restart'],
      ['POST', path('/actions/small?instances=b-{0..3}&queueTimeout=soon'), '/query/queueTimeout'],
      ['POST', path('/actions/small?instances=b-{0..3}&queueTimeout=-1'), '/query/queueTimeout'],
      ['POST', path('/actions/small?instances=b-{0..100000}'), '/query/instances'],
      ['GET', path('/jobs?limit=100000'), '/query/limit'],
      ['GET', path('/activations?upto=yesterday'), '/query/upto'],
    ];
    for (const [method, p, field] of cases) {
      const r = await calls[1]!(method, p, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${p}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${p}`).toBeLessThan(500);
      expect(r.type).toContain('application/problem+json');
      expect(r.body.field, `${method} ${p}`).toBe(field);
    }
    expect((await calls[0]!('GET', path('/instances'))).body.instances.some((e: { instance: string }) => e.instance.startsWith('b-'))).toBe(false);
  });
});

/** The job a master spawned, once every member runs. */
async function childJob(master: string): Promise<Job & { jobId: string }> {
  return waitFor(async () => {
    const list = (await calls[0]!('GET', path('/jobs?limit=10'))).body as (Job & { jobId: string; members: { instance: string }[] })[];
    const j = list.find((x) => x.members[0]?.instance.startsWith(`${master}-w`) && x.end === null);
    return j && j.members.every((m) => m.state === 'running') ? j : null;
  }, 60_000, `the job of ${master} running`);
}

async function restart(i: number): Promise<TestDaemon> {
  const d = hosts[i]!;
  const again = await start(i, { dataDir: d.dataDir, apiPort: d.port });
  calls[i] = api(again.url, nsAuth);
  await waitFor(async () => (await api(hosts[0]!.url, hosts[0]!.admin)('GET', '/api/v1/cluster/peers')).body.peers.filter((p: { synced: boolean }) => p.synced).length === 2, 30_000, 'the restarted daemon back in the cluster');
  return again;
}
