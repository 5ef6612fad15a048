import { describe, expect, it } from 'vitest';
import { arbiters, Claimant, ClaimTable, type ClaimRequest, type ClaimVerdict } from '../../gossip/claims.ts';

// Instance-ID arbitration as pure logic: tables and claimants wired through an
// in-memory "network" that can lose a member.

describe('arbiters', () => {
  it('orders members the same whatever order they are listed in, and spreads IDs over them', () => {
    const members = ['a', 'b', 'c'];
    const first = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const order = arbiters('ns', `id-${i}`, members);
      expect(arbiters('ns', `id-${i}`, [...members].reverse())).toEqual(order);
      expect([...order].sort()).toEqual(members);
      first.set(order[0]!, (first.get(order[0]!) ?? 0) + 1);
    }
    for (const m of members) expect(first.get(m)).toBeGreaterThan(800);
  });
});

describe('claim table', () => {
  it('grants an ID to one holder at a time until the hold expires or the holder releases it', () => {
    const t = new ClaimTable(1000, () => false);
    expect(t.grant('A', 'ns', ['x'], 0)).toEqual({ ok: true });
    expect(t.grant('B', 'ns', ['x'], 10)).toEqual({ ok: false, taken: 'x' });
    expect(t.grant('A', 'ns', ['x'], 20)).toEqual({ ok: true });
    expect(t.grant('B', 'other', ['x'], 30)).toEqual({ ok: true });
    t.release('B', 'ns', ['x']);
    expect(t.grant('B', 'ns', ['x'], 40)).toEqual({ ok: false, taken: 'x' });
    t.release('A', 'ns', ['x']);
    expect(t.grant('B', 'ns', ['x'], 50)).toEqual({ ok: true });
    expect(t.grant('A', 'ns', ['x'], 50 + 999)).toEqual({ ok: false, taken: 'x' });
    expect(t.grant('A', 'ns', ['x'], 50 + 1000)).toEqual({ ok: true });
  });

  it('refuses IDs the map already has, and a group with one taken ID holds none of it', () => {
    const inMap = new Set(['ns/live']);
    const t = new ClaimTable(1000, (ns, id) => inMap.has(`${ns}/${id}`));
    expect(t.grant('A', 'ns', ['live'], 0)).toEqual({ ok: false, taken: 'live' });
    expect(t.grant('A', 'ns', ['y'], 0)).toEqual({ ok: true });
    expect(t.grant('B', 'ns', ['z', 'y'], 0)).toEqual({ ok: false, taken: 'y' });
    expect(t.grant('C', 'ns', ['z'], 0)).toEqual({ ok: true });
    expect(t.size).toBe(2);
  });
});

/** N claimants that reach each other through `ask`, after a delay; members in `down` do not answer. */
function cluster(n: number) {
  const names = Array.from({ length: n }, (_, i) => `d${i}`);
  const down = new Set<string>();
  const asked: string[] = [];
  const nodes = new Map<string, Claimant>();
  for (const self of names) {
    nodes.set(
      self,
      new Claimant({
        self,
        members: () => names.filter((m) => m !== self),
        table: new ClaimTable(5000, () => false),
        ask: async (peer: string, r: ClaimRequest): Promise<ClaimVerdict> => {
          asked.push(`${self}->${peer}`);
          await new Promise((res) => setTimeout(res, 1 + Math.random() * 3));
          if (down.has(peer)) throw new Error('no answer');
          return nodes.get(peer)!.answer(self, r);
        },
      }),
    );
  }
  return { names, down, asked, node: (i: number) => nodes.get(names[i]!)! };
}

describe('claimants', () => {
  it('grant each of many IDs claimed by all daemons at the same moment to exactly one of them', async () => {
    const c = cluster(4);
    for (let k = 0; k < 50; k++) {
      const got = await Promise.all(c.names.map((_, i) => c.node(i).claim('ns', [`race-${k}`])));
      expect(got.filter((v) => v.ok)).toHaveLength(1);
    }
  });

  it('claim a group whole or not at all, releasing what other arbiters granted', async () => {
    const c = cluster(3);
    const ids = Array.from({ length: 30 }, (_, i) => `g-${i}`);
    expect(await c.node(0).claim('ns', ['g-7'])).toEqual({ ok: true });
    expect(await c.node(1).claim('ns', ids)).toEqual({ ok: false, taken: 'g-7' });
    await new Promise((r) => setTimeout(r, 20)); // releases are sent without waiting
    // Everything but g-7 is free again for a third daemon, at once.
    expect(
      await c.node(2).claim(
        'ns',
        ids.filter((i) => i !== 'g-7'),
      ),
    ).toEqual({ ok: true });
  });

  it('fall back to the next arbiter when one does not answer, and still agree', async () => {
    const c = cluster(3);
    c.down.add('d2');
    // IDs whose first arbiter is the silent member.
    const ids = Array.from({ length: 200 }, (_, i) => `f-${i}`)
      .filter((id) => arbiters('ns', id, c.names)[0] === 'd2')
      .slice(0, 10);
    expect(ids.length).toBe(10);
    for (const id of ids) {
      const got = await Promise.all([c.node(0).claim('ns', [id]), c.node(1).claim('ns', [id])]);
      expect(got.filter((v) => v.ok)).toHaveLength(1);
    }
    expect(c.asked.some((a) => a.endsWith('->d2'))).toBe(true);
  });

  it('lets the daemon that claimed a group release IDs that ended on another daemon', async () => {
    const c = cluster(2);
    expect(await c.node(0).claim('ns', ['h'])).toEqual({ ok: true });
    expect((await c.node(1).claim('ns', ['h'])).ok).toBe(false);
    c.node(1).release('ns', ['h'], 'd0'); // the instance ran on d1 for d0's group
    await new Promise((r) => setTimeout(r, 20));
    expect(await c.node(1).claim('ns', ['h'])).toEqual({ ok: true });
  });
});
