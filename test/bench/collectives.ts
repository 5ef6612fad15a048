// Collectives between function instances, three ways, in one run:
//   peerless  the SDK's allreduce (recursive doubling) and barrier (dissemination), direct over TCP
//   redis     the same collective relayed through a Redis server on the same network (gather at rank 0, push back)
//   floor     ceil(log2 N) × the raw TCP round trip between two warm containers (4 B each way), measured in this run
// Allreduce of 4 B and 1 MiB Float32Arrays, and barrier, at 2, 8 and 32 members (BENCH_MEMBERS to change).
// Run: node test/bench/collectives.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHost, deploy, namespace, ROOT, startDaemon } from '../helpers/daemon.ts';
import { relayImages, startRelay } from './relays.ts';
import { median, percentile, report, type Row } from './report.ts';

const HOST = `bench-coll-${process.pid}`;
const MEMBERS = (process.env.BENCH_MEMBERS ?? '2,8,32').split(',').map(Number);
const CASES = [
  { what: 'allreduce', size: 4, reps: 200 },
  { what: 'allreduce', size: 1 << 20, reps: 20 },
  { what: 'barrier', size: 0, reps: 200 },
] as const;

const img = await relayImages();
const d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '600000', '--memory-budget-mb', '12288'] });
const rows: Row[] = [];
const floorRows: Row[] = [];
try {
  const { call, ns } = await namespace(d, `${HOST}-ns`);
  const lim = { limits: { memory: 256, timeout: 300_000 } };
  const code = readFileSync(join(ROOT, 'test/bench/functions/collective.js'), 'utf8');
  await deploy(call, ns, 'coll', { kind: 'nodejs', code }, lim);
  await deploy(call, ns, 'collredis', { kind: 'blackbox', image: img.client, code }, lim);
  const redisIp = await startRelay(HOST, ns, 'redis', img.redis);
  let run = 0;

  const once = async (fn: string, n: number, c: (typeof CASES)[number], mode: string) => {
    const ids = Array.from({ length: n }, (_, i) => `c-${i}`);
    const r = await call('POST', `/api/v1/namespaces/${ns}/actions/${fn}?blocking=true&result=true&instances=c-{0..${n - 1}}`, {
      ids,
      reps: c.reps,
      what: c.what,
      size: c.size,
      mode,
      redis: redisIp,
      run: run++,
    });
    if (r.status !== 200) throw new Error(`${fn} ${n} ${c.what}: ${r.status} ${JSON.stringify(r.body).slice(0, 600)}`);
    const acts = r.body.activations as { rank: number; times: number[]; error?: string }[];
    const root = acts.find((a) => a.rank === 0);
    if (!root) throw new Error(`${fn} ${n} ${c.what}: ${JSON.stringify(acts).slice(0, 600)}`);
    return root.times;
  };
  // The raw TCP round trip between two warm containers, 4 bytes each way, timed the same way as the collectives.
  const rtt = median(await once('coll', 2, { what: 'allreduce', size: 4, reps: 200 }, 'raw'));
  process.stdout.write(`raw TCP round trip: ${rtt.toFixed(3)} ms (median of 200)\n`);
  for (const n of MEMBERS) {
    for (const c of CASES) {
      const ours = await once('coll', n, c, 'peerless');
      const relay = await once('collredis', n, c, 'redis');
      const label = `${c.what}${c.size ? ` ${c.size >= 1 << 20 ? `${c.size >> 20} MiB` : `${c.size} B`}` : ''}, ${n} members`;
      const floor = Math.ceil(Math.log2(n)) * rtt;
      const m = median(ours);
      process.stdout.write(`${label}: peerless ${m.toFixed(3)} ms (p99 ${percentile(ours, 99).toFixed(3)}), redis ${median(relay).toFixed(3)} ms, floor ${floor.toFixed(3)} ms\n`);
      rows.push({
        metric: label,
        unit: 'ms',
        ours: m,
        baseline: median(relay),
        baselineName: 'Redis relay',
        better: 'lower',
        note: `${(median(relay) / m).toFixed(1)}× faster; p99 ${percentile(ours, 99).toFixed(2)} vs ${percentile(relay, 99).toFixed(2)} ms`,
      });
      if (c.size <= 4) floorRows.push({ metric: label, unit: 'ms', ours: m, baseline: floor, baselineName: `⌈log2 N⌉ × raw RTT`, better: 'lower', note: `${(m / floor).toFixed(2)}× the floor` });
    }
  }
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}
report(
  'collectives-vs-redis',
  'Collectives vs the same collective through Redis (median ms per call, lower is better)',
  rows,
  "aim: ≥ 6.7× faster than Redis at 32 members (FMI's allreduce ratio on AWS Lambda).",
);
report('collectives-vs-floor', 'Small collectives vs the floor: ⌈log2 N⌉ raw TCP round trips (median ms)', floorRows, 'aim: ≤ 2× the floor.');
