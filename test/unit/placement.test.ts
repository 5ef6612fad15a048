import { describe, expect, it } from 'vitest';
import { rendezvous, spread } from '../../gossip/placement.ts';

const hosts = (n: number, freeMb = 4096) => Array.from({ length: n }, (_, i) => ({ origin: `h${i}`, freeMb }));

describe('placement', () => {
  it('sends a function to the same host every time, and only to hosts with room', () => {
    const a = rendezvous('ns/f@1', hosts(5), 256);
    expect(rendezvous('ns/f@1', hosts(5), 256)).toBe(a);
    expect(
      rendezvous(
        'ns/f@1',
        hosts(5).map((h) => (h.origin === a ? { ...h, freeMb: 100 } : h)),
        256,
      ),
    ).not.toBe(a);
    expect(rendezvous('ns/f@1', hosts(3, 100), 256)).toBeNull();
  });

  it('moves few functions when a host leaves', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `ns/f${i}@1`);
    const before = keys.map((k) => rendezvous(k, hosts(10), 256));
    const after = keys.map((k) =>
      rendezvous(
        k,
        hosts(10).filter((h) => h.origin !== 'h3'),
        256,
      ),
    );
    const moved = keys.filter((_, i) => before[i] !== after[i]).length;
    expect(moved).toBe(before.filter((h) => h === 'h3').length);
    expect(moved).toBeLessThan(200);
  });

  it('spreads a group by free capacity and never beyond it', () => {
    const g = spread(
      10,
      [
        { origin: 'a', freeMb: 3000 },
        { origin: 'b', freeMb: 1000 },
      ],
      100,
    );
    expect((g.get('a') ?? 0) + (g.get('b') ?? 0)).toBe(10);
    expect(g.get('a')).toBeGreaterThan(g.get('b')!);
    const full = spread(
      100,
      [
        { origin: 'a', freeMb: 500 },
        { origin: 'b', freeMb: 250 },
      ],
      100,
    );
    expect(full).toEqual(
      new Map([
        ['a', 5],
        ['b', 2],
      ]),
    );
  });

  it('counts room in containers of seats members each when instances share containers', () => {
    // 250 MB holds two 100 MB containers of 50 seats: 100 members; 50 MB holds none.
    expect(
      spread(
        100,
        [
          { origin: 'a', freeMb: 250 },
          { origin: 'b', freeMb: 50 },
        ],
        100,
        50,
      ),
    ).toEqual(new Map([['a', 100]]));
    const g = spread(
      100,
      [
        { origin: 'a', freeMb: 1000 },
        { origin: 'b', freeMb: 1000 },
      ],
      512,
      50,
    );
    expect(g).toEqual(
      new Map([
        ['a', 50],
        ['b', 50],
      ]),
    );
  });
});
