import { describe, expect, it } from 'vitest';
import { attemptEnded, attemptStarted, cancel, jobView, newJob, parseRestart, type JobDoc } from '../../daemon/jobs.ts';
import { PeerlessError } from '../../daemon/errors.ts';
import type { NamespaceName } from '../../daemon/ids.ts';

const job = (ids: string[], restart: number | null = null): JobDoc =>
  newJob({ namespace: 'ns' as NamespaceName, function: 'w', coordinator: 'h0', parent: null, detach: false, restart: restart === null ? null : { maxRestarts: restart }, ids, now: 0 });
const ok = { status: 'success', error: null };
const crash = { status: 'action developer error', error: 'The action did not produce a valid response and exited unexpectedly.' };

describe('job rules', () => {
  it('succeeds once every member succeeded, not before', () => {
    const j = job(['a', 'b']);
    j.status = 'running';
    j.members.forEach((m, i) => attemptStarted(m, 'h1', `act-${i}`, 1));
    expect(attemptEnded(j, j.members[0]!, ok, 2)).toBe('final');
    expect(j.status).toBe('running');
    expect(j.end).toBeNull();
    attemptEnded(j, j.members[1]!, ok, 3);
    expect(j).toMatchObject({ status: 'succeeded', end: 3, failed: null });
  });

  it('fails at the first member that fails for good, naming it and why, and ends once all ended', () => {
    const j = job(['a', 'b']);
    j.status = 'running';
    j.members.forEach((m, i) => attemptStarted(m, 'h1', `act-${i}`, 1));
    attemptEnded(j, j.members[1]!, crash, 2);
    expect(j.status).toBe('failed');
    expect(j.failed).toEqual({ instance: 'b', reason: `action developer error: ${crash.error}` });
    expect(j.end).toBeNull();
    attemptEnded(j, j.members[0]!, ok, 3);
    expect(j.end).toBe(3);
    expect(j.status).toBe('failed');
  });

  it('restarts a failed member within its budget only, and keeps earlier attempts', () => {
    const j = job(['a'], 2);
    j.status = 'running';
    const m = j.members[0]!;
    attemptStarted(m, 'h1', 'act-0', 1);
    expect(attemptEnded(j, m, crash, 2)).toBe('restart');
    expect(m.state).toBe('restarting');
    m.epoch++;
    attemptStarted(m, 'h2', 'act-1', 3);
    expect(m.attempts).toEqual(['act-0']);
    expect(attemptEnded(j, m, crash, 4)).toBe('restart');
    m.epoch++;
    attemptStarted(m, 'h1', 'act-2', 5);
    expect(attemptEnded(j, m, crash, 6)).toBe('final');
    expect(j.status).toBe('failed');
    // A success never restarts; nor does a failure once restarts were given up on.
    const k = job(['x'], 3);
    attemptStarted(k.members[0]!, 'h', 'y', 0);
    expect(attemptEnded(k, k.members[0]!, crash, 1, false)).toBe('final');
  });

  it('cancels: queued members never start, running ones end as cancelled, no restart after', () => {
    const j = job(['a', 'b', 'c'], 3);
    j.status = 'running';
    attemptStarted(j.members[0]!, 'h1', 'act-0', 1);
    attemptStarted(j.members[1]!, 'h1', 'act-1', 1);
    cancel(j, 'cancelled by the user', 2);
    expect(j).toMatchObject({ status: 'cancelled', reason: 'cancelled by the user', restart: null, end: null });
    expect(j.members[2]!.state).toBe('cancelled');
    expect(attemptEnded(j, j.members[0]!, { status: 'whisk internal error', error: 'stopped' }, 3)).toBe('final');
    expect(j.members[0]!.state).toBe('cancelled');
    attemptEnded(j, j.members[1]!, ok, 4);
    expect(j.end).toBe(4);
    expect(j.status).toBe('cancelled');
  });

  it('a failed job cancelled keeps saying it failed, and why', () => {
    const j = job(['a', 'b']);
    j.status = 'running';
    j.members.forEach((m, i) => attemptStarted(m, 'h1', `act-${i}`, 1));
    attemptEnded(j, j.members[0]!, crash, 2);
    cancel(j, 'cancelled by the user', 3);
    expect(j.status).toBe('failed');
    expect(j.reason).toMatch(/member a failed/);
  });

  it('shows live members as the map has them: running, with their published status', () => {
    const j = job(['a', 'b']);
    j.members.forEach((m, i) => attemptStarted(m, 'h1', `act-${i}`, 1));
    const v = jobView(j, (_ns, id) => (id === 'a' ? { activation: 'act-0', state: 'running', status: '42%' } : { activation: 'other', state: 'running', status: 'x' }));
    expect(v.members[0]).toMatchObject({ state: 'running', status: '42%' });
    expect(v.members[1]).toMatchObject({ state: 'starting', status: null }); // an entry of another activation is not this member
  });

  it('parses restart specs, and names the field of a bad one', () => {
    expect(parseRestart(undefined, '/q')).toBeNull();
    expect(parseRestart('no', '/q')).toBeNull();
    expect(parseRestart('on-failure', '/q')).toEqual({ maxRestarts: 3 });
    expect(parseRestart('on-failure:10', '/q')).toEqual({ maxRestarts: 10 });
    for (const bad of ['always', 'on-failure:0', 'on-failure:11', 'on-failure:', 'on-failure:-1', 'On-Failure']) {
      try {
        parseRestart(bad, '/query/restart');
        expect.unreachable(bad);
      } catch (e) {
        expect(e).toBeInstanceOf(PeerlessError);
        expect((e as PeerlessError).field).toBe('/query/restart');
      }
    }
  });
});
