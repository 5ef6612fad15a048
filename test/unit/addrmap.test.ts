import { describe, expect, it } from 'vitest';
import { AddressMap, expandInstances, InstanceClash } from '../../gossip/addrmap.ts';

const base = (instance: string, namespace = 'a') => ({ namespace, instance, function: 'f', activation: `act-${instance}`, host: 'h1', port: 7700, since: 0 });

describe('address map', () => {
  it('claims a group all or nothing', () => {
    const m = new AddressMap('h1', 1);
    m.reserve([base('w-1')]);
    expect(() => m.reserve([base('w-0'), base('w-1'), base('w-2')])).toThrow(InstanceClash);
    expect(m.list('a').map((e) => e.instance)).toEqual(['w-1']);
    expect(() => m.reserve([base('x'), base('x')])).toThrow(InstanceClash);
    expect(m.get('a', 'x')).toBeUndefined();
    // Another namespace is another ID space.
    expect(m.reserve([base('w-1', 'b')])).toHaveLength(1);
  });

  it('moves an entry from starting to running, takes a status, and removes it', () => {
    const m = new AddressMap('h1', 1);
    const [e] = m.reserve([base('p')]);
    expect(e).toMatchObject({ state: 'starting', ip: null, status: null });
    m.update('a', 'p', { state: 'running', ip: '10.0.0.2' });
    m.update('a', 'p', { status: 'waiting' });
    expect(m.get('a', 'p')).toMatchObject({ state: 'running', ip: '10.0.0.2', status: 'waiting' });
    expect(m.remove('a', 'p')).toBe(true);
    expect(m.remove('a', 'p')).toBe(false);
    expect(m.update('a', 'p', { status: 'x' })).toBeUndefined();
  });

  it('counts a version per namespace and emits deltas with the sequence number of their last change', () => {
    const m = new AddressMap('h1', 7);
    m.startReplicating();
    m.reserve([base('p'), base('q')]);
    m.reserve([base('r', 'b')]);
    expect(m.version('a')).toBe(2);
    expect(m.version('b')).toBe(1);
    const d1 = m.takeDelta()!;
    expect(d1).toMatchObject({ origin: 'h1', incarnation: 7, seq: 3 });
    expect(d1.changes).toHaveLength(3);
    expect(m.takeDelta()).toBeNull();
    m.remove('a', 'p');
    const d2 = m.takeDelta()!;
    expect(d2.seq).toBe(4);
    expect(d2.changes).toEqual([{ kind: 'remove', namespace: 'a', instance: 'p' }]);
  });

  it('keeps deltas only while a gossip layer consumes them', () => {
    const m = new AddressMap('h1', 1);
    m.reserve([base('p')]);
    expect(m.takeDelta()).toBeNull();
    expect(m.sequence).toBe(1);
    m.startReplicating();
    m.remove('a', 'p');
    expect(m.takeDelta()).toMatchObject({ seq: 2, changes: [{ kind: 'remove', instance: 'p' }] });
  });

  it('expands instance patterns', () => {
    expect(expandInstances('worker-{0..3}', 100)).toEqual(['worker-0', 'worker-1', 'worker-2', 'worker-3']);
    expect(expandInstances('a, b,w{8..10}x', 100)).toEqual(['a', 'b', 'w8x', 'w9x', 'w10x']);
    expect(() => expandInstances('w-{3..1}', 100)).toThrow(RangeError);
    expect(() => expandInstances('w-{0..100}', 100)).toThrow(/more than 100/);
  });
});
