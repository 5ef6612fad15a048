import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, cleanupHost, deploy, clusterFlags, namespace, ROOT, startDaemon, waitFor, type Api, type TestDaemon } from './daemon.ts';

// Three daemons as processes on loopback, sharing this machine's Docker engine
// and a cluster key, each with the demo's budget: the cluster the jobs tests
// and the jobs benchmark run on, with the functions they deploy.

const js = (code: string) => ({ kind: 'nodejs', code });

/** What the jobs tests and bench deploy: the README's wordcount, and small functions that make jobs easy to watch. */
/** A collectives member, the same steps in both SDKs: what each collective gave it, and what the one after a death did. */
const COLL_NODE = `const peerless = require('peerless');
async function main(p) {
  const ids = p.ids, me = peerless.instanceId(), r = ids.indexOf(me), out = {};
  out.sum = await peerless.allreduce(ids, r + 1, 'sum');
  out.order = await peerless.allreduce(ids, r + ',', (a, b) => a + b);
  out.scan = await peerless.scan(ids, r, 'sum');
  out.bcast = (await peerless.broadcast(ids, me === ids[ids.length - 1] ? 'hello' : '', { root: ids[ids.length - 1] })).toString();
  out.shuffle = (await peerless.alltoall(ids, ids.map((_, j) => r + '->' + j))).map(String);
  await peerless.barrier(ids);
  if (p.die === me) process.exit(1);
  try { out.after = await peerless.allreduce(ids, 1, 'sum') } catch (e) { out.after = { error: e.name, instance: e.instance } }
  return out;
}`;
const COLL_PY = [
  'import os, peerless',
  'def main(p):',
  '    ids, me = p["ids"], peerless.instance_id()',
  '    r, out = ids.index(me), {}',
  '    out["sum"] = peerless.allreduce(ids, float(r + 1), "sum")',
  '    out["order"] = peerless.allreduce(ids, "%d," % r, lambda a, b: a + b)',
  '    out["scan"] = peerless.scan(ids, float(r), "sum")',
  '    b = peerless.broadcast(ids, "hello" if me == ids[-1] else "", root=ids[-1])',
  '    out["bcast"] = b',
  '    out["shuffle"] = peerless.alltoall(ids, ["%d->%d" % (r, j) for j in range(len(ids))])',
  '    peerless.barrier(ids)',
  '    if p.get("die") == me:',
  '        os._exit(1)',
  '    try:',
  '        out["after"] = peerless.allreduce(ids, 1.0, "sum")',
  '    except peerless.PeerGoneError as e:',
  '        out["after"] = {"error": type(e).__name__, "instance": e.instance}',
  '    return out',
].join('\n');

export const JOB_FUNCTIONS: Record<string, { exec: Record<string, unknown>; limits?: Record<string, unknown> }> = {
  wordcount: { exec: js(readFileSync(join(ROOT, 'examples/wordcount/master.js'), 'utf8')), limits: { timeout: 300_000 } },
  'wordcount-worker': { exec: js(readFileSync(join(ROOT, 'examples/wordcount/worker.js'), 'utf8')), limits: { memory: 128, timeout: 300_000 } },
  // Holds its memory for p.ms.
  hold: { exec: js(`async function main(p) { await new Promise((r) => setTimeout(r, p.ms ?? 1000)); return { at: Date.now() } }`), limits: { memory: 2048 } },
  collnode: { exec: js(COLL_NODE), limits: { memory: 128 } },
  collpy: { exec: { kind: 'python', code: COLL_PY }, limits: { memory: 128 } },
  small: { exec: js(`async function main(p) { await new Promise((r) => setTimeout(r, p.ms ?? 0)); return { ok: true } }`), limits: { memory: 128 } },
  // Spawns a group of p.n `small` and reports what the function API said.
  spawner: {
    exec: js(`const peerless = require('peerless');
    async function main(p) {
      try { await peerless.spawn('small', { instances: 'sp-{0..' + (p.n - 1) + '}', params: { ms: 3000 } }); return { spawned: p.n } }
      catch (e) { return { refused: e.status, detail: e.body && e.body.detail } }
    }`),
    limits: { memory: 128 },
  },
  // A worker: waits for its master's word, then answers after p.delay (at once once restarted).
  jworker: {
    exec: js(`const peerless = require('peerless');
    async function main(p) {
      await peerless.recv(p.master);
      const me = (await peerless.self()).entry;
      await new Promise((r) => setTimeout(r, me.epoch ? 0 : p.delay));
      await peerless.send(p.master, JSON.stringify({ id: me.instance, epoch: me.epoch ?? 0, host: me.host }));
      return {};
    }`),
    limits: { memory: 128 },
  },
  // A master: spawns p.n workers, tells each to go, gathers; a restarted worker is told again. A PeerGoneError is
  // returned with the moment it was seen.
  jmaster: {
    exec: js(`const peerless = require('peerless');
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
    }`),
    limits: { memory: 256, timeout: 120_000 },
  },
};

export type Job = {
  jobId: string;
  status: string;
  reason: string | null;
  end: number | null;
  members: { instance: string; host: string; state: string; epoch: number; activationId: string; outcome: { status: string; error: string | null } | null }[];
};

