// The last hour of this daemon's finished activations in 10-second buckets,
// for the dashboard's charts: how many, how many started cold, how many
// failed, and latency percentiles. Pure: time is passed in. A bucket keeps at
// most SAMPLE durations (a uniform reservoir), so an hour costs a bounded
// 360 × SAMPLE numbers however busy the daemon is.

export const BUCKET_MS = 10_000;
const BUCKETS = 360;
const SAMPLE = 256;

interface Bucket {
  at: number;
  count: number;
  cold: number;
  errors: number;
  durations: number[];
  /** p50 and p99 of durations, kept until the bucket changes: the dashboard asks twice a second per viewer */
  quantiles: { p50: number | null; p99: number | null } | null;
}

export interface Point {
  /** the bucket's start, ms since the epoch */
  t: number;
  count: number;
  cold: number;
  errors: number;
  p50: number | null;
  p99: number | null;
}

const quantile = (sorted: number[], q: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

function quantilesOf(b: Bucket): { p50: number | null; p99: number | null } {
  if (!b.quantiles) {
    const sorted = [...b.durations].sort((x, y) => x - y);
    b.quantiles = { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
  }
  return b.quantiles;
}

export class Series {
  private readonly buckets: Bucket[] = [];
  private readonly random: () => number;

  constructor(random: () => number = Math.random) {
    this.random = random;
  }

  add(now: number, o: { cold: boolean; ok: boolean; ms: number }): void {
    const at = now - (now % BUCKET_MS);
    let b = this.buckets.at(-1);
    if (!b || b.at !== at) {
      b = { at, count: 0, cold: 0, errors: 0, durations: [], quantiles: null };
      this.buckets.push(b);
      while (this.buckets.length > 0 && this.buckets[0]!.at <= at - BUCKETS * BUCKET_MS) this.buckets.shift();
    }
    b.count++;
    b.quantiles = null;
    if (o.cold) b.cold++;
    if (!o.ok) b.errors++;
    if (b.durations.length < SAMPLE) b.durations.push(o.ms);
    else {
      const i = Math.floor(this.random() * b.count);
      if (i < SAMPLE) b.durations[i] = o.ms;
    }
  }

  /** Every bucket of the last hour up to now, empty ones included, oldest first. */
  points(now: number): Point[] {
    const last = now - (now % BUCKET_MS);
    const byAt = new Map(this.buckets.map((b) => [b.at, b]));
    const out: Point[] = [];
    for (let at = last - (BUCKETS - 1) * BUCKET_MS; at <= last; at += BUCKET_MS) {
      const b = byAt.get(at);
      const q = b ? quantilesOf(b) : { p50: null, p99: null };
      out.push({ t: at, count: b?.count ?? 0, cold: b?.cold ?? 0, errors: b?.errors ?? 0, ...q });
    }
    return out;
  }
}
