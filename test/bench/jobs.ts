// Jobs on three daemons (processes on loopback, one Docker engine, the demo's
// 6,144 MB budget each), in one run:
//  1. admission: refusing a group the cluster cannot hold, and placing a
//     100-member group across the daemons, against a single invocation's placement;
//  2. failure detection as a job sees it: from kill -9 of a member's container,
//     and of a member's daemon, to the master's PeerGoneError (aims: ≤ 1 s, ≤ 2 s);
//  3. wordcount with 6/11/17/35/100 workers, cold and warm, against the seed
//     thesis's published times (Kubernetes + NATS).
// Run: node test/bench/jobs.ts   (about 15 minutes; BENCH_RUNS=5 for a short one)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { docker, invoke, ROOT, waitFor } from '../helpers/daemon.ts';
import { JOB_FUNCTIONS, startTrio } from '../helpers/trio.ts';
import { median, percentile, report, type Row } from './report.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const THESIS_S: Record<number, number> = { 6: 4.58, 11: 5.87, 17: 10.1, 35: 18.77 };
const t = await startTrio(`bench-job-${process.pid}`);
const { calls, path, hosts } = t;
const admission: Row[] = [];
const failure: Row[] = [];
const wc: Row[] = [];
const timed = async <T>(f: () => Promise<T>): Promise<[number, T]> => {
  const t0 = performance.now();
  const v = await f();
  return [performance.now() - t0, v];
};
const ended = (id: string, ms = 280_000) =>
  waitFor(
    async () => {
      const a = await calls[0]!('GET', path(`/activations/${id}`));
      return a.status === 200 && a.body.end ? a.body : null;
    },
    ms,
    `activation ${id}`,
  );

