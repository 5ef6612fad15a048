import { describe, expect, it } from 'vitest';
import { BUCKET_MS, Series } from '../../daemon/series.ts';

describe('the last hour of activations, for the dashboard', () => {
  it('counts per 10-second bucket, with cold starts, errors and percentiles, and forgets what is older than an hour', () => {
    const s = new Series(() => 0.5);
    const t0 = 1_000_000_000_000;
    for (let i = 1; i <= 100; i++) s.add(t0 + 5, { cold: i <= 10, ok: i % 25 !== 0, ms: i });
    s.add(t0 + BUCKET_MS + 1, { cold: false, ok: true, ms: 7 });
    const p = s.points(t0 + BUCKET_MS + 2);
    expect(p).toHaveLength(360);
    expect(p.at(-2)).toEqual({ t: t0, count: 100, cold: 10, errors: 4, p50: 51, p99: 100 });
    expect(p.at(-1)).toMatchObject({ count: 1, p50: 7, p99: 7 });
    // A bucket that changes after it was read is read anew.
    s.add(t0 + BUCKET_MS + 3, { cold: false, ok: true, ms: 900 });
    expect(s.points(t0 + BUCKET_MS + 4).at(-1)).toMatchObject({ count: 2, p50: 900, p99: 900 });
    expect(p[0]).toMatchObject({ count: 0, p50: null });
    // An hour on, the first buckets are gone.
    expect(s.points(t0 + 3600 * 1000 + BUCKET_MS).every((x) => x.count === 0 || x.t > t0)).toBe(true);
  });

  it('keeps a bounded sample of durations however busy the bucket', () => {
    const s = new Series();
    for (let i = 0; i < 10_000; i++) s.add(0, { cold: false, ok: true, ms: i % 100 });
    const last = s.points(0).at(-1)!;
    expect(last.count).toBe(10_000);
    expect(last.p50).toBeGreaterThan(30);
    expect(last.p50).toBeLessThan(70);
  });
});
