// Benchmark of the single-host platform, every baseline measured in the same run:
//  - cold start through the API vs `docker run` of the same runtime image (the floor)
//  - warm invoke latency through the API vs a direct POST /run to the warm action proxy (the floor)
//  - invocations per second at concurrency 1, 8, 32 vs the direct /run rate at concurrency 1
// Run: node test/bench/singlehost.ts   (bounded: a few minutes at most)
import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import { imageTag } from '../../sandbox/images.ts';
import { controlNetworkName } from '../../sandbox/networks.ts';
import { cleanupHost, deploy, docker, namespace, startDaemon } from '../helpers/daemon.ts';
import { median, percentile, report, type Row } from './report.ts';

const exec = promisify(execFile);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 10);
const WARM_RUNS = Number(process.env.BENCH_WARM_RUNS ?? 1000);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 5);
const HOST = `bench-${process.pid}`;
const NOOP = 'function main() { return { ok: true } }';

const d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '600000', '--memory-budget-mb', '8192'] });
const rows: Row[] = [];
try {
  const { call, ns, auth } = await namespace(d, `${HOST}-ns`);
  const authz = `Basic ${Buffer.from(auth).toString('base64')}`;
  const invokeUrl = (name: string) => `${d.url}/api/v1/namespaces/${ns}/actions/${name}?blocking=true&result=true`;
  const timed = async (f: () => Promise<unknown>) => {
    const t = performance.now();
    await f();
    return performance.now() - t;
  };
  const invokeOnce = async (name: string) => {
    const r = await fetch(invokeUrl(name), { method: 'POST', headers: { authorization: authz, 'content-type': 'application/json' }, body: '{}' });
    const body = await r.text();
    if (r.status !== 200) throw new Error(`invoke ${name}: ${r.status} ${body}`);
  };

  // 1. Cold start. Each run updates the function first, so no warm container can serve it.
  const image = imageTag('nodejs');
  const floorCold: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) floorCold.push(await timed(() => exec('docker', ['run', '--rm', '--network', controlNetworkName(HOST), image, '/usr/bin/node', '-e', '0'])));
  const cold: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    await deploy(call, ns, 'cold', { kind: 'nodejs', code: `${NOOP} // ${i}` });
    cold.push(await timed(() => invokeOnce('cold')));
  }
  rows.push({ metric: 'cold start, median', unit: 'ms', ours: median(cold), baseline: median(floorCold), baselineName: 'docker run', better: 'lower', note: `${COLD_RUNS} runs each` });

  // 2. Warm latency: the API path vs a direct POST /run to the same kind of warm container.
  await deploy(call, ns, 'warm', { kind: 'nodejs', code: NOOP }, { limits: { memory: 128 } });
  await deploy(call, ns, 'direct', { kind: 'nodejs', code: NOOP }, { limits: { memory: 128 } });
  for (let i = 0; i < 50; i++) await invokeOnce('warm');
  await invokeOnce('direct');
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) warm.push(await timed(() => invokeOnce('warm')));
  const [c] = await docker.listContainers({ filters: { label: [`peerless.host=${HOST}`, 'peerless.function=direct'] } });
  const ip = (await docker.getContainer(c!.Id).inspect()).NetworkSettings.Networks[controlNetworkName(HOST)]!.IPAddress;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const payload = JSON.stringify({ value: {}, activation_id: 'bench' });
  const direct = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: ip, port: 8080, path: '/run', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`direct ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(payload);
    });
  for (let i = 0; i < 50; i++) await direct();
  const floorWarm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) floorWarm.push(await timed(direct));
  rows.push({
    metric: 'warm invoke p50',
    unit: 'ms',
    ours: median(warm),
    baseline: median(floorWarm),
    baselineName: 'direct /run',
    better: 'lower',
    note: `+${(median(warm) - median(floorWarm)).toFixed(2)} ms`,
  });
  rows.push({ metric: 'warm invoke p99', unit: 'ms', ours: percentile(warm, 99), baseline: percentile(floorWarm, 99), baselineName: 'direct /run', better: 'lower', note: `${WARM_RUNS} runs each` });

  // 3. Throughput at concurrency 1, 8, 32 (bounded in time and count).
  const rate = async (concurrency: number, one: () => Promise<void>): Promise<number> => {
    const deadline = performance.now() + RATE_SECONDS * 1000;
    const cap = 20_000;
    let done = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline && done < cap) {
          await one();
          done++;
        }
      }),
    );
    return done / ((performance.now() - t0) / 1000);
  };
  const floorRate = await rate(1, direct);
  for (const conc of [1, 8, 32]) {
    // Warm up enough containers for this concurrency first: a throughput figure, not a cold-start one.
    await Promise.all(Array.from({ length: conc }, () => invokeOnce('warm')));
    const r = await rate(conc, () => invokeOnce('warm'));
    rows.push({ metric: `invocations/s, concurrency ${conc}`, unit: '/s', ours: r, baseline: floorRate, baselineName: 'direct /run, c=1', better: 'higher', note: `${RATE_SECONDS} s` });
  }
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}
const coldRow = rows[0]!;
const p50 = rows[1]!;
report(
  'singlehost',
  'peerless single host: cold start, warm latency, throughput (2-core machine)',
  rows,
  `aims: cold start ≤ 1.3× docker run → ${(coldRow.ours / coldRow.baseline).toFixed(2)}×; warm p50 within 2 ms of direct /run → +${(p50.ours - p50.baseline).toFixed(2)} ms`,
);