try {
  // 1. Admission.
  const refuse: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const [ms, r] = await timed(() => invoke(calls[0]!, t.ns, 'hold', {}, `blocking=false&instances=big-${i}-{0..9}`));
    if (r.status !== 503) throw new Error(`expected a refusal: ${r.status}`);
    refuse.push(ms);
  }
  const single: number[] = [];
  for (let i = 0; i < RUNS * 5; i++) {
    const [ms, r] = await timed(() => invoke(calls[0]!, t.ns, 'small', {}, 'blocking=false'));
    if (r.status !== 202) throw new Error(`single: ${r.status}`);
    single.push(ms);
  }
  await t.settle();
  const place: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [ms, r] = await timed(() => invoke(calls[0]!, t.ns, 'small', {}, `blocking=false&instances=p-${i}-{0..99}`));
    if (r.status !== 202) throw new Error(`group: ${r.status} ${JSON.stringify(r.body)}`);
    place.push(ms);
    await t.settle();
  }
  admission.push({
    metric: 'refuse a group that does not fit (10 × 2 GB)',
    unit: 'ms',
    ours: median(refuse),
    baseline: median(single),
    baselineName: 'place one invocation',
    better: 'lower',
    note: `p99 ${percentile(refuse, 99).toFixed(1)} ms; aim < 100 ms`,
  });
  admission.push({
    metric: 'place a 100-member group on 3 daemons',
    unit: 'ms',
    ours: median(place),
    baseline: median(single),
    baselineName: 'place one invocation',
    better: 'lower',
    note: `p99 ${percentile(place, 99).toFixed(1)} ms; until 202, members then start`,
  });
  report('jobs-admission', 'Gang admission on three daemons (6,144 MB each)', admission);

  // 2. Failure detection: a member's container killed, and a member's daemon killed.
  const crash: number[] = [];
  const daemon: number[] = [];
  for (const kind of ['container', 'daemon'] as const) {
    for (let i = 0; i < RUNS; i++) {
      const master = `fd-${kind[0]}${i}`;
      const r = await invoke(calls[0]!, t.ns, 'jmaster', { n: 3, delay: 60_000 }, `blocking=false&instance=${master}`);
      const job = await t.childJob(master);
      const victim = job.members.find((m) => m.host !== hosts[0]!.hostId) ?? job.members[0]!;
      await new Promise((res) => setTimeout(res, 300));
      let t0: number;
      if (kind === 'container') {
        const [c] = await docker.listContainers({ filters: { label: [`peerless.activation=${victim.activationId}`] } });
        t0 = Date.now();
        await docker.getContainer(c!.Id).kill();
      } else {
        const i = hosts.findIndex((h) => h.hostId === victim.host);
        t0 = Date.now();
        await hosts[i]!.kill();
        const done = (await ended(r.body.activationId, 30_000)).response.result;
        daemon.push(done.failed.at - t0);
        await t.restart(i);
        await t.settle();
        continue;
      }
      const done = (await ended(r.body.activationId, 30_000)).response.result;
      if (!done.failed) throw new Error(`the master did not fail: ${JSON.stringify(done)}`);
      crash.push(done.failed.at - t0);
      await t.settle();
    }
  }
  failure.push({
    metric: "member's container killed → master's PeerGoneError",
    unit: 'ms',
    ours: median(crash),
    baseline: 1000,
    baselineName: 'aim',
    better: 'lower',
    note: `p99 ${percentile(crash, 99).toFixed(0)} ms, ${crash.length} runs`,
  });
  failure.push({
    metric: "member's daemon killed → master's PeerGoneError",
    unit: 'ms',
    ours: median(daemon),
    baseline: 2000,
    baselineName: 'aim',
    better: 'lower',
    note: `p99 ${percentile(daemon, 99).toFixed(0)} ms, ${daemon.length} runs`,
  });
  report('jobs-failure', "Failure detection seen by a job: kill -9 to the master's PeerGoneError", failure);

  // 3. Wordcount at 6/11/17/35/100 workers.
  const text = JSON.parse(readFileSync(join(ROOT, 'examples/wordcount/input-50.json'), 'utf8')).text as string;
  const inputs: [number, Record<string, unknown>][] = [
    [6, { text, block: 300 }],
    [11, { text, block: 160 }],
    [17, { text, block: 100 }],
    [35, { text, block: 50 }],
    [100, { text, workers: 100 }],
  ];
  const worker = JOB_FUNCTIONS['wordcount-worker']!;
  for (const [n, params] of inputs) {
    // A new version of the worker: none of its containers is warm.
    const v = (await calls[0]!('PUT', path('/actions/wordcount-worker?overwrite=true'), { exec: { ...worker.exec, code: `${worker.exec.code}\n// ${n}` }, limits: worker.limits })).body.version;
    await waitFor(
      async () => (await Promise.all(calls.map((c) => c('GET', path('/actions/wordcount-worker?code=false'))))).every((r) => r.body.version === v),
      10_000,
      'the new worker on every daemon',
    );
    const run = async () => {
      const t0 = performance.now();
      const r = await invoke(calls[0]!, t.ns, 'wordcount', params, 'blocking=false&instance=wc');
      const a = await ended(r.body.activationId);
      if (a.response.result.workers !== n) throw new Error(`wordcount ${n}: ${JSON.stringify(a.response.result)}`);
      await t.settle();
      return performance.now() - t0;
    };
    const cold = await run();
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) warm.push(await run());
    const thesis = THESIS_S[n];
    wc.push({ metric: `${n} workers, cold`, unit: 'ms', ours: cold, baseline: thesis ? thesis * 1000 : median(warm), baselineName: thesis ? 'thesis (published)' : 'peerless warm', better: 'lower' });
    wc.push({
      metric: `${n} workers, warm`,
      unit: 'ms',
      ours: median(warm),
      baseline: thesis ? thesis * 1000 : cold,
      baselineName: thesis ? 'thesis (published)' : 'peerless cold',
      better: 'lower',
      note: 'median of 3',
    });
    process.stdout.write(`${n} workers: cold ${cold.toFixed(0)} ms, warm ${median(warm).toFixed(0)} ms\n`);
  }
} finally {
  await t.stop();
}
report(
  'jobs-wordcount',
  "Wordcount as a job on three daemons, from the request to the master's result (thesis: Kubernetes + NATS, published)",
  wc,
  'cold: every worker a new container (Docker create, attach, start on one engine for all three daemons); warm: containers reused.',
);
