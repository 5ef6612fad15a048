import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { api, docker, invoke, ROOT, waitFor } from '../helpers/daemon.ts';
import { startTrio, type Trio } from '../helpers/trio.ts';

// Jobs on a cluster of three daemons with the demo's budgets (6144 MB each),
// as separate processes on loopback sharing this machine's Docker engine:
// the README's wordcount at 35 and 100 workers, gang admission and its queue,
// cancel, the quota on every path, a killed daemon under a running job (with
// and without restarts), and activation lists across daemons.

let t: Trio;
const call = (i: number) => t.calls[i]!;
const path = (p: string) => t.path(p);
const containersOf = async (fn: string) => (await docker.listContainers({ filters: { label: [`peerless.namespace=${t.ns}`, `peerless.function=${fn}`] } })).length;
const ended = (via: number, id: string, ms: number) =>
  waitFor(
    async () => {
      const a = await call(via)('GET', path(`/activations/${id}`));
      return a.status === 200 && a.body.end ? a.body : null;
    },
    ms,
    `activation ${id} to end`,
  );
const jobEnded = (via: number, id: string, ms = 15_000) =>
  waitFor(
    async () => {
      const j = await t.job(via, id);
      return j.end ? j : null;
    },
    ms,
    `job ${id} to end`,
  );

beforeAll(async () => {
  t = await startTrio(`it-job-${process.pid}`);
});

afterAll(async () => {
  await t?.stop();
});

