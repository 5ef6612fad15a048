// Per-namespace admission: a token bucket for invocations per minute, and a
// ceiling on activations running at once. Pure: time is passed in. A refusal
// says when to retry, which the API sends as 429 with Retry-After.

export type Admission = { ok: true } | { ok: false; reason: string; retryAfterS: number };

/** 0 means no limit. */
export interface Limits {
  perMinute: number;
  concurrent: number;
}

export class Quota {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly running = new Map<string, number>();
  /** what every namespace gets unless it has limits of its own */
  readonly defaults: Limits;

  constructor(perMinute: number, concurrent: number) {
    this.defaults = { perMinute, concurrent };
  }

  /** Admits `n` activations of the namespace now, or says why not and when to retry. */
  admit(ns: string, n: number, now: number, limits: Limits = this.defaults): Admission {
    const { perMinute, concurrent } = limits;
    if (concurrent > 0 && (this.running.get(ns) ?? 0) + n > concurrent) {
      return { ok: false, reason: `namespace ${ns} may run at most ${concurrent} activations at once`, retryAfterS: 1 };
    }
    if (perMinute > 0) {
      const b = this.buckets.get(ns) ?? { tokens: perMinute, at: now };
      b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) / 60_000) * perMinute);
      b.at = now;
      this.buckets.set(ns, b);
      if (b.tokens < n) {
        const wait = ((n - b.tokens) / perMinute) * 60;
        return { ok: false, reason: `namespace ${ns} may start at most ${perMinute} activations a minute`, retryAfterS: Math.max(1, Math.ceil(wait)) };
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
