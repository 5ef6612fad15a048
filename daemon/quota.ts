// Per-namespace admission: a token bucket for invocations per minute, and a
// ceiling on activations running at once. Pure: time is passed in. A refusal
// says when to retry, which the API sends as 429 with Retry-After.

export type Admission = { ok: true } | { ok: false; reason: string; retryAfterS: number };

export class Quota {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly running = new Map<string, number>();
  readonly perMinute: number;
  readonly concurrent: number;

  /** 0 means no limit. */
  constructor(perMinute: number, concurrent: number) {
    this.perMinute = perMinute;
    this.concurrent = concurrent;
  }

  /** Admits `n` activations of the namespace now, or says why not and when to retry. */
  admit(ns: string, n: number, now: number): Admission {
    if (this.concurrent > 0 && (this.running.get(ns) ?? 0) + n > this.concurrent) {
      return { ok: false, reason: `namespace ${ns} may run at most ${this.concurrent} activations at once`, retryAfterS: 1 };
    }
    if (this.perMinute > 0) {
      const b = this.buckets.get(ns) ?? { tokens: this.perMinute, at: now };
      b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) / 60_000) * this.perMinute);
      b.at = now;
      this.buckets.set(ns, b);
      if (b.tokens < n) {
        const wait = ((n - b.tokens) / this.perMinute) * 60;
        return { ok: false, reason: `namespace ${ns} may start at most ${this.perMinute} activations a minute`, retryAfterS: Math.max(1, Math.ceil(wait)) };
      }
      b.tokens -= n;
    }
    this.running.set(ns, (this.running.get(ns) ?? 0) + n);
    return { ok: true };
  }

  /** An admitted activation ended. */
  done(ns: string): void {
    const r = (this.running.get(ns) ?? 1) - 1;
    if (r <= 0) this.running.delete(ns);
    else this.running.set(ns, r);
  }
}
