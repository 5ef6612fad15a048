import { describe, expect, it } from 'vitest';
import { decide, prewarmDeficit, usedMemory, type Slot } from '../../sandbox/poolPolicy.ts';

const slot = (id: string, over: Partial<Slot>): Slot => ({ id, fnKey: null, runtimeKey: 'img#256', memoryMb: 256, state: 'idle', lastUsed: 0, seats: 1, used: 0, ...over });
const demand = { fnKey: 'ns/f@1', runtimeKey: 'img#256', memoryMb: 256 };

describe('pool policy', () => {
  it('prefers an idle warm container, then a paused one, then a prewarmed one', () => {
    const slots = [slot('pre', { state: 'prewarm' }), slot('paused', { fnKey: 'ns/f@1', state: 'paused' }), slot('idle', { fnKey: 'ns/f@1', state: 'idle' })];
    expect(decide(slots, demand, 4096)).toEqual({ kind: 'warm', id: 'idle', paused: false });
    expect(decide(slots.slice(0, 2), demand, 4096)).toEqual({ kind: 'warm', id: 'paused', paused: true });
    expect(decide(slots.slice(0, 1), demand, 4096)).toEqual({ kind: 'prewarmed', id: 'pre' });
  });

  it('never reuses a busy container, another function, or an older version', () => {
    const slots = [slot('busy', { fnKey: 'ns/f@1', state: 'busy', used: 1 }), slot('other', { fnKey: 'ns/g@1' }), slot('old', { fnKey: 'ns/f@0' })];
    expect(decide(slots, demand, 4096)).toEqual({ kind: 'create', evict: [] });
  });

  it('does not use a prewarmed container of another image or memory size', () => {
    expect(decide([slot('pre', { state: 'prewarm', runtimeKey: 'img#512', memoryMb: 512 })], demand, 4096).kind).toBe('create');
  });

  it('evicts the least recently used unused containers, prewarmed first, to fit the budget', () => {
    const slots = [
      slot('a', { fnKey: 'ns/g@1', lastUsed: 5 }),
      slot('b', { fnKey: 'ns/h@1', lastUsed: 1, state: 'paused' }),
      slot('c', { fnKey: 'ns/i@1', state: 'busy' }),
      slot('p', { state: 'prewarm', runtimeKey: 'other#256', lastUsed: 9 }),
    ];
    expect(decide(slots, demand, 1024)).toEqual({ kind: 'create', evict: ['p'] });
    expect(decide(slots, { ...demand, memoryMb: 512 }, 1024)).toEqual({ kind: 'create', evict: ['p', 'b'] });
  });

  it('waits when everything is busy or the demand exceeds the whole budget', () => {
    const busy = [slot('a', { state: 'busy', fnKey: 'x' }), slot('b', { state: 'starting', fnKey: 'y' })];
    expect(decide(busy, demand, 512)).toEqual({ kind: 'wait' });
    expect(decide([], { ...demand, memoryMb: 8192 }, 4096)).toEqual({ kind: 'wait' });
  });

  it('does not count containers being removed against the budget', () => {
    expect(usedMemory([slot('a', { state: 'removing' }), slot('b', { state: 'busy' })])).toBe(256);
    expect(decide([slot('a', { state: 'removing', fnKey: 'x' })], demand, 256)).toEqual({ kind: 'create', evict: [] });
  });

  it('tops up prewarmed containers to the wanted count within the budget', () => {
    expect(prewarmDeficit([], 'img#256', 256, 2, 4096)).toBe(2);
    expect(prewarmDeficit([slot('s', { state: 'starting' })], 'img#256', 256, 2, 4096)).toBe(1);
    expect(prewarmDeficit([slot('s', { state: 'busy', fnKey: 'x' })], 'img#256', 256, 2, 512)).toBe(1);
    expect(prewarmDeficit([slot('s', { state: 'busy', fnKey: 'x', memoryMb: 512 })], 'img#256', 256, 2, 512)).toBe(0);
  });

  describe('containers shared by instances (limits.concurrency)', () => {
    const shared = { ...demand, seats: 4 };
    it('takes a free seat of a running container of the function, the fullest first, before anything warm', () => {
      const slots = [
        slot('idle', { fnKey: 'ns/f@1', state: 'idle', seats: 4 }),
        slot('half', { fnKey: 'ns/f@1', state: 'busy', seats: 4, used: 2 }),
        slot('most', { fnKey: 'ns/f@1', state: 'busy', seats: 4, used: 3 }),
        slot('full', { fnKey: 'ns/f@1', state: 'busy', seats: 4, used: 4 }),
      ];
      expect(decide(slots, shared, 4096)).toEqual({ kind: 'share', id: 'most' });
      expect(
        decide(
          slots.filter((s) => s.id !== 'most'),
          shared,
          4096,
        ),
      ).toEqual({ kind: 'share', id: 'half' });
      expect(decide([slots[0]!, slots[3]!], shared, 4096)).toEqual({ kind: 'warm', id: 'idle', paused: false });
    });

    it('packs a burst into a container still starting instead of creating one each', () => {
      expect(decide([slot('s', { fnKey: 'ns/f@1', state: 'starting', seats: 4, used: 1 })], shared, 4096)).toEqual({ kind: 'share', id: 's' });
      // a prewarmed container starting for no function yet is not this function's
      expect(decide([slot('p', { state: 'starting', seats: 1, used: 0 })], shared, 4096)).toEqual({ kind: 'create', evict: [] });
    });

    it("never shares another function's, another version's or a one-seat container", () => {
      const slots = [
        slot('g', { fnKey: 'ns/g@1', state: 'busy', seats: 4, used: 1 }),
        slot('old', { fnKey: 'ns/f@0', state: 'busy', seats: 4, used: 1 }),
        slot('one', { fnKey: 'ns/f@1', state: 'busy', seats: 1, used: 1 }),
      ];
      expect(decide(slots, shared, 4096)).toEqual({ kind: 'create', evict: [] });
    });

    it('counts a shared container once against the budget, however many instances it holds', () => {
      const slots = [slot('a', { fnKey: 'ns/f@1', state: 'busy', seats: 50, used: 50 })];
      expect(usedMemory(slots)).toBe(256);
      expect(decide(slots, { ...shared, seats: 50 }, 512)).toEqual({ kind: 'create', evict: [] });
      expect(decide(slots, { ...shared, seats: 50 }, 256)).toEqual({ kind: 'wait' });
    });
  });
});
