import { describe, expect, it } from 'vitest';
import { parseEntry, parseTopicMessage } from '../../gossip/wire.ts';

const entry = { namespace: 'ns', instance: 'w-1', function: 'f', activation: 'a1', host: 'h', ip: '10.0.0.2', port: 7700, state: 'running', status: null, since: 5 };

describe('address-map messages off the wire', () => {
  it('takes every kind of message as the protocol has it', () => {
    expect(
      parseTopicMessage({
        type: 'delta',
        origin: 'o',
        incarnation: 3,
        seq: 2,
        changes: [
          { kind: 'upsert', entry },
          { kind: 'remove', namespace: 'ns', instance: 'w-0' },
        ],
      }),
    ).toEqual({
      type: 'delta',
      origin: 'o',
      incarnation: 3,
      seq: 2,
      changes: [
        { kind: 'upsert', entry },
        { kind: 'remove', namespace: 'ns', instance: 'w-0' },
      ],
    });
    expect(parseTopicMessage({ type: 'snapshot', origin: 'o', incarnation: 3, seq: 9, entries: [{ ...entry, epoch: 2, restart: true }] })?.type).toBe('snapshot');
    expect(parseTopicMessage({ type: 'leave', origin: 'o', incarnation: 3 })).toEqual({ type: 'leave', origin: 'o', incarnation: 3 });
    expect(parseTopicMessage({ type: 'down', origin: 'o', incarnation: 3 })).toEqual({ type: 'down', origin: 'o', incarnation: 3 });
    expect(parseTopicMessage({ type: 'down', origin: 'o', incarnation: 3, why: 'timeout' })).toEqual({ type: 'down', origin: 'o', incarnation: 3, why: 'timeout' });
    expect(parseTopicMessage({ type: 'pull', origin: 'o', from: 'p' })).toEqual({ type: 'pull', origin: 'o', from: 'p' });
    expect(parseTopicMessage({ type: 'heartbeat', origin: 'o', incarnation: 3, seq: 1, load: 0.5 })?.type).toBe('heartbeat');
  });

  it('refuses what would make a reader throw or store nonsense', () => {
    const bad: unknown[] = [
      null,
      42,
      'delta',
      [],
      {},
      { type: 'delta', origin: 'o', incarnation: 1, seq: 1, changes: null },
      { type: 'down', origin: 'o', incarnation: 1, why: 'maybe' },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 1, changes: [null] },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 1, changes: {} },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 2 ** 63, changes: [] },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 0, changes: [{ kind: 'remove', namespace: 'ns', instance: 'x' }] },
      { type: 'delta', origin: 'o', incarnation: -1, seq: 1, changes: [] },
      { type: 'delta', origin: 7, incarnation: 1, seq: 1, changes: [] },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 1, changes: [{ kind: 'upsert', entry: { ...entry, port: 'x' } }] },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 1, changes: [{ kind: 'upsert', entry: { ...entry, state: 'dead' } }] },
      { type: 'delta', origin: 'o', incarnation: 1, seq: 1, changes: [{ kind: 'explode' }] },
      { type: 'snapshot', origin: 'o', incarnation: 1, seq: 1, entries: 'all' },
      { type: 'snapshot', origin: 'o', incarnation: 1, seq: 1, entries: [{ ...entry, namespace: '' }] },
      { type: 'heartbeat', origin: 'o', incarnation: '1', seq: 1, load: 0 },
      { type: 'pull', origin: 'o' },
      { type: 'bogus', origin: 'o', incarnation: 1 },
    ];
    for (const m of bad) expect(parseTopicMessage(m), JSON.stringify(m)).toBeNull();
  });

  it('keeps only the fields an entry has', () => {
    expect(parseEntry({ ...entry, extra: 'x'.repeat(10_000) })).toEqual(entry);
    expect(parseEntry({ ...entry, ip: null, state: 'starting' })).toEqual({ ...entry, ip: null, state: 'starting' });
  });
});
