import { describe, expect, it } from 'vitest';
import { IdleHistogram, KeepAlive, PAPER } from '../../sandbox/keepAlive.ts';

const MIN = 60_000;

describe('keep-alive learned per function (hybrid histogram)', () => {
  it('keeps the fixed window until the histogram holds enough idle times', () => {
    const h = new IdleHistogram(PAPER);
    for (let i = 0; i < PAPER.minSamples - 1; i++) h.add(5 * MIN);
    expect(h.windows()).toEqual({ prewarmMs: 0, keepAliveMs: PAPER.fixedMs, learned: false });
  });

  it('for a periodic function, unloads after each run and pre-warms just before the next', () => {
    const h = new IdleHistogram(PAPER);
    for (let i = 0; i < 40; i++) h.add(30 * MIN + (i % 3) * 1000);
    const w = h.windows();
    expect(w.learned).toBe(true);
    // head: the 30-minute bin's start less 10%; tail: its end plus 10%
    expect(w.prewarmMs).toBe(27 * MIN);
    expect(w.prewarmMs + w.keepAliveMs).toBe(Math.ceil(31 * MIN * 1.1));
  });

  it('keeps a function called in quick succession for about a minute, not ten', () => {
    const h = new IdleHistogram(PAPER);
    for (let i = 0; i < 50; i++) h.add(2000);
    expect(h.windows()).toEqual({ prewarmMs: 0, keepAliveMs: Math.ceil(MIN * 1.1), learned: true });
  });

  it('falls back to the fixed window for a flat histogram or idle times mostly out of range', () => {
    const flat = new IdleHistogram(PAPER);
    for (let i = 0; i < 240; i++) flat.add(i * MIN + 1);
    expect(flat.windows().learned).toBe(false);
    const rare = new IdleHistogram(PAPER);
    for (let i = 0; i < 20; i++) rare.add(i < 15 ? 6 * 60 * MIN : MIN);
    expect(rare.windows().learned).toBe(false);
  });

  it('counts one idle time per gap: the members of a group arriving together are one arrival', () => {
    const k = new KeepAlive({ ...PAPER, minSamples: 3 });
    let t = 0;
    for (let gap = 0; gap < 3; gap++) {
      k.ended('ns/f@', t);
      t += 5 * MIN;
      for (let m = 0; m < 100; m++) k.arrived('ns/f@', t);
    }
    const w = k.windows('ns/f@');
    expect(w.learned).toBe(true);
    expect(w.prewarmMs).toBe(Math.floor(5 * MIN * 0.9));
    k.forget('ns/f@');
    expect(k.windows('ns/f@').learned).toBe(false);
  });
});
