// The cluster protocol at sizes no machine could start as processes: N simulated daemons, each the real
// driver and core (gossip/cluster.ts, gossip/membership.ts) over the in-memory transport
// (gossip/memory.ts) on one virtual clock, with the daemons' own timing (250 ms beats, 1.5 s failure
// timeout). Each daemon holds connections to a few random others (as a daemon would to its configured
// peers), 1% of them run instances. Measured, for each size:
//  1. joining: from all daemons starting at once until every daemon sees every other as a member, and
//     until every daemon holds every instance (virtual time, and rounds of 250 ms);
//  2. traffic: bytes each daemon sends a second, once the cluster is steady, by kind;
//  3. crashes: 1% of daemons crash; time until every live daemon has dropped them, when their hosts
//     refuse their ports (a process died) and when the hosts vanish (only the failure timeout tells);
//  4. false drops: live members dropped in 10 s of 5% message loss with one daemon in 100 hearing only 1
//     message in 10, when a timeout report makes a member suspected (today) and when it dropped it (before).
// The baseline of each row is the same measurement at the smallest size, or the earlier protocol.
// Run: node test/bench/gossip-sim.ts   (SIM_SIZES=100,1000 by default; SIM_SIZES=10000 for the large run)
import { report, type Row } from './report.ts';
import { DAEMON_TIMING, Sim } from '../helpers/sim.ts';

const SIZES = (process.env.SIM_SIZES ?? '100,1000').split(',').map(Number);
const SEED = Number(process.env.SIM_SEED ?? 7);
const BEAT = DAEMON_TIMING.heartbeatMs;
/** connections each daemon opens; it holds about twice this, counting those opened to it */
const DIAL = 8;

interface Result {
  n: number;
  membersMs: number | null;
  mapsMs: number | null;
  bytesPerDaemonSec: number;
  beatBytesPerDaemonSec: number;
  refusedDropMs: number | null;
  vanishedDropMs: number | null;
  falseDrops: number;
  falseDropsOld: number;
  wallS: number;
  heapMb: number;
}

async function build(n: number, seed: number, oldReports = false): Promise<Sim> {
  const sim = new Sim(seed, DAEMON_TIMING, { olderReports: oldReports });
  for (let i = 0; i < n; i++) await sim.start(`d${i}`);
  if (n > 2 * DIAL) sim.net.connectSparsely(DIAL);
  const hosts = [...sim.daemons.values()].filter((_, i) => i % 100 === 0);
  for (const d of hosts) for (let k = 0; k < 5; k++) sim.mutate(d);
  return sim;
}

const total = (sim: Sim) => Object.values(sim.net.traffic).reduce((a, t) => a + t.bytes, 0);

