import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { BeatTable, FANOUT, introValid, parseBeat, pick, reportTimeouts, signIntro, STALL_MS, type Beat } from '../../gossip/liveness.ts';

const row = (origin: string, incarnation: number, beat: number): Beat => ({ origin, incarnation, beat, seq: 0, load: 0, freeMb: 0, host: 'h', addrs: [], intro: '' });

describe('beat table', () => {
  it('takes only beats that advance, so a stale copy relayed late cannot revive a dead member', () => {
    const t = new BeatTable('me', 1000);
    expect(t.merge([row('a', 1, 5)], 0)).toHaveLength(1);
    expect(t.merge([row('a', 1, 5), row('a', 1, 4)], 10)).toEqual([]);
    expect(t.merge([row('a', 1, 6)], 20)).toHaveLength(1);
    // a stops; a copy of its last beat comes back much later: not news
    expect(t.merge([row('a', 1, 6)], 5000)).toEqual([]);
    expect(t.live(5000).map((b) => b.origin)).toEqual([]);
    // a restarted: a new incarnation counts from 1 and is news
    expect(t.merge([row('a', 2, 1)], 5001)).toEqual([row('a', 2, 1)]);
    expect(t.merge([row('me', 9, 9)], 5002)).toEqual([]); // nobody speaks for this daemon's own beat
  });

  it('counts its own beats per incarnation and passes on only rows that advanced within the stale time', () => {
    const t = new BeatTable('me', 1000);
    expect(t.beat({ incarnation: 1, seq: 3, load: 0, freeMb: 0, host: 'h', addrs: [], intro: '' }, 0).beat).toBe(1);
    expect(t.beat({ incarnation: 1, seq: 3, load: 0, freeMb: 0, host: 'h', addrs: [], intro: '' }, 100).beat).toBe(2);
    expect(t.beat({ incarnation: 2, seq: 0, load: 0, freeMb: 0, host: 'h', addrs: [], intro: '' }, 200).beat).toBe(1);
    t.merge([row('a', 1, 1)], 200);
    t.merge([row('b', 1, 1)], 900);
    t.beat({ incarnation: 2, seq: 0, load: 0, freeMb: 0, host: 'h', addrs: [], intro: '' }, 1300);
    expect(
      t
        .live(1300)
        .map((b) => b.origin)
        .sort(),
    ).toEqual(['b', 'me']);
  });

  it("takes a row's incarnation only with its origin's signature of it", async () => {
    const key = await generateKeyPair('Ed25519');
    const origin = peerIdFromPrivateKey(key).toString();
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
    const intro = await signIntro(key, origin, 1700000000000);
    const b = { ...row(origin, 1700000000000, 1), intro };
    expect(await introValid(b)).toBe(true);
    expect(await introValid({ ...b, incarnation: 1e15 })).toBe(false); // a forged restart
    expect(await introValid({ ...b, origin: other })).toBe(false); // another's signature
    expect(await introValid({ ...b, intro: 'garbage' })).toBe(false);
    expect(await introValid({ ...b, origin: 'not a peer id' })).toBe(false);
    const t = new BeatTable('me', 1000);
    expect(t.knows(b)).toBe(false);
    t.merge([b], 0);
    expect(t.knows({ ...b, beat: 2 })).toBe(true);
    expect(t.knows({ ...b, incarnation: b.incarnation + 1 })).toBe(false);
  });

  it('refuses malformed rows from a peer', () => {
    expect(parseBeat(row('a', 1, 1))).toEqual(row('a', 1, 1));
    for (const bad of [
      null,
      7,
      {},
      { ...row('a', 1, 1), beat: 'x' },
      { ...row('a', 1, 1), seq: Infinity },
      { ...row('a', 1, 1), origin: 'x'.repeat(200) },
      { ...row('a', 1, 1), addrs: 'x' },
      { ...row('a', 1, 1), addrs: [1] },
      { ...row('a', 1, 1), host: undefined },
    ])
      expect(parseBeat(bad)).toBeNull();
  });

  it('reaches 50 daemons fast enough for the failure timeout: swapped with FANOUT peers each 250 ms round', () => {
    // Rounds in lockstep, every daemon connected to every other: the age of the news each daemon has of
    // each member, at its worst over 100 rounds, must stay at half the 1.5 s failure timeout.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const N = 50;
    const ROUND = 250;
    const ids = Array.from({ length: N }, (_, i) => `d${i}`);
    const tables = ids.map((id) => new BeatTable(id, 1500));
    const heard = ids.map(() => new Map<string, number>());
    let worst = 0;
    for (let r = 1; r <= 100; r++) {
      const now = r * ROUND;
      const sends = ids.map((id, i) => {
        tables[i]!.beat({ incarnation: 1, seq: 0, load: 0, freeMb: 0, host: 'h', addrs: [], intro: '' }, now);
        return {
          from: i,
          rows: tables[i]!.live(now),
          to: pick(
            ids.filter((x) => x !== id),
            FANOUT,
            random,
          ),
        };
      });
      for (const s of sends)
        for (const to of s.to) {
          const i = ids.indexOf(to);
          for (const b of tables[i]!.merge(s.rows, now)) heard[i]!.set(b.origin, now);
          for (const b of tables[s.from]!.merge(tables[i]!.live(now), now)) heard[s.from]!.set(b.origin, now); // the answer
        }
      if (r > 10) for (let i = 0; i < N; i++) for (const o of ids) if (o !== ids[i]) worst = Math.max(worst, now - (heard[i]!.get(o) ?? 0));
    }
    expect(worst).toBeLessThanOrEqual(750);
  });
});

describe('reporting timed-out members to all', () => {
  it('reports members that went silent while this daemon kept listening', () => {
    expect(reportTimeouts(1, 9, 50)).toBe(true);
    expect(reportTimeouts(2, 2, STALL_MS)).toBe(true);
    expect(reportTimeouts(0, 9, 50)).toBe(false);
  });

  it('does not when its own loop stood still: the silence may be its own', () => {
    expect(reportTimeouts(1, 9, STALL_MS + 1)).toBe(false);
  });

  it('does not when it lost more than half the members at once: it is more likely the one cut off', () => {
    expect(reportTimeouts(3, 2, 50)).toBe(false);
    expect(reportTimeouts(5, 0, 50)).toBe(false);
  });
});
