// Spawn at the speed of fork: the README's word count with 35 and 100 workers,
// each worker its own container (concurrency 1, as before) against workers
// sharing containers (concurrency 50: Node.js worker threads, Python forks),
// cold and warm, measured at the API from the group request to the master's
// result; the floor for one container per worker is the same number of
// `docker run -d` of the runtime image at once. Then the resident memory of 100
// idle instances, shared against one container each.
// Run: node test/bench/spawn.ts [--quick]   (quick: 35 workers, one cold run; CI runs it)
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { imageTag } from '../../sandbox/images.ts';
import { cleanupHost, deploy, docker, invoke, namespace, ROOT, startDaemon, waitFor } from '../helpers/daemon.ts';
import { median, report, type Row } from './report.ts';

const exec = promisify(execFile);
const quick = process.argv.includes('--quick');
const HOST = `bench-spawn-${process.pid}`;
const text = JSON.parse(readFileSync(join(ROOT, 'examples/wordcount/input-50.json'), 'utf8')).text as string;
const example = (p: string) => readFileSync(join(ROOT, 'examples', p), 'utf8');
const SIZES = quick ? [35] : [35, 100];
const COLD_RUNS = quick ? 1 : 2;
const WARM_RUNS = quick ? 3 : 5;
const SHARED = 50;

