import { afterEach, describe, expect, it, vi } from 'vitest';
import { AddressMap, holder, type Entry } from '../../gossip/addrmap.ts';
import { Replica } from '../../gossip/replica.ts';
import { Directory, YIELD_AFTER_MS, type RemoteEntries } from '../../daemon/directory.ts';

// One instance ID granted on both sides of a partition: once the maps meet, every daemon names the same
// instance by it, and the other one yields.

const entry = (host: string, since: number, activation = `act-${host}`): Entry => ({
  namespace: 'ns',
  instance: 'twin',
  function: 'f',
  activation,
  host,
  ip: '10.0.0.1',
  port: 7700,
  state: 'running',
  status: null,
  since,
});

/** other hosts' entries, as a daemon's gossip layer would hand them over */
class Remote implements RemoteEntries {
  entries: Entry[] = [];
  list(ns: string): Entry[] {
    return this.entries.filter((e) => e.namespace === ns);
  }
  get(ns: string, id: string): Entry | undefined {
    return this.list(ns)
      .filter((e) => e.instance === id)
      .reduce<Entry | undefined>((a, e) => (a ? holder(a, e) : e), undefined);
  }
}

afterEach(() => vi.useRealTimers());

describe('an instance ID granted twice', () => {
  it('is held by the older entry, then the smaller activation ID, whichever order they are compared in', () => {
    const [a, b] = [entry('h1', 100), entry('h2', 200)];
    expect(holder(a, b)).toBe(a);
    expect(holder(b, a)).toBe(a);
    const [c, d] = [entry('h1', 100, 'bbb'), entry('h2', 100, 'aaa')];
    expect(holder(c, d)).toBe(d);
    expect(holder(d, c)).toBe(d);
  });

  it('resolves to the same entry on every daemon, however its origins were learned', () => {
    const deltas = [
      { type: 'delta' as const, origin: 'o1', incarnation: 1, seq: 1, changes: [{ kind: 'upsert' as const, entry: entry('h1', 300) }] },
      { type: 'delta' as const, origin: 'o2', incarnation: 1, seq: 1, changes: [{ kind: 'upsert' as const, entry: entry('h2', 100) }] },
      { type: 'delta' as const, origin: 'o3', incarnation: 1, seq: 1, changes: [{ kind: 'upsert' as const, entry: entry('h3', 200) }] },
    ];
    for (const order of [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
    ]) {
      const r = new Replica('me', 1500);
      for (const i of order) r.receive(deltas[i]!, 0);
      expect(r.get('ns', 'twin')?.host).toBe('h2');
    }
  });

  it('shows readers one entry per ID, the holder, and makes the younger local twin yield only if the twin lasts', () => {
    vi.useFakeTimers();
    const map = new AddressMap('here', 1);
    const dir = new Directory(map, () => '/nonexistent');
    const remote = new Remote();
    dir.setRemote(remote);
    const yielded: [string, string][] = [];
    dir.events.on('yield', (mine, theirs) => yielded.push([mine.activation, theirs.activation]));
    vi.setSystemTime(5000);
    const [mine] = dir.reserve([{ namespace: 'ns', instance: 'twin', function: 'f', activation: 'act-here', host: 'here' }]);

    // An older entry that goes away again within the grace (an instance that had just ended elsewhere): nothing yields.
    remote.entries = [entry('there', 1000)];
    dir.remoteChanged(['ns']);
    expect(dir.get('ns', 'twin')?.host).toBe('there');
    expect(dir.view('ns').instances.map((e) => e.host)).toEqual(['there']);
    remote.entries = [];
    dir.remoteChanged(['ns']);
    vi.advanceTimersByTime(YIELD_AFTER_MS + 10);
    expect(yielded).toEqual([]);
    expect(dir.get('ns', 'twin')).toBe(mine);

    // A younger remote twin: this one holds the ID, nothing yields here.
    remote.entries = [entry('there', 9000)];
    dir.remoteChanged(['ns']);
    vi.advanceTimersByTime(YIELD_AFTER_MS + 10);
    expect(yielded).toEqual([]);
    expect(dir.view('ns').instances).toEqual([mine]);

    // An older twin that stays (the two sides of a partition met): the local one yields, once.
    remote.entries = [entry('there', 1000)];
    dir.remoteChanged(['ns']);
    dir.remoteChanged(['ns']);
    vi.advanceTimersByTime(YIELD_AFTER_MS - 10);
    expect(yielded).toEqual([]);
    vi.advanceTimersByTime(20);
    expect(yielded).toEqual([['act-here', 'act-there']]);
  });
});
