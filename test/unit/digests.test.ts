import { describe, expect, it } from 'vitest';
import { DIFFER_FOR_MS, DigestWatch, PULL_GAP_MS, REPULL_MS } from '../../gossip/digests.ts';

describe('registry digest watch', () => {
  it('pulls from a member only once its digest has differed for DIFFER_FOR_MS, and not while it matches', () => {
    const w = new DigestWatch();
    expect(w.observe('a', 1, 1, 0)).toBe(false);
    expect(w.observe('a', 2, 1, 100)).toBe(false);
    expect(w.observe('a', 2, 1, 100 + DIFFER_FOR_MS - 1)).toBe(false);
    expect(w.observe('a', 2, 1, 100 + DIFFER_FOR_MS)).toBe(true);
  });

  it('starts the wait over when the digests meet in between (a message that was only on its way)', () => {
    const w = new DigestWatch();
    w.observe('a', 2, 1, 0);
    w.observe('a', 2, 2, 1500);
    expect(w.observe('a', 3, 2, 1600)).toBe(false);
    expect(w.observe('a', 3, 2, 1600 + DIFFER_FOR_MS - 1)).toBe(false);
    expect(w.observe('a', 3, 2, 1600 + DIFFER_FOR_MS)).toBe(true);
  });

  it('pulls from one member at a time, and PULL_GAP_MS apart', () => {
    const w = new DigestWatch();
    w.observe('a', 2, 1, 0);
    w.observe('b', 2, 1, 0);
    expect(w.observe('a', 2, 1, DIFFER_FOR_MS)).toBe(true);
    expect(w.observe('b', 2, 1, DIFFER_FOR_MS)).toBe(false);
    w.done();
    expect(w.observe('b', 2, 1, DIFFER_FOR_MS + PULL_GAP_MS - 1)).toBe(false);
    expect(w.observe('b', 2, 1, DIFFER_FOR_MS + PULL_GAP_MS)).toBe(true);
  });

  it('asks a member again for the same registry only after REPULL_MS, but after the gap when its registry changed', () => {
    const w = new DigestWatch();
    w.observe('a', 2, 1, 0);
    expect(w.observe('a', 2, 1, DIFFER_FOR_MS)).toBe(true);
    w.done();
    // The pull mended nothing here (this daemon was ahead): the member's registry is the same one.
    expect(w.observe('a', 2, 1, DIFFER_FOR_MS + PULL_GAP_MS)).toBe(false);
    expect(w.observe('a', 2, 1, DIFFER_FOR_MS + REPULL_MS - 1)).toBe(false);
    expect(w.observe('a', 2, 1, DIFFER_FOR_MS + REPULL_MS)).toBe(true);
    w.done();
    const t = DIFFER_FOR_MS + REPULL_MS;
    expect(w.observe('a', 7, 1, t + PULL_GAP_MS - 1)).toBe(false);
    expect(w.observe('a', 7, 1, t + PULL_GAP_MS)).toBe(true);
  });

  it('forgets a member that left', () => {
    const w = new DigestWatch();
    w.observe('a', 2, 1, 0);
    expect(w.observe('a', 2, 1, DIFFER_FOR_MS)).toBe(true);
    w.done();
    w.forget('a');
    const t = DIFFER_FOR_MS + PULL_GAP_MS;
    expect(w.observe('a', 2, 1, t)).toBe(false);
    expect(w.observe('a', 2, 1, t + DIFFER_FOR_MS)).toBe(true);
  });
});