export interface Trio {
  hosts: TestDaemon[];
  /** a namespace client through each daemon */
  calls: Api[];
  ns: string;
  auth: string;
  path: (p: string) => string;
  job: (via: number, id: string) => Promise<Job>;
  /** until nothing of the namespace runs on any daemon */
  settle: () => Promise<void>;
  /** the job a master with this instance ID spawned, once every member runs */
  childJob: (master: string) => Promise<Job>;
  /** until every daemon holds the other two as synced members */
  meshed: () => Promise<void>;
  /** starts daemon i again on its data dir and port (after a kill), back in the cluster */
  restart: (i: number) => Promise<void>;
  stop: () => Promise<void>;
}

/**
 * The failure timeout is 6 s, not the 1.5 s default: the three daemons share two cores with every container
 * they start, and a cold start of a hundred containers at once can hold a daemon's beats back for seconds
 * (CI saw a 100-worker wordcount lose a worker to it at 3 s). A daemon killed outright is still dropped in
 * tens of milliseconds: its peers find its port closed.
 */
/** `cli`: the `peerless` script daemon i runs from, when not the checkout's (startDaemon) */
export async function startTrio(prefix: string, opts: { budgetMb?: number; failureTimeoutMs?: number; cli?: (i: number) => string | undefined } = {}): Promise<Trio> {
  const key = randomBytes(32).toString('hex');
  const base = 18400 + (process.pid % 50) * 10;
  const addr = (i: number) => `/ip4/127.0.0.1/tcp/${base + i}`;
  const start = (i: number, o: { dataDir?: string; apiPort?: number } = {}) =>
    startDaemon({
      hostId: `${prefix}-h${i}`,
      flags: [...clusterFlags(i, key, addr), '--failure-timeout-ms', String(opts.failureTimeoutMs ?? 6000), '--heartbeat-ms', '200', '--memory-budget-mb', String(opts.budgetMb ?? 6144)],
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ...(o.apiPort ? { port: o.apiPort } : {}),
      ...(opts.cli?.(i) ? { cli: opts.cli(i)! } : {}),
    });
  const hosts: TestDaemon[] = [];
  for (let i = 0; i < 3; i++) hosts.push(await start(i));
  const peersOf = async (d: TestDaemon) => (await api(d.url, d.admin)('GET', '/api/v1/cluster/peers')).body as { peers: { synced: boolean }[] };
  const meshed = () => waitFor(async () => (await Promise.all(hosts.map(peersOf))).every((p) => p.peers.filter((x) => x.synced).length === 2), 30_000, 'a full mesh of three').then(() => undefined);
  await meshed();
  const ns = `${prefix}-h0-ns`;
  const { auth } = await namespace(hosts[0]!, ns);
  const calls = hosts.map((d) => api(d.url, auth));
  const path = (p: string) => `/api/v1/namespaces/${ns}${p}`;
  for (const [name, f] of Object.entries(JOB_FUNCTIONS)) {
    const r = await deploy(calls[0]!, ns, name, f.exec, f.limits ? { limits: f.limits } : {});
    if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const n = Object.keys(JOB_FUNCTIONS).length;
  await waitFor(async () => (await Promise.all(calls.map((c) => c('GET', path('/actions'))))).every((r) => r.status === 200 && r.body.length === n), 30_000, 'functions on every host');
  const job = async (via: number, id: string) => (await calls[via]!('GET', path(`/jobs/${id}`))).body as Job;
  return {
    hosts,
    calls,
    ns,
    auth,
    path,
    job,
    meshed,
    settle: () =>
      waitFor(
        async () => {
          const acts = (await calls[0]!('GET', path('/activations?limit=200'))).body as { end: number | null }[];
          const jobs = (await calls[0]!('GET', path('/jobs?limit=50'))).body as { end: number | null }[];
          return acts.every((a) => a.end !== null) && jobs.every((j) => j.end !== null);
        },
        300_000,
        'the namespace to be idle',
      ).then(() => undefined),
    childJob: (master) =>
      waitFor(
        async () => {
          const list = (await calls[0]!('GET', path('/jobs?limit=10'))).body as Job[];
          const j = list.find((x) => x.members[0]?.instance.startsWith(`${master}-w`) && x.end === null);
          return j && j.members.every((m) => m.state === 'running') ? j : null;
        },
        60_000,
        `the job of ${master} running`,
      ),
    async restart(i) {
      const d = hosts[i]!;
      hosts[i] = await start(i, { dataDir: d.dataDir, apiPort: d.port });
      calls[i] = api(hosts[i]!.url, auth);
      await meshed();
    },
    async stop() {
      for (const d of hosts) {
        const drops = d
          .logs()
          .split('\n')
          .filter((l) => /peer down|peer process gone|failed inside/.test(l));
        if (drops.length > 0) console.log(`${d.hostId}:\n${drops.slice(-20).join('\n')}`);
      }
      for (const d of hosts) await d.stop().catch(() => undefined);
      for (const d of hosts) await cleanupHost(d.hostId, d.dataDir);
    },
  };
}
