// How long to keep a function's idle containers, learned per function: the
// hybrid histogram policy of Shahrad et al., "Serverless in the Wild" (ATC
// 2020), as pure logic. Each function's idle times (from the end of one of its
// activations to the arrival of the next) go into a histogram of fixed bins.
// Once it holds enough of them and is not flat, its head and tail give two
// windows: a container is not worth keeping for the first (the pre-warm
// window: the 5th percentile, less a margin) and is kept until the second
// ends (the keep-alive window: up to the 99th percentile, plus a margin).
// Until then, or when idle times fall mostly beyond the histogram's range, the
// fixed window applies, as it did for every function before.

export interface KeepAliveOptions {
  /** the fixed window: for functions whose pattern is not known (yet) */
  fixedMs: number;
  /** the histogram's bin width and count: its range is binMs × bins */
  binMs: number;
  bins: number;
  /** idle times needed before the histogram is trusted */
  minSamples: number;
  /** a histogram whose bin counts vary less than this (coefficient of variation) is too flat to predict from */
  minCv: number;
  /** percentiles of the head and the tail, and the margin taken off the one and added to the other */
  headPct: number;
  tailPct: number;
  margin: number;
  /** idle times past the range, as a share of all, above which the histogram is not used */
  maxOutOfRange: number;
}

/** The paper's choices, with bins of a minute over four hours. */
export const PAPER: KeepAliveOptions = {
  fixedMs: 600_000,
  binMs: 60_000,
  bins: 240,
  minSamples: 10,
  minCv: 2,
  headPct: 5,
  tailPct: 99,
  margin: 0.1,
  maxOutOfRange: 0.5,
};

export interface Windows {
  /** after an activation ends, how long its container is not needed (0: needed at once) */
  prewarmMs: number;
  /** from then, how long it is kept */
  keepAliveMs: number;
  /** whether the windows came from the function's histogram (else: the fixed window) */
  learned: boolean;
}

export class IdleHistogram {
  readonly counts: number[];
  outOfRange = 0;
  total = 0;
  private readonly o: KeepAliveOptions;
  constructor(o: KeepAliveOptions) {
    this.o = o;
    this.counts = new Array<number>(o.bins).fill(0);
  }

  add(idleMs: number): void {
    const bin = Math.floor(Math.max(0, idleMs) / this.o.binMs);
    if (bin >= this.o.bins) this.outOfRange++;
    else this.counts[bin]!++;
    this.total++;
  }

  /** The smallest bin edge below which `pct` percent of the in-range idle times fall. */
  private percentileMs(pct: number): number {
    const inRange = this.total - this.outOfRange;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= (pct / 100) * inRange) return pct <= 50 ? i * this.o.binMs : (i + 1) * this.o.binMs;
    }
    return this.o.bins * this.o.binMs;
  }

  private cv(): number {
    const n = this.counts.length;
    const mean = this.counts.reduce((a, b) => a + b, 0) / n;
    if (mean === 0) return 0;
    const sd = Math.sqrt(this.counts.reduce((a, c) => a + (c - mean) ** 2, 0) / n);
    return sd / mean;
  }

  windows(): Windows {
    const o = this.o;
    const fixed = { prewarmMs: 0, keepAliveMs: o.fixedMs, learned: false };
    if (this.total < o.minSamples || this.outOfRange > o.maxOutOfRange * this.total || this.cv() < o.minCv) return fixed;
    const head = this.percentileMs(o.headPct) * (1 - o.margin);
    const tail = this.percentileMs(o.tailPct) * (1 + o.margin);
    return { prewarmMs: Math.floor(head), keepAliveMs: Math.ceil(tail - head), learned: true };
  }
}

/** Every function's histogram: told when activations end and start, asked for windows. */
export class KeepAlive {
  private readonly hist = new Map<string, IdleHistogram>();
  private readonly lastEnd = new Map<string, number>();
  readonly o: KeepAliveOptions;
  constructor(o: KeepAliveOptions) {
    this.o = o;
  }

  /**
   * A function was invoked: the time since its last activation ended is one idle time. The members of a group
   * arrive together: only the first of them ends an idle time.
   */
  arrived(fn: string, now: number): void {
    const end = this.lastEnd.get(fn);
    if (end === undefined) return;
    this.lastEnd.delete(fn);
    let h = this.hist.get(fn);
    if (!h) this.hist.set(fn, (h = new IdleHistogram(this.o)));
    h.add(now - end);
  }

  ended(fn: string, now: number): void {
    this.lastEnd.set(fn, now);
  }

  windows(fn: string): Windows {
    return this.hist.get(fn)?.windows() ?? { prewarmMs: 0, keepAliveMs: this.o.fixedMs, learned: false };
  }

  /** A function that is gone: nothing of it is kept. */
  forget(fnPrefix: string): void {
    for (const k of [...this.hist.keys()]) if (k.startsWith(fnPrefix)) this.hist.delete(k);
    for (const k of [...this.lastEnd.keys()]) if (k.startsWith(fnPrefix)) this.lastEnd.delete(k);
  }
}
