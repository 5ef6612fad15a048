import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BEAT_V1 } from '../../gossip/cluster.ts';
import type { Codec } from '../../gossip/protocols.ts';
import { activationView } from '../../daemon/activationView.ts';
import { CLAIM } from '../../daemon/claims.ts';
import { newJob } from '../../daemon/jobs.ts';
import { ACTIVATION, ACTIVATIONS, JOBS } from '../../daemon/records.ts';
import { RUN } from '../../daemon/remote.ts';
import type { ActivationRecord } from '../../daemon/types.ts';
import { typeConfused } from '../helpers/wirefuzz.ts';

// The codecs of the daemon-to-daemon protocols, on both sides: what a daemon
// really sends reads back as itself; anything else (confused field by field, or
// arbitrary JSON) is read or rejected, and never throws.

const act = '0123456789abcdef0123456789abcdef';
const record: ActivationRecord = {
  activationId: act,
  namespace: 'ns',
  name: 'f',
  version: 3,
  host: 'h1',
  start: 1000,
  end: 1200,
  duration: 200,
  status: 'success',
  result: { ok: true },
  logs: ['one line'],
  annotations: { kind: 'nodejs:24', limits: { memory: 128, timeout: 1000 }, path: 'ns/f', waitTime: 1 },
} as unknown as ActivationRecord;
const view = activationView(record);
const job = { ...newJob({ namespace: 'ns' as never, function: 'f', coordinator: 'h1', parent: null, detach: false, restart: { maxRestarts: 3 }, ids: ['w-0', 'w-1'], now: 5 }) };
job.members[0]!.activationId = act;
job.members[0]!.attempts = [act];
job.members[0]!.outcome = { status: 'success', error: null };

/** For each codec: requests and replies a daemon really sends. */
const REAL: [string, Codec<unknown, unknown>, unknown[], unknown[]][] = [
  [
    'claim',
    CLAIM as Codec<unknown, unknown>,
    [
      { op: 'claim', namespace: 'ns', ids: ['a', 'b'] },
      { op: 'release', namespace: 'ns', ids: ['a'], holder: 'p' },
    ],
    [{ ok: true }, { ok: false, taken: 'held by h2' }],
  ],
  [
    'run',
    RUN as Codec<unknown, unknown>,
    [{ op: 'free' }, { op: 'ended', activationId: act, activation: view }],
    [{ ok: true, freeMb: 512 }, { ok: true, reservation: 'r1' }, { ok: true, reservation: null }, { error: 'no room' }],
  ],
  ['activation', ACTIVATION as Codec<unknown, unknown>, [{ namespace: 'ns', id: act }], [view, null]],
  [
    'activations',
    ACTIVATIONS as Codec<unknown, unknown>,
    [{ namespace: 'ns', name: null, since: 0, upto: 9, limit: 10, docs: true }],
    [[view], [], [{ ...view, logs: [], response: { ...view.response, result: undefined } }]],
  ],
  [
    'jobs',
    JOBS as Codec<unknown, unknown>,
    [
      { op: 'get', namespace: 'ns', id: act },
      { op: 'list', namespace: 'ns', limit: 5 },
    ],
    [job, null, [job], []],
  ],
  ['beatV1', BEAT_V1 as Codec<unknown, unknown>, [[]], [[]]],
];

const wire = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;

describe('wire codecs', () => {
  for (const [name, codec, requests, replies] of REAL) {
    it(`${name}: reads what a daemon sends, rejects what is confused, never throws`, () => {
      for (const r of requests) expect(codec.request(wire(r)), `${name} request ${JSON.stringify(r)}`).toEqual(wire(r));
      for (const r of replies) expect(codec.reply(wire(r)), `${name} reply ${JSON.stringify(r)?.slice(0, 80)}`).toEqual(wire(r));
      let refused = 0;
      for (const sample of [...requests, ...replies]) {
        for (const c of typeConfused(wire(sample))) {
          // Either side may get anything: neither may throw.
          if (codec.request(c) === undefined) refused++;
          codec.reply(c);
        }
      }
      expect(refused, name).toBeGreaterThan(0);
      fc.assert(
        fc.property(fc.jsonValue(), (v) => {
          codec.request(v);
          codec.reply(v);
        }),
        { numRuns: 500 },
      );
    });
  }

  it('refuses replies of the wrong shape that requests of the same protocol would not notice', () => {
    expect(ACTIVATION.reply({ ...view, response: { status: 'fine', success: true } })).toBeUndefined();
    expect(ACTIVATION.reply({ ...view, start: '1000' })).toBeUndefined();
    expect(ACTIVATIONS.reply([view, null])).toBeUndefined();
    expect(JOBS.reply({ ...job, members: [{ instance: 'w-0' }] })).toBeUndefined();
    expect(JOBS.reply({ ...job, created: -1 })).toBeUndefined();
    expect(RUN.reply({ ok: true, freeMb: 'lots' })).toBeUndefined();
    expect(RUN.reply({ ok: 'yes' })).toBeUndefined();
    expect(CLAIM.reply({ ok: false })).toBeUndefined();
  });
});
