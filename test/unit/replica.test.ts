import { describe, expect, it } from 'vitest';
import { AddressMap } from '../../gossip/addrmap.ts';
import { Replica } from '../../gossip/replica.ts';

// The replica's rules one message at a time. The protocol as a whole, every
// daemon's driver and core over a lossy network, is simulated in
// membership.sim.test.ts.

describe("the replica: one daemon's view of the others' maps", () => {
  it('suspects a member a peer timed out, keeps its entries, and lets its beats refute that; unrefuted, drops it', () => {
    const a = new AddressMap('a', 1);
    a.startReplicating();
    a.reserve([{ namespace: 'n', instance: 'x', function: 'f', activation: 'x', host: 'a', port: 7700, since: 0 }]);
    const r = new Replica('b', 1000);
    r.receive({ type: 'delta', ...a.takeDelta()! }, 0);
    expect(r.receive({ type: 'down', origin: 'a', incarnation: 1, why: 'timeout' }, 100)).toEqual([{ kind: 'suspected', origin: 'a' }]);
    expect(r.get('n', 'x')?.instance).toBe('x');
    expect(r.members()[0]).toMatchObject({ origin: 'a', suspected: true });
    // A second report keeps the first deadline; its beats go on: refuted.
    expect(r.receive({ type: 'down', origin: 'a', incarnation: 1, why: 'timeout' }, 500)).toEqual([]);
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 1, load: 0 }, 600)).toEqual([{ kind: 'refuted', origin: 'a' }]);
    expect(r.tick(1200)).toEqual([]);
    expect(r.members()[0]).toMatchObject({ suspected: false });
    // Suspected again, and no beat news (its deltas still come): dropped at the deadline, its late beats kept out.
    r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 1, load: 0 }, 1300);
    r.receive({ type: 'down', origin: 'a', incarnation: 1, why: 'timeout' }, 1400);
    a.update('n', 'x', { state: 'running' });
    r.receive({ type: 'delta', ...a.takeDelta()! }, 2000);
    expect(r.tick(2399)).toEqual([]);
    expect(r.tick(2400).map((f) => f.kind)).toEqual(['origin-down', 'changed']);
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 1, load: 0 }, 2500)).toEqual([]);
    // A report of a refused port (or without a reason, from an older daemon) still drops at once.
    const r2 = new Replica('b', 1000);
    r2.receive({ type: 'heartbeat', origin: 'c', incarnation: 1, seq: 0, load: 0 }, 0);
    r2.receive({ type: 'heartbeat', origin: 'd', incarnation: 1, seq: 0, load: 0 }, 0);
    expect(r2.receive({ type: 'down', origin: 'c', incarnation: 1, why: 'refused' }, 10).map((f) => f.kind)).toEqual(['origin-down']);
    expect(r2.receive({ type: 'down', origin: 'd', incarnation: 1 }, 10).map((f) => f.kind)).toEqual(['origin-down']);
    // A timeout report about another life suspects nothing.
    r2.receive({ type: 'heartbeat', origin: 'e', incarnation: 2, seq: 0, load: 0 }, 0);
    expect(r2.receive({ type: 'down', origin: 'e', incarnation: 1, why: 'timeout' }, 10)).toEqual([]);
  });

  it('applies a delta that arrives ahead of its predecessor once the predecessor comes, with no snapshot', () => {
    const a = new AddressMap('a', 1);
    a.startReplicating();
    const r = new Replica('b', 1000);
    const d = [1, 2, 3].map((i) => {
      a.reserve([{ namespace: 'n', instance: `x${i}`, function: 'f', activation: String(i), host: 'a', port: 7700, since: 0 }]);
      return a.takeDelta()!;
    });
    r.receive({ type: 'delta', ...d[0]! }, 0);
    expect(r.receive({ type: 'delta', ...d[2]! }, 1)).toEqual([]);
    expect(r.get('n', 'x3')).toBeUndefined();
    const fx = r.receive({ type: 'delta', ...d[1]! }, 2);
    expect(fx.map((f) => f.kind)).toEqual(['changed']);
    expect(['x1', 'x2', 'x3'].map((x) => r.get('n', x)?.instance)).toEqual(['x1', 'x2', 'x3']);
    expect(r.tick(500)).toEqual([]);
  });

  it('ignores old and duplicate deltas, pulls a snapshot on a gap, replaces a restarted origin', () => {
    const a = new AddressMap('a', 1);
    a.startReplicating();
    const r = new Replica('b', 1000);
    a.reserve([{ namespace: 'n', instance: 'x', function: 'f', activation: '1', host: 'a', port: 7700, since: 0 }]);
    const d1 = a.takeDelta()!;
    expect(r.receive({ type: 'delta', ...d1 }, 0).map((f) => f.kind)).toContain('changed');
    expect(r.receive({ type: 'delta', ...d1 }, 1).filter((f) => f.kind === 'changed')).toHaveLength(0);
    a.update('n', 'x', { status: 's1' });
    a.takeDelta(); // lost
    a.update('n', 'x', { status: 's2' });
    const d3 = a.takeDelta()!;
    // A gap waits a moment for the missing delta (gossip reorders), then asks for a snapshot.
    expect(r.receive({ type: 'delta', ...d3 }, 2)).toEqual([]);
    expect(r.tick(2 + r.gapGraceMs + 1)).toEqual([{ kind: 'pull-snapshot', origin: 'a' }]);
    r.receive({ type: 'snapshot', ...a.snapshot() }, 3);
    expect(r.get('n', 'x')?.status).toBe('s2');
    const a2 = new AddressMap('a', 2);
    const fx = r.receive({ type: 'heartbeat', origin: 'a', incarnation: 2, seq: a2.sequence, load: 0 }, 4);
    // A new incarnation that has shipped nothing has nothing: in sync at once, no snapshot to pull.
    expect(fx.map((f) => f.kind)).toEqual(['origin-down', 'changed', 'origin-up']);
    expect(r.members()[0]).toMatchObject({ incarnation: 2, synced: true, entries: 0 });
    expect(r.get('n', 'x')).toBeUndefined();
    expect(r.receive({ type: 'delta', ...d3 }, 5)).toEqual([]); // the old incarnation is gone for good
    expect(r.tick(2000).map((f) => f.kind)).toEqual(['origin-down']);
    expect(r.members()).toEqual([]);
  });

  it('keeps a member that said goodbye out, though its last beats and deltas arrive after, until it comes back as a new life', () => {
    const a = new AddressMap('a', 1);
    a.startReplicating();
    const r = new Replica('b', 1000);
    a.reserve([{ namespace: 'n', instance: 'x', function: 'f', activation: '1', host: 'a', port: 7700, since: 0 }]);
    const d1 = a.takeDelta()!;
    r.receive({ type: 'delta', ...d1 }, 0);
    expect(r.receive({ type: 'leave', origin: 'a', incarnation: 1 }, 10).map((f) => f.kind)).toEqual(['origin-down', 'changed']);
    // Late copies of its last life: no member, no entries, nothing to pull.
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 1, load: 0 }, 20)).toEqual([]);
    expect(r.receive({ type: 'delta', ...d1 }, 30)).toEqual([]);
    expect(r.members()).toEqual([]);
    expect(r.get('n', 'x')).toBeUndefined();
    // A goodbye of an older life does not drop the new one.
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 2, seq: 0, load: 0 }, 40).map((f) => f.kind)).toEqual(['origin-up']);
    expect(r.receive({ type: 'leave', origin: 'a', incarnation: 1 }, 50)).toEqual([]);
    expect(r.members()).toMatchObject([{ origin: 'a', incarnation: 2 }]);
  });

  it('drops a member a peer reports gone, keeps its late beats out for a failure timeout, then lets its own beats bring it back', () => {
    const r = new Replica('b', 1000);
    r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 0, load: 0 }, 0);
    expect(r.receive({ type: 'down', origin: 'a', incarnation: 1 }, 100).map((f) => f.kind)).toEqual(['origin-down']);
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 0, load: 0 }, 600)).toEqual([]);
    expect(r.members()).toEqual([]);
    // The word was wrong: the member's beats keep coming, and count again once the failure timeout is over.
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 0, load: 0 }, 1101).map((f) => f.kind)).toEqual(['origin-up']);
    // A report about an earlier life, or after a goodbye, changes nothing.
    expect(r.receive({ type: 'down', origin: 'a', incarnation: 0 }, 1200)).toEqual([]);
    r.receive({ type: 'leave', origin: 'a', incarnation: 1 }, 1300);
    expect(r.receive({ type: 'down', origin: 'a', incarnation: 1 }, 1400)).toEqual([]);
    expect(r.receive({ type: 'heartbeat', origin: 'a', incarnation: 1, seq: 0, load: 0 }, 9000)).toEqual([]);
  });
});
