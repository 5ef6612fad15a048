import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRun } from '../../daemon/remote.ts';

// Messages between daemons that run members for each other: every field is
// checked before use; a malformed message parses to null (the daemon answers
// it with an error and counts it), it never throws.

const act = '0123456789abcdef0123456789abcdef';
/** an activation as the daemon that ran it sends it back (activationView) */
const view = {
  activationId: act,
  namespace: 'ns',
  name: 'f',
  version: '0.0.1',
  host: 'h1',
  start: 1,
  end: 2,
  duration: 1,
  response: { status: 'success', statusCode: 0, success: true, result: { ok: true } },
  logs: ['a line'],
  annotations: [{ key: 'kind', value: 'nodejs:24' }],
};
const share = { namespace: 'ns', function: 'f', params: {}, members: [{ instance: 'w-0', activationId: act, epoch: 0, restart: false }], reservation: 'r1', claimedBy: 'peer' };

describe('run protocol messages', () => {
  it('accepts well-formed messages as they are', () => {
    expect(parseRun({ op: 'reserve', mb: 512, ttlMs: 15_000 })).toEqual({ op: 'reserve', mb: 512, ttlMs: 15_000 });
    expect(parseRun({ op: 'start', share })).toEqual({ op: 'start', share });
    expect(parseRun({ op: 'start', share: { ...share, members: [{ instance: null, activationId: act, epoch: 0, restart: false }], reservation: null, claimedBy: null } })).not.toBeNull();
    expect(parseRun({ op: 'stop', ids: [act], why: 'cancelled' })).toEqual({ op: 'stop', ids: [act], why: 'cancelled' });
    expect(parseRun({ op: 'ended', activationId: act, activation: view })).toEqual({ op: 'ended', activationId: act, activation: view });
  });

  it('refuses what is off, field by field', () => {
    const bad: unknown[] = [
      null,
      [],
      'start',
      { op: 'nope' },
      { op: 'reserve', mb: -1, ttlMs: 1 },
      { op: 'reserve', mb: 1.5, ttlMs: 1 },
      { op: 'reserve', mb: 1, ttlMs: 1e12 },
      { op: 'start', share: { ...share, members: null } },
      { op: 'start', share: { ...share, members: [] } },
      { op: 'start', share: { ...share, members: [{ ...share.members[0], instance: '../x' }] } },
      { op: 'start', share: { ...share, members: [{ ...share.members[0], activationId: 'x' }] } },
      { op: 'start', share: { ...share, members: [{ ...share.members[0], epoch: -1 }] } },
      { op: 'start', share: { ...share, params: [] } },
      { op: 'start', share: { ...share, namespace: 7 } },
      { op: 'start', share: { ...share, members: Array.from({ length: 1001 }, () => share.members[0]) } },
      { op: 'stop', ids: 'all', why: '' },
      { op: 'stop', ids: [act] },
      { op: 'ended', activationId: act, activation: { ...view, activationId: '1'.repeat(32) } },
      { op: 'ended', activationId: act, activation: { activationId: act } },
      { op: 'ended', activationId: act, activation: { ...view, response: { ...view.response, status: 'fine' } } },
      { op: 'ended', activationId: act, activation: { ...view, logs: [1] } },
      { op: 'ended', activationId: act, activation: { ...view, start: -1 } },
      { op: 'ended', activationId: act, activation: { ...view, annotations: null } },
    ];
    for (const b of bad) expect(parseRun(b), JSON.stringify(b)?.slice(0, 200)).toBeNull();
  });

  it('never throws, whatever arrives', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        parseRun(v);
        parseRun({ op: 'start', share: v });
        parseRun({ op: 'ended', activationId: act, activation: v });
      }),
      { numRuns: 2000 },
    );
  });
});
