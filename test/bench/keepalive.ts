// Keep-alive learned per function against the fixed window, on a replayed
// trace: a day of invocations of 30 functions generated with a seeded random
// source (periodic with jitter, bursty, random arrivals, and rare ones), run
// through sandbox/keepAlive.ts's policy by a simulated clock (a day of real
// containers would take a day). Per function one container: an invocation is
// cold when its function's container is not loaded at that moment; idle
// memory-seconds are the time containers sit loaded and unused. Three
// policies: the fixed 10-minute window (the pool's old rule), the paper's
// hybrid histogram (unload after a run, pre-warm at the head of the idle
// times, keep to the tail), and what the daemon's pool does with it (the same,
// but it keeps a container through a pre-warm window shorter than a minute,
// and what it pre-warms is a container of the function's runtime: the first
// call after it pays the function's /init, tens of milliseconds, as a warm
// call does not; the simulation counts that call warm).
// Run: node test/bench/keepalive.ts
import { KeepAlive, PAPER } from '../../sandbox/keepAlive.ts';
import { report, type Row } from './report.ts';

const DAY = 24 * 3600_000;
const MIN = 60_000;
const RUN_MS = 200;
const MEMORY_GB = 0.256;

/** mulberry32: the same trace every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'periodic' | 'bursty' | 'random' | 'rare';
interface Call {
  fn: string;
  kind: Kind;
  t: number;
}

function trace(seed: number): Call[] {
  const r = rng(seed);
  const exp = (mean: number) => -Math.log(1 - r()) * mean;
  const calls: Call[] = [];
  const periods = [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180];
  periods.forEach((p, i) => {
    for (let t = r() * p * MIN; t < DAY; t += p * MIN * (1 + (r() - 0.5) * 0.04)) calls.push({ fn: `periodic-${i}`, kind: 'periodic', t });
  });
  for (let i = 0; i < 6; i++) {
    for (let t = exp(90 * MIN); t < DAY; t += 30 * MIN + exp(90 * MIN)) {
      const n = 5 + Math.floor(r() * 16);
      for (let k = 0, u = t; k < n && u < DAY; k++, u += 1000 + r() * 9000) calls.push({ fn: `bursty-${i}`, kind: 'bursty', t: u });
    }
  }
  for (let i = 0; i < 6; i++) {
    const mean = (2 + i * 5) * MIN;
    for (let t = exp(mean); t < DAY; t += exp(mean)) calls.push({ fn: `random-${i}`, kind: 'random', t });
  }
  for (let i = 0; i < 6; i++) for (let t = exp(4 * 60 * MIN); t < DAY; t += exp(4 * 60 * MIN)) calls.push({ fn: `rare-${i}`, kind: 'rare', t });
  return calls.sort((a, b) => a.t - b.t);
}

type Policy = 'fixed' | 'hybrid' | 'pool';
const FIXED_WINDOWS_MIN = [10, 20, 30, 45, 60, 90, 120, 180, 240, 360];
interface Result {
  cold: number;
  calls: number;
  idleGbS: number;
  byKind: Record<Kind, { cold: number; calls: number }>;
}

function simulate(calls: Call[], policy: Policy, fixedMs = PAPER.fixedMs): Result {
  const k = new KeepAlive(PAPER);
  // per function: the container is loaded over [from, until]; busy until lastEnd
  const loaded = new Map<string, { from: number; until: number; lastEnd: number }>();
  const res: Result = { cold: 0, calls: 0, idleGbS: 0, byKind: { periodic: { cold: 0, calls: 0 }, bursty: { cold: 0, calls: 0 }, random: { cold: 0, calls: 0 }, rare: { cold: 0, calls: 0 } } };
  const idleBetween = (c: { from: number; until: number }, a: number, b: number) => Math.max(0, Math.min(c.until, b) - Math.max(c.from, a));
  for (const c of calls) {
    const st = loaded.get(c.fn);
    const warm = st !== undefined && (c.t <= st.lastEnd || (st.from <= c.t && c.t <= st.until));
    if (st && c.t > st.lastEnd) res.idleGbS += (idleBetween(st, st.lastEnd, c.t) / 1000) * MEMORY_GB;
    res.calls++;
    res.byKind[c.kind].calls++;
    if (!warm) {
      res.cold++;
      res.byKind[c.kind].cold++;
    }
    k.arrived(c.fn, c.t);
    const end = Math.max(c.t + RUN_MS, st && c.t <= st.lastEnd ? st.lastEnd : 0);
    k.ended(c.fn, end);
    const w = policy === 'fixed' ? { prewarmMs: 0, keepAliveMs: fixedMs } : k.windows(c.fn);
    // The pool removes and pre-warms only for a pre-warm window of a minute or more; it keeps through shorter ones.
    const unload = policy === 'hybrid' || (policy === 'pool' && w.prewarmMs >= MIN);
    const from = unload ? end + w.prewarmMs : end;
    const until = unload ? from + w.keepAliveMs : end + w.prewarmMs + w.keepAliveMs;
    loaded.set(c.fn, { from, until, lastEnd: end });
  }
  for (const st of loaded.values()) res.idleGbS += (idleBetween(st, st.lastEnd, DAY) / 1000) * MEMORY_GB;
  return res;
}

const calls = trace(20261130);
const fixed = simulate(calls, 'fixed');
const rows: Row[] = [];
for (const [policy, name] of [
  ['hybrid', 'hybrid histogram (paper)'],
  ['pool', 'learned, as the pool keeps it'],
] as const) {
  const r = simulate(calls, policy);
  rows.push(
    {
      metric: `${name}: cold starts`,
      unit: '%',
      ours: (100 * r.cold) / r.calls,
      baseline: (100 * fixed.cold) / fixed.calls,
      baselineName: 'fixed 10 min',
      better: 'lower',
      note: `${r.cold} of ${r.calls} invocations`,
    },
    { metric: `${name}: idle memory`, unit: 'GB·s', ours: r.idleGbS, baseline: fixed.idleGbS, baselineName: 'fixed 10 min', better: 'lower', note: `${MEMORY_GB * 1000} MB containers` },
  );
  // The paper's comparison: what a fixed window long enough for as few cold starts keeps idle.
  const match = FIXED_WINDOWS_MIN.map((m) => ({ m, r: simulate(calls, 'fixed', m * MIN) })).find((x) => x.r.cold <= r.cold);
  if (match)
    rows.push({
      metric: `${name}: idle memory vs equal cold starts`,
      unit: 'GB·s',
      ours: r.idleGbS,
      baseline: match.r.idleGbS,
      baselineName: `fixed ${match.m} min`,
      better: 'lower',
      note: `fixed ${match.m} min: ${((100 * match.r.cold) / match.r.calls).toFixed(2)} % cold`,
    });
  else
    rows.push({
      metric: `${name}: idle memory vs equal cold starts`,
      unit: 'GB·s',
      ours: r.idleGbS,
      baseline: simulate(calls, 'fixed', 360 * MIN).idleGbS,
      baselineName: 'fixed 6 h',
      better: 'lower',
      note: 'no fixed window up to 6 h has as few cold starts',
    });
  for (const kind of ['periodic', 'bursty', 'random', 'rare'] as const) {
    const a = r.byKind[kind];
    const b = fixed.byKind[kind];
    rows.push({
      metric: `${name}: cold starts, ${kind}`,
      unit: '%',
      ours: (100 * a.cold) / a.calls,
      baseline: (100 * b.cold) / b.calls,
      baselineName: 'fixed 10 min',
      better: 'lower',
      note: `${a.calls} invocations`,
    });
  }
}
report('keepalive', `Keep-alive learned per function vs the fixed 10-minute window: a generated day of ${calls.length} invocations of 30 functions, simulated`, rows);