async function measure(n: number): Promise<Result> {
  const t0 = performance.now();
  const phase = (what: string) => process.stderr.write(`[sim ${n}] ${what} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  const sim = await build(n, SEED);
  const step = n >= 1000 ? 250 : 50;
  phase('joining');
  const membersMs = await sim.until(() => sim.membersAgree(), 120_000, step);
  const mapsMs = membersMs === null ? null : (await sim.until(() => sim.mapsAgree().agree, 60_000, step)) === null ? null : sim.now;
  phase('steady traffic');
  // Steady traffic over 5 s.
  await sim.run(sim.now + 2000);
  const b0 = total(sim);
  const beats0 = sim.net.traffic.beats.bytes;
  await sim.run(sim.now + 5000);
  const bytesPerDaemonSec = (total(sim) - b0) / n / 5;
  const beatBytesPerDaemonSec = (sim.net.traffic.beats.bytes - beats0) / n / 5;
  // Crashes with the host up: peers find the port refused.
  const crashAndWait = async (vanish: boolean): Promise<number | null> => {
    const live = sim.live();
    const k = Math.max(1, Math.floor(n / 100));
    const victims = live.filter((_, i) => i % Math.floor(live.length / k) === 1).slice(0, k);
    if (vanish) sim.net.partition([victims.map((d) => d.id)]);
    for (const d of victims) sim.crash(d);
    const took = await sim.until(() => sim.membersAgree(), 30_000, 50);
    sim.net.heal();
    return took;
  };
  phase('crashes');
  const refusedDropMs = await crashAndWait(false);
  const vanishedDropMs = await crashAndWait(true);
  const heapMb = process.memoryUsage().heapUsed / 1e6;
  // False drops, today's reports and the earlier ones, on fresh clusters that have joined.
  const falseDropsWith = async (old: boolean): Promise<number> => {
    const s = await build(n, SEED + 1, old);
    await s.until(() => s.membersAgree(), 120_000, step);
    const deaf = Object.fromEntries([...s.daemons.keys()].filter((_, i) => i % 100 === 1).map((id) => [id, 0.9]));
    s.faults = { loss: 0.05, dup: 0, maxDelayMs: 20, deaf };
    const before = s.falseDrops;
    await s.run(s.now + 10_000);
    return s.falseDrops - before;
  };
  phase('false drops');
  const falseDrops = await falseDropsWith(false);
  const falseDropsOld = await falseDropsWith(true);
  return { n, membersMs, mapsMs, bytesPerDaemonSec, beatBytesPerDaemonSec, refusedDropMs, vanishedDropMs, falseDrops, falseDropsOld, wallS: (performance.now() - t0) / 1000, heapMb };
}

const results: Result[] = [];
for (const n of SIZES) {
  const r = await measure(n);
  results.push(r);
  process.stdout.write(`${n} daemons: ${JSON.stringify(r)}\n`);
}

const base = results[0]!;
const ms = (x: number | null) => x ?? NaN;
const rows: Row[] = results.slice(base === results.at(-1) ? 0 : 1).flatMap((r): Row[] => [
  {
    metric: `${r.n} daemons: every daemon sees every member`,
    unit: 'ms',
    ours: ms(r.membersMs),
    baseline: ms(base.membersMs),
    baselineName: `${base.n} daemons`,
    better: 'lower',
    note: `${(ms(r.membersMs) / BEAT).toFixed(0)} rounds`,
  },
  { metric: `${r.n} daemons: every daemon holds every instance`, unit: 'ms', ours: ms(r.mapsMs), baseline: ms(base.mapsMs), baselineName: `${base.n} daemons`, better: 'lower' },
  {
    metric: `${r.n} daemons: bytes sent per daemon, steady`,
    unit: 'KB/s',
    ours: r.bytesPerDaemonSec / 1000,
    baseline: base.bytesPerDaemonSec / 1000,
    baselineName: `${base.n} daemons`,
    better: 'lower',
    note: `beat tables ${(r.beatBytesPerDaemonSec / 1000).toFixed(1)} KB/s`,
  },
  { metric: `${r.n} daemons: 1% crash, host refuses: all drop them`, unit: 'ms', ours: ms(r.refusedDropMs), baseline: ms(base.refusedDropMs), baselineName: `${base.n} daemons`, better: 'lower' },
  {
    metric: `${r.n} daemons: 1% vanish: all drop them`,
    unit: 'ms',
    ours: ms(r.vanishedDropMs),
    baseline: ms(base.vanishedDropMs),
    baselineName: `${base.n} daemons`,
    better: 'lower',
    note: 'failure timeout 1,500 ms',
  },
  {
    metric: `${r.n} daemons: live members falsely dropped in 10 s`,
    unit: 'drops',
    ours: r.falseDrops,
    baseline: r.falseDropsOld,
    baselineName: 'a report drops at once',
    better: 'lower',
    note: '5% loss, 1 in 100 daemons hears 1 in 10',
  },
]);
report(
  'gossip-sim',
  'The cluster protocol simulated (real driver and core, in-memory transport, virtual time)',
  rows,
  results.map((r) => `- ${r.n} daemons: simulated in ${r.wallS.toFixed(0)} s of wall time, heap ${r.heapMb.toFixed(0)} MB`).join('\n'),
);
