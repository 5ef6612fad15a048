// A shuffle (all-to-all) between function instances, three ways, in one run: every worker holds TOTAL / N
// bytes in N parts and part j must reach worker j.
//   peerless  the SDK's alltoall, direct over TCP on the namespace network
//   redis     each part pushed to a list of its receiver's on a Redis server on the same network, popped there
//   nats      each part published (in 512 KiB chunks) to its receiver's subject on a NATS server, same network
// Time: from the first worker's start (after a barrier) to the last worker holding all it was due.
// Run: node test/bench/shuffle.ts   (BENCH_SHUFFLE_MB, default 256; BENCH_WORKERS, default 8)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHost, deploy, docker, namespace, ROOT, startDaemon } from '../helpers/daemon.ts';
import { relayImages, startRelay } from './relays.ts';
import { median, report, type Row } from './report.ts';

const HOST = `bench-shuf-${process.pid}`;
const TOTAL = Number(process.env.BENCH_SHUFFLE_MB ?? 256) << 20;
const N = Number(process.env.BENCH_WORKERS ?? 8);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

const img = await relayImages();
const d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '600000', '--memory-budget-mb', '12288'] });
const times: Record<string, number[]> = { peerless: [], redis: [], nats: [] };
try {
  const { call, ns } = await namespace(d, `${HOST}-ns`);
  // Each worker holds its parts and what it receives, and ioredis/nats buffer a copy: 4 × its share, and room.
  const lim = { limits: { memory: Math.max(512, Math.ceil((4 * TOTAL) / N / (1 << 20)) + 256), timeout: 300_000 } };
  const code = readFileSync(join(ROOT, 'test/bench/functions/shuffle.js'), 'utf8');
  await deploy(call, ns, 'shuf', { kind: 'nodejs', code }, lim);
  await deploy(call, ns, 'shufrelay', { kind: 'blackbox', image: img.client, code }, lim);
  const servers: Record<string, string> = {};
  for (const [name, image] of [
    ['redis', img.redis],
    ['nats', img.nats],
  ] as const)
    servers[name] = await startRelay(HOST, ns, name, image);
  const ids = Array.from({ length: N }, (_, i) => `s-${i}`);
  let run = 0;
  const once = async (mode: string) => {
    const fn = mode === 'peerless' ? 'shuf' : 'shufrelay';
    const r = await call('POST', `/api/v1/namespaces/${ns}/actions/${fn}?blocking=true&result=true&instances=s-{0..${N - 1}}`, { ids, mode, total: TOTAL, host: servers[mode], run: run++ });
    if (r.status !== 200) {
      const logs = mode === 'peerless' ? '' : (await docker.getContainer(`${HOST}-${mode}`).logs({ stdout: true, stderr: true, tail: 20 })).toString('utf8');
      throw new Error(`${mode}: ${r.status} ${JSON.stringify(r.body).slice(0, 3000)}\n${mode} server log:\n${logs}`);
    }
    const acts = r.body.activations as { start: number; end: number }[];
    return Math.max(...acts.map((a) => a.end)) - Math.min(...acts.map((a) => a.start));
  };
  const modes = (process.env.BENCH_MODES ?? 'peerless,redis,nats').split(',');
  for (const mode of modes) await once(mode); // warm containers and connections
  for (let i = 0; i < REPEAT; i++) {
    for (const mode of modes) {
      const ms = await once(mode);
      times[mode]!.push(ms);
      process.stdout.write(`${mode}: ${ms.toFixed(0)} ms\n`);
    }
  }
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}
const ours = median(times.peerless!);
const label = `${TOTAL >> 20} MiB over ${N} workers`;
const rows: Row[] = (['redis', 'nats'] as const).map((b) => ({
  metric: `${label} vs ${b}`,
  unit: 'ms',
  ours,
  baseline: median(times[b]!),
  baselineName: b === 'redis' ? 'Redis relay' : 'NATS relay',
  better: 'lower',
  note: `${(median(times[b]!) / ours).toFixed(1)}× faster; ${(TOTAL / (1 << 20) / (ours / 1000)).toFixed(0)} MiB/s moved`,
}));
report('shuffle', `Shuffle (alltoall): ${label}, median of ${REPEAT} (ms, lower is better)`, rows, 'aim: ≥ 4× faster than either relay.');