describe('jobs on three daemons', () => {
  beforeEach(async () => t.settle());

  it("runs the README's 35-worker wordcount across all three daemons, then 100 workers", async () => {
    const input = JSON.parse(readFileSync(join(ROOT, 'examples/wordcount/input-50.json'), 'utf8'));
    const r = await invoke(call(0), t.ns, 'wordcount', input, 'blocking=true&result=true&instance=wc');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ workers: 35, words: 285 });
    // The job is read through another daemon than the one that coordinates it.
    const job = await jobEnded(1, r.body.job);
    expect(job.status).toBe('succeeded');
    expect(new Set(job.members.map((m) => m.host)).size).toBe(3);

    // 100 workers do not fit on one daemon (12,800 MB): the job spreads them, and the master outlasts a blocking call.
    const big = await invoke(call(0), t.ns, 'wordcount', { ...input, workers: 100 }, 'blocking=false&instance=wc100');
    expect(big.status).toBe(202);
    const done = await ended(2, big.body.activationId, 280_000);
    expect(done.response.result).toMatchObject({ workers: 100, words: 285 });
    const j100 = await jobEnded(2, done.response.result.job);
    expect(j100.members.filter((m) => m.state === 'succeeded')).toHaveLength(100);
    expect(new Set(j100.members.map((m) => m.host)).size).toBe(3);
  }, 400_000);

  it('runs every collective over Node.js and Python members spread over the daemons; a member that dies fails the rest naming it', async () => {
    // Ranks alternate between the languages: every exchange of every schedule crosses SDKs somewhere.
    const ids = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? `cn-${i}` : `cp-${i}`));
    const run = async (die?: string) => {
      const params = { ids, ...(die ? { die } : {}) };
      const groups = await Promise.all([
        invoke(call(0), t.ns, 'collnode', params, `blocking=false&instances=${ids.filter((i) => i.startsWith('cn')).join(',')}`),
        invoke(call(1), t.ns, 'collpy', params, `blocking=false&instances=${ids.filter((i) => i.startsWith('cp')).join(',')}`),
      ]);
      for (const g of groups) expect(g.status, JSON.stringify(g.body)).toBe(202);
      const members = groups.flatMap((g) => g.body.activations as { instance: string; activationId: string }[]);
      const done = await Promise.all(members.map((m) => ended(0, m.activationId, 120_000)));
      return new Map(members.map((m, i) => [m.instance, done[i]]));
    };
    const all = await run();
    expect(new Set([...all.values()].map((a) => a.host)).size).toBeGreaterThan(1);
    for (const [id, a] of all) {
      const r = ids.indexOf(id);
      expect(a.response.status, `${id}: ${JSON.stringify(a.response.result)}`).toBe('success');
      expect(a.response.result).toEqual({
        sum: 36,
        order: ids.map((_, i) => `${i},`).join(''),
        scan: (r * (r + 1)) / 2,
        bcast: 'hello',
        shuffle: ids.map((_, i) => `${i}->${r}`),
        after: 8,
      });
    }
    await t.settle();
    const died = await run('cp-5');
    for (const [id, a] of died) {
      if (id === 'cp-5') expect(a.response.status).not.toBe('success');
      else expect(a.response.result.after, id).toEqual({ error: 'PeerGoneError', instance: 'cp-5' });
    }
  }, 300_000);

  it('refuses a group larger than the cluster at once, starting nothing', async () => {
    const before = (await call(0)('GET', path('/activations?name=hold&limit=200'))).body.length;
    const t0 = Date.now();
    const r = await invoke(call(0), t.ns, 'hold', {}, 'blocking=false&instances=big-{0..9}'); // 10 × 2048 MB; the cluster holds 9
    const ms = Date.now() - t0;
    expect(r.status).toBe(503);
    expect(r.type).toContain('application/problem+json');
    expect(r.body).toMatchObject({ field: '/query/instances' });
    expect(r.body.detail).toMatch(/room for 9 of the 10 members of 2048 MB: 2048 MB more/);
    expect(ms).toBeLessThan(1000);
    expect((await call(1)('GET', path('/instances'))).body.instances.filter((e: { instance: string }) => e.instance.startsWith('big-'))).toEqual([]);
    expect((await call(0)('GET', path('/activations?name=hold&limit=200'))).body.length).toBe(before);
    expect(await containersOf('hold')).toBe(0);
  });

  it('queues a group until room frees, or refuses it at its deadline with nothing started', async () => {
    const holders = await invoke(call(0), t.ns, 'hold', { ms: 6000 }, 'blocking=false&instances=q-hold-{0..6}'); // 7 of 9 slots
    expect(holders.status).toBe(202);
    const late = await invoke(call(1), t.ns, 'hold', {}, 'blocking=false&instances=q-late-{0..3}&queueTimeout=1000');
    expect(late.status).toBe(503);
    expect(late.body).toMatchObject({ field: '/query/queueTimeout' });
    expect((await call(0)('GET', path('/instances'))).body.instances.some((e: { instance: string }) => e.instance.startsWith('q-late-'))).toBe(false);
    // The holders' cold starts (evicting what earlier tests left idle) can take long on a loaded machine: the
    // queued group is asked for once they all run, and may wait a minute for their 6 s to pass.
    await waitFor(async () => (await t.job(0, holders.body.jobId)).members.every((m) => m.state === 'running' || m.state === 'succeeded'), 60_000, 'holders running');
    const waited = await invoke(call(1), t.ns, 'hold', { ms: 10 }, 'blocking=true&instances=q-wait-{0..3}&queueTimeout=60000');
    expect(waited.status, JSON.stringify(waited.body)).toBe(200);
    const holdEnds = await Promise.all(holders.body.activations.map(async (a: { activationId: string }) => (await call(0)('GET', path(`/activations/${a.activationId}`))).body.end));
    // It started only once holders had ended (they ran their 6 s); those still running have no end yet.
    const firstEnd = Math.min(...holdEnds.filter((e: number | null) => e !== null));
    for (const a of waited.body.activations) expect(a.start).toBeGreaterThanOrEqual(firstEnd);
  }, 180_000);

  it('kills a running 35-member job on every daemon, leaving no container of it', async () => {
    const r = await invoke(call(0), t.ns, 'small', { ms: 120_000 }, 'blocking=false&instances=k-{0..34}');
    expect(r.status).toBe(202);
    await waitFor(async () => (await t.job(0, r.body.jobId)).members.every((m) => m.state === 'running'), 120_000, 'all 35 members running');
    expect(new Set((await t.job(0, r.body.jobId)).members.map((m) => m.host)).size).toBe(3);
    const t0 = Date.now();
    const killed = await call(2)('DELETE', path(`/jobs/${r.body.jobId}`)); // through a daemon that does not coordinate it
    expect(killed.status).toBe(200);
    expect(killed.body.status).toBe('cancelled');
    await waitFor(async () => (await containersOf('small')) === 0, 15_000, 'no container of the job left');
    const gone = Date.now() - t0;
    console.log(`job kill: the last of 35 containers gone after ${gone} ms`);
    const j = await jobEnded(1, r.body.jobId);
    expect(j.status).toBe('cancelled');
    expect(j.members.every((m) => m.state === 'cancelled')).toBe(true);
  }, 180_000);

  it('holds the quota on every path: forwarded, grouped and spawned work', async () => {
    const admin = api(t.hosts[0]!.url, t.hosts[0]!.admin);
    const limits = async (n: number) => expect((await admin('PUT', `/api/v1/namespaces/${t.ns}/limits`, { invocationsPerMinute: 0, concurrentActivations: n })).status).toBe(200);
    try {
      // Grouped: a group over the limit is refused whole.
      await limits(3);
      const g = await invoke(call(0), t.ns, 'small', {}, 'blocking=false&instances=qg-{0..3}');
      expect(g.status).toBe(429);
      expect((await call(0)('GET', path('/instances'))).body.instances).toEqual([]);
      // Forwarded: host 0 is full (three named 2048 MB instances run where they are asked), so single invocations
      // of hold run on other daemons; each holds its slot until it ends there, so the third is refused.
      await limits(5);
      for (let i = 0; i < 3; i++) expect((await invoke(call(0), t.ns, 'hold', { ms: 6000 }, `blocking=false&instance=qf-${i}`)).status).toBe(202);
      const one = await invoke(call(0), t.ns, 'hold', { ms: 6000 }, 'blocking=false');
      const two = await invoke(call(0), t.ns, 'hold', { ms: 6000 }, 'blocking=false');
      expect([one.status, two.status]).toEqual([202, 202]);
      const ran = await waitFor(async () => (await call(0)('GET', path(`/activations/${one.body.activationId}`))).body.host, 10_000, 'the forwarded activation');
      expect(ran).not.toBe(t.hosts[0]!.hostId);
      const three = await invoke(call(0), t.ns, 'hold', { ms: 10 }, 'blocking=false');
      expect(three.status).toBe(429);
      // Spawned: the spawner itself and the 3 it spawns would be 4 of a limit of 3.
      await t.settle();
      await limits(3);
      const s = await invoke(call(0), t.ns, 'spawner', { n: 3 }, 'blocking=true&result=true');
      expect(s.body).toMatchObject({ refused: 429 });
      expect(s.body.detail).toMatch(/at most 3 activations at once/);
    } finally {
      await limits(0);
    }
  }, 90_000);

  it('lists activations from every daemon, and names a daemon that does not answer', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await invoke(call(i), t.ns, 'small', {}, `blocking=true&instance=list-${i}`)).body.activationId);
    const all = await call(0)('GET', path('/activations?name=small&limit=200'));
    expect(all.status).toBe(200);
    const listed = all.body.map((a: { activationId: string }) => a.activationId);
    for (const id of ids) expect(listed).toContain(id);
    expect(new Set(all.body.filter((a: { activationId: string }) => ids.includes(a.activationId)).map((a: { host: string }) => a.host)).size).toBe(3);
    // Newest first, and paging honoured across daemons.
    const starts = all.body.map((a: { start: number }) => a.start);
    expect([...starts].sort((a, b) => b - a)).toEqual(starts);
    const page = (await call(1)('GET', path('/activations?name=small&limit=2&skip=1'))).body;
    expect(page.map((a: { activationId: string }) => a.activationId)).toEqual(listed.slice(1, 3));
    // A daemon that hangs: the list still answers, and says whose records are missing.
    t.hosts[2]!.proc.kill('SIGSTOP');
    try {
      const res = await fetch(`${t.hosts[0]!.url}${path('/activations?limit=5')}`, { headers: { authorization: `Basic ${Buffer.from(t.auth).toString('base64')}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('peerless-missing-hosts')).toBe(t.hosts[2]!.hostId);
    } finally {
      t.hosts[2]!.proc.kill('SIGCONT');
    }
    await t.meshed();
  }, 60_000);

  it("fails the master's blocked call within 2 s naming members lost with their daemon (kill -9), and the job says why", async () => {
    const r = await invoke(call(0), t.ns, 'jmaster', { n: 6, delay: 60_000 }, 'blocking=false&instance=jm');
    expect(r.status).toBe(202);
    const job = await t.childJob('jm');
    const victim = 2;
    const lost = job.members.filter((m) => m.host === t.hosts[victim]!.hostId).map((m) => m.instance);
    expect(lost.length).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 500)); // the master is blocked on its gather
    const t0 = Date.now();
    await t.hosts[victim]!.kill();
    const done = await ended(0, r.body.activationId, 20_000);
    const f = done.response.result.failed;
    expect(f, JSON.stringify(done.response.result)).toBeDefined();
    expect(f.name).toBe('PeerGoneError');
    expect(lost).toContain(f.instance);
    expect(f.at - t0).toBeLessThan(2000);
    const j = await jobEnded(0, job.jobId);
    expect(j.status).toBe('failed');
    for (const id of lost) expect(j.members.find((m) => m.instance === id)!.outcome!.error).toMatch(/host .* is gone/);
    await t.restart(victim);
  }, 120_000);

  it('with restart on-failure, starts members lost with their daemon elsewhere and the job completes', async () => {
    const r = await invoke(call(0), t.ns, 'jmaster', { n: 6, delay: 4000, restart: 'on-failure:2' }, 'blocking=false&instance=jr');
    const job = await t.childJob('jr');
    const victim = 1;
    const lost = job.members.filter((m) => m.host === t.hosts[victim]!.hostId).map((m) => m.instance);
    expect(lost.length).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 500));
    await t.hosts[victim]!.kill();
    const done = await ended(0, r.body.activationId, 60_000);
    const answers = done.response.result.answers as { id: string; epoch: number; host: string }[];
    expect(answers, JSON.stringify(done.response.result)).toHaveLength(6);
    for (const a of answers.filter((x) => lost.includes(x.id))) {
      expect(a.epoch).toBe(1);
      expect(a.host).not.toBe(t.hosts[victim]!.hostId);
    }
    const j = await jobEnded(0, job.jobId);
    expect(j.status).toBe('succeeded');
    expect(j.members.filter((m) => lost.includes(m.instance)).every((m) => m.epoch === 1)).toBe(true);
    await t.restart(victim);
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
      const r = await call(1)(method, p, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${p}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${p}`).toBeLessThan(500);
      expect(r.type).toContain('application/problem+json');
      expect(r.body.field, `${method} ${p}`).toBe(field);
    }
    expect((await call(0)('GET', path('/instances'))).body.instances.some((e: { instance: string }) => e.instance.startsWith('b-'))).toBe(false);
  });
});
