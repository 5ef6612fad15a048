import { describe, expect, it } from 'vitest';
import { Quota } from '../../daemon/quota.ts';

describe('namespace quota', () => {
  it("lets a minute's worth of invocations through, then refuses with a retry time, and refills", () => {
    const q = new Quota(60, 0);
    for (let i = 0; i < 60; i++) expect(q.admit('a', 1, 0).ok).toBe(true);
    const no = q.admit('a', 1, 0);
    expect(no).toMatchObject({ ok: false, retryAfterS: 1 });
    expect(q.admit('b', 1, 0).ok).toBe(true); // namespaces are separate
    expect(q.admit('a', 1, 1000).ok).toBe(true); // one token back after a second
    expect(q.admit('a', 30, 2000)).toMatchObject({ ok: false, retryAfterS: 29 });
  });

  it('caps activations running at once, and frees a slot when one ends', () => {
    const q = new Quota(0, 3);
    expect(q.admit('a', 3, 0).ok).toBe(true);
    expect(q.admit('a', 1, 0)).toMatchObject({ ok: false });
    q.done('a');
    expect(q.admit('a', 1, 0).ok).toBe(true);
    expect(q.admit('a', 5, 0).ok).toBe(false); // a group larger than the room is refused whole
  });

  it('has no limits when configured with zeros', () => {
    const q = new Quota(0, 0);
    for (let i = 0; i < 10_000; i++) expect(q.admit('a', 1, 0).ok).toBe(true);
  });
});