// 100 workers of 128 MB one to a container need 12.8 GB of budget: a promise, not what they use.
const d = await startDaemon({ hostId: HOST, flags: ['--memory-budget-mb', '16384', '--pause-grace-ms', '600000'] });
const spawnRows: Row[] = [];
const memRows: Row[] = [];
let version = 0;
try {
  const { call, ns } = await namespace(d, `${HOST}-ns`);
  await deploy(call, ns, 'wordcount', { kind: 'nodejs', code: example('wordcount/master.js') }, { limits: { timeout: 300_000 } });
  const workerLimits = (runtime: string, concurrency: number) => (concurrency === 1 ? { memory: 128, timeout: 300_000 } : { memory: runtime === 'nodejs' ? 2048 : 512, timeout: 300_000, concurrency });
  /** A new version of the worker: none of its containers is warm. */
  const redeploy = async (runtime: 'nodejs' | 'python', concurrency: number) => {
    const code = runtime === 'nodejs' ? `${example('wordcount/worker.js')}\n// v${version++}` : `${example('wordcount/worker.py')}\n# v${version++}`;
    const r = await deploy(call, ns, 'wordcount-worker', { kind: runtime, code }, { limits: workerLimits(runtime, concurrency) });
    if (r.status !== 200 && r.status !== 201) throw new Error(`deploy: ${JSON.stringify(r.body)}`);
  };
  /** From the group request to the master's result, at the API. */
  const wordcount = async (workers: number) => {
    const t = performance.now();
    const r = await invoke(call, ns, 'wordcount', { text, workers }, 'blocking=true&result=true&instance=wc');
    let result = r.body;
    if (r.status === 202)
      result = (
        await waitFor(
          async () => {
            const a = await call('GET', `/api/v1/namespaces/${ns}/activations/${r.body.activationId}`);
            return a.body?.end ? a.body : null;
          },
          300_000,
          'the master',
        )
      ).response.result;
    const ms = performance.now() - t;
    if (result?.words !== 285 || result?.workers !== workers) throw new Error(`wrong count: ${JSON.stringify(result)}`);
    return ms;
  };
  // Every container of the function, once the job's members are gone.
  const settle = () => waitFor(async () => (await call('GET', `/api/v1/namespaces/${ns}/activations?limit=200`)).body.every((a: { end: number | null }) => a.end !== null), 120_000, 'idle');

  const floors = new Map<number, number>();
  const image = imageTag('nodejs');
  for (const n of SIZES) {
    const t = performance.now();
    const ids = await Promise.all(Array.from({ length: n }, () => exec('docker', ['run', '-d', '--label', `peerless.host=${HOST}`, image]).then((r) => r.stdout.trim())));
    floors.set(n, performance.now() - t);
    await exec('docker', ['rm', '-f', ...ids]);
  }

  for (const runtime of ['nodejs', 'python'] as const) {
    for (const n of SIZES) {
      const results: Record<string, { cold: number; warm: number }> = {};
      for (const concurrency of [1, SHARED]) {
        const cold: number[] = [];
        for (let i = 0; i < COLD_RUNS; i++) {
          await redeploy(runtime, concurrency);
          cold.push(await wordcount(n));
          await settle();
        }
        const warm: number[] = [];
        for (let i = 0; i < WARM_RUNS; i++) {
          warm.push(await wordcount(n));
          await settle();
        }
        results[concurrency] = { cold: median(cold), warm: median(warm) };
        process.stdout.write(`${runtime} ${n} workers, concurrency ${concurrency}: cold ${median(cold).toFixed(0)} ms, warm ${median(warm).toFixed(0)} ms\n`);
      }
      const shared = results[SHARED]!;
      const solo = results[1]!;
      spawnRows.push(
        {
          metric: `${runtime} ${n} workers, cold, shared`,
          unit: 'ms',
          ours: shared.cold,
          baseline: floors.get(n)!,
          baselineName: `${n} × docker run -d`,
          better: 'lower',
          note: `concurrency ${SHARED}`,
        },
        { metric: `${runtime} ${n} workers, cold, shared vs solo`, unit: 'ms', ours: shared.cold, baseline: solo.cold, baselineName: 'concurrency 1', better: 'lower' },
        { metric: `${runtime} ${n} workers, warm, shared vs solo`, unit: 'ms', ours: shared.warm, baseline: solo.warm, baselineName: 'concurrency 1', better: 'lower', note: `median of ${WARM_RUNS}` },
      );
    }
  }

  report(
    'spawn',
    `Word count at ${SIZES.join(' and ')} workers: workers sharing containers (concurrency ${SHARED}) against one container each, at the API`,
    spawnRows,
    'aims on this 2-core machine: 35 workers cold ≤ 1 s, 100 workers cold ≤ 1.5 s, 35 workers warm ≤ 60 ms.',
  );

  // Resident memory of 100 idle instances (each waits for a message that never comes), by the engine's own
  // count of each container's resident set.
  if (!quick) {
    // They wait longer than a hundred containers take to start, so that all hundred are up at once.
    const idle = `const peerless = require('peerless'); async function main() { await peerless.recv(undefined, 280000).catch(() => null); return {} }`;
    const idlePy = `import peerless\ndef main(p):\n    try:\n        peerless.recv(None, timeout=280)\n    except Exception:\n        pass\n    return {}\n`;
    for (const runtime of ['nodejs', 'python'] as const) {
      const rss: Record<number, number> = {};
      for (const concurrency of [1, SHARED]) {
        const name = `idle-${runtime}-${concurrency}`;
        await deploy(call, ns, name, { kind: runtime, code: runtime === 'nodejs' ? idle : idlePy }, { limits: workerLimits(runtime, concurrency) });
        const ids = Array.from({ length: 100 }, (_, i) => `${name}-${i}`);
        const r = await invoke(call, ns, name, {}, `blocking=false&instances=${ids.join(',')}`);
        if (r.status !== 202) throw new Error(JSON.stringify(r.body));
        await waitFor(
          async () => {
            const m = (await call('GET', `/api/v1/namespaces/${ns}/instances`)).body.instances as { instance: string; state: string }[];
            return m.filter((e) => e.instance.startsWith(`${name}-`) && e.state === 'running').length === 100;
          },
          300_000,
          `100 ${name} running`,
        );
        await new Promise((res) => setTimeout(res, 3000)); // settled: started, listening, waiting
        rss[concurrency] = await residentMb(ns, name);
        await call('DELETE', `/api/v1/namespaces/${ns}/jobs/${r.body.jobId}`);
        await settle();
      }
      memRows.push({ metric: `${runtime}: 100 idle instances`, unit: 'MB', ours: rss[SHARED]!, baseline: rss[1]!, baselineName: '100 containers', better: 'lower', note: `concurrency ${SHARED}` });
    }
  }
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}

/** The summed resident memory of a function's containers, as the engine counts it (cgroup rss). */
async function residentMb(ns: string, fn: string): Promise<number> {
  const list = await docker.listContainers({ filters: { label: [`peerless.namespace=${ns}`, `peerless.function=${fn}`] } });
  const each = await Promise.all(
    list.map(async (c) => {
      const s = (await docker.getContainer(c.Id).stats({ stream: false })) as { memory_stats: { usage?: number; stats?: Record<string, number> } };
      const st = s.memory_stats.stats ?? {};
      return st.total_rss ?? st.rss ?? st.anon ?? s.memory_stats.usage ?? 0;
    }),
  );
  return each.reduce((a, b) => a + b, 0) / 1048576;
}

if (memRows.length > 0) report('spawn-memory', 'Resident memory of 100 idle instances: shared containers against one container each', memRows);
