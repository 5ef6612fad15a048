import { describe, expect, it } from 'vitest';
import { decode, Hlc, newer } from '../../gossip/hlc.ts';

describe('hybrid logical clock', () => {
  it('never goes backwards, even when the wall clock does', () => {
    let t = 1000;
    const c = new Hlc('a', () => t);
    const s1 = c.now();
    t = 500;
    const s2 = c.now();
    const s3 = c.now();
    expect(s2 > s1).toBe(true);
    expect(s3 > s2).toBe(true);
    expect(decode(s3)).toEqual({ wall: 1000, logical: 2, node: 'a' });
  });

  it('orders a write after one it has seen from a node with a faster clock', () => {
    const fast = new Hlc('fast', () => 10_000);
    const slow = new Hlc('slow', () => 1_000);
    const remote = fast.now();
    slow.receive(remote);
    const local = slow.now();
    expect(newer(local, remote)).toBe(true);
    expect(newer(remote, local)).toBe(false);
    expect(newer(remote, undefined)).toBe(true);
  });

  it('breaks ties by node, so every daemon picks the same winner', () => {
    const a = new Hlc('a', () => 5);
    const b = new Hlc('b', () => 5);
    const sa = a.now();
    const sb = b.now();
    expect([sa, sb].sort()).toEqual([sa, sb]);
    expect(newer(sb, sa)).toBe(true);
  });
});
