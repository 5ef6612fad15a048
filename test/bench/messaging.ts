// Message passing between two function instances, three ways, in one run:
//   direct    peerless SDK: framed messages over TCP on the namespace network (examples/pingpong)
//   redis     relayed through a Redis server on the same network (ioredis, LPUSH / BRPOP, one command at a time)
//   raw TCP   plain sockets between the same two containers: the floor
// Each cell is N messages of S bytes from ping to pong plus one reply, timed inside ping.
// Cells above 1 GiB in total are skipped (bounded run). Run: node test/bench/messaging.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHost, deploy, namespace, ROOT, startDaemon, waitFor } from '../helpers/daemon.ts';
import { relayImages, startRelay } from './relays.ts';
import { median, report, type Row } from './report.ts';

const HOST = `bench-msg-${process.pid}`;
const SIZES = [64, 1024, 64 * 1024, 1 << 20, 16 << 20, 64 << 20];
const COUNTS = [1, 100, 10_000];
const MAX_TOTAL = 1 << 30;
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const human = (b: number) => (b >= 1 << 20 ? `${b >> 20} MiB` : b >= 1024 ? `${b >> 10} KiB` : `${b} B`);

const img = await relayImages();
const d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '600000'] });
const WAYS = ['direct', 'tcp', 'raw', 'redis'] as const;
type Way = (typeof WAYS)[number];
const results = new Map<string, Record<Way, number>>();
try {
  const { call, ns } = await namespace(d, `${HOST}-ns`);
  const lim = { limits: { memory: 1024, timeout: 300_000 } };
  const pingpong = readFileSync(join(ROOT, 'examples/pingpong/pingpong.js'), 'utf8');
  // ping and pong run on one daemon: the SDK connects them over the co-located fast path (Unix sockets);
  // `tcp` is the same code told to use TCP over the namespace network, as instances on two hosts do.
  await deploy(call, ns, 'direct', { kind: 'nodejs', code: pingpong }, lim);
  await deploy(call, ns, 'tcp', { kind: 'nodejs', code: `process.env.PEERLESS_TCP_ONLY = '1';\n${pingpong}` }, lim);
  await deploy(call, ns, 'raw', { kind: 'nodejs', code: readFileSync(join(ROOT, 'test/bench/functions/rawtcp.js'), 'utf8') }, lim);
  await deploy(call, ns, 'redis', { kind: 'blackbox', image: img.client, code: readFileSync(join(ROOT, 'test/bench/functions/redisrelay.js'), 'utf8') }, lim);
  const redisIp = await startRelay(HOST, ns, 'redis', img.redis);

  let run = 0;
  const once = async (fn: string, n: number, size: number): Promise<number> => {
    const r = await call('POST', `/api/v1/namespaces/${ns}/actions/${fn}?blocking=true&result=true&instances=ping,pong`, { n, size, redis: redisIp, run: run++ });
    let acts = r.body.activations as { role: string; ms: number }[];
    if (r.status === 202) {
      // Longer than a blocking call waits (the Redis relay of 625 MiB, say): read the records once they end.
      const ids = (r.body.activations as { activationId: string }[]).map((a) => a.activationId);
      acts = await waitFor(
        async () => {
          const recs = await Promise.all(ids.map(async (id) => (await call('GET', `/api/v1/namespaces/${ns}/activations/${id}`)).body));
          if (!recs.every((x) => x.end)) return null;
          if (!recs.every((x) => x.response.status === 'success')) throw new Error(`${fn} n=${n} size=${size}: ${JSON.stringify(recs.map((x) => x.response)).slice(0, 500)}`);
          return recs.map((x) => x.response.result);
        },
        600_000,
        `${fn} n=${n} size=${size}`,
      );
    } else if (r.status !== 200) throw new Error(`${fn} n=${n} size=${size}: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
    return acts.find((a) => a.role === 'ping')!.ms;
  };
  for (const fn of WAYS) await once(fn, 1, 64); // warm containers
  for (const size of SIZES) {
    for (const n of COUNTS) {
      if (n * size > MAX_TOTAL) continue;
      const reps = n * size > 64 << 20 ? 1 : REPEAT;
      const cell = Object.fromEntries(WAYS.map((w) => [w, [] as number[]])) as Record<Way, number[]>;
      for (let i = 0; i < reps; i++) for (const fn of WAYS) cell[fn].push(await once(fn, n, size));
      const m = Object.fromEntries(WAYS.map((w) => [w, median(cell[w])])) as Record<Way, number>;
      results.set(`${n} × ${human(size)}`, m);
      process.stdout.write(`${n} × ${human(size)}: ${WAYS.map((w) => `${w} ${m[w].toFixed(2)} ms`).join(', ')}\n`);
    }
  }
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}

const rows = (ours: Way, base: Way, baselineName: string, note: (m: Record<Way, number>) => string): Row[] =>
  [...results].map(([k, m]) => ({ metric: k, unit: 'ms', ours: m[ours], baseline: m[base], baselineName, better: 'lower', note: note(m) }));
report(
  'messaging-vs-redis',
  'Direct messaging (co-located fast path) vs a Redis relay: N messages of S bytes, ping → pong (median ms, lower is better)',
  rows('direct', 'redis', 'Redis relay', (m) => `${(m.redis / m.direct).toFixed(1)}× faster; over TCP ${(m.redis / m.tcp).toFixed(1)}×`),
);
report(
  'messaging-vs-rawtcp',
  'Direct messaging over TCP (as between hosts) vs raw TCP between the same containers (median ms)',
  rows('tcp', 'raw', 'raw TCP', (m) => `throughput ${(m.raw / m.tcp).toFixed(2)} of raw`),
  'aims: from 64 KiB up, throughput ≥ 0.9 of raw TCP; one small message ≤ 1.15× raw TCP (ratio raw/tcp in the note).',
);
report(
  'messaging-colocated',
  'The co-located fast path (Unix sockets) vs TCP over the namespace network, same two containers (median ms)',
  rows('direct', 'tcp', 'SDK over TCP', (m) => `${(m.tcp / m.direct).toFixed(2)}× faster; ${(m.raw / m.direct).toFixed(2)} of raw TCP`),
);
