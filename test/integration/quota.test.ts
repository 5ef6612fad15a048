import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, CLI, cleanupHost, deploy, invoke, namespace, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Per-namespace quotas: over the rate or the concurrency, a 429 problem with
// Retry-After, never a crash, and no activation is started or lost for it.

const HOST = `it-quota-${process.pid}`;
let d: TestDaemon;
let call: Api;
let ns: string;
let auth: string;
/** when the first test first drew on the namespace's bucket */
let firstDraw = 0;

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST, flags: ['--invocations-per-minute', '6', '--concurrent-activations', '2'] });
  ({ call, ns, auth } = await namespace(d, `${HOST}-a`));
  await deploy(call, ns, 'slow', { kind: 'nodejs', code: 'async function main() { await new Promise(r => setTimeout(r, 1500)); return { ok: 1 } }' });
});

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

const raw = (q = 'blocking=false') =>
  fetch(`${d.url}/api/v1/namespaces/${ns}/actions/slow?${q}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}`, 'content-type': 'application/json' },
    body: '{}',
  });

describe('namespace quotas', () => {
  it('refuses activations beyond the concurrency limit with 429 and Retry-After', async () => {
    firstDraw = Date.now();
    const a = await invoke(call, ns, 'slow', {}, 'blocking=false');
    const b = await invoke(call, ns, 'slow', {}, 'blocking=false');
    expect([a.status, b.status]).toEqual([202, 202]);
    const c = await raw();
    expect(c.status).toBe(429);
    expect(c.headers.get('retry-after')).toBe('1');
    expect(c.headers.get('content-type')).toContain('application/problem+json');
    expect(((await c.json()) as { detail: string }).detail).toMatch(/at most 2 activations at once/);
    // A group larger than the room is refused whole.
    expect((await raw('blocking=false&instances=g-0,g-1,g-2')).status).toBe(429);
    for (const x of [a, b]) {
      await waitFor(async () => (await call('GET', `/api/v1/namespaces/${ns}/activations/${x.body.activationId}`)).body.response.status === 'success', 20_000, 'done');
    }
  });

  it('refuses activations beyond the rate with a retry time, and loses nothing', async () => {
    // The bucket refills one token every 10 s (6 a minute), so what fits depends on how long the calls
    // take: 4 (6, less the 2 used above) plus one per 10 s since the bucket was first drawn on.
    const statuses: number[] = [];
    let retry = '';
    for (let i = 0; i < 12 && statuses.slice(-2).join() !== '429,429'; i++) {
      const r = await raw('blocking=true&result=true');
      statuses.push(r.status);
      if (r.status === 429) retry = r.headers.get('retry-after') ?? '';
      await r.text();
    }
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThanOrEqual(4);
    expect(ok).toBeLessThanOrEqual(4 + Math.ceil((Date.now() - firstDraw) / 10_000));
    expect(statuses.slice(0, ok)).toEqual(Array(ok).fill(200));
    expect(statuses.slice(ok)).toEqual([429, 429]);
    expect(Number(retry)).toBeGreaterThan(0);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    const acts = (await call('GET', `/api/v1/namespaces/${ns}/activations?limit=200`)).body;
    expect(acts).toHaveLength(2 + ok);
    expect(acts.every((x: { response: { status: string } }) => x.response.status === 'success')).toBe(true);
  });

  it("takes a namespace's own quota, set by the admin, over the daemon's default, and leaves others alone", async () => {
    const admin = api(d.url, d.admin);
    const other = await namespace(d, `${HOST}-b`);
    await deploy(other.call, other.ns, 'slow', { kind: 'nodejs', code: 'async function main() { await new Promise(r => setTimeout(r, 1500)); return { ok: 1 } }' });
    expect((await other.call('GET', `/api/v1/namespaces/${other.ns}/limits`)).body).toMatchObject({
      namespace: other.ns,
      invocationsPerMinute: 6,
      concurrentActivations: 2,
      own: false,
      concurrentInvocations: 2,
    });
    // Only the admin sets it; values are checked and named.
    expect((await other.call('PUT', `/api/v1/namespaces/${other.ns}/limits`, { invocationsPerMinute: 0, concurrentActivations: 1 })).status).toBe(403);
    const bad = await admin('PUT', `/api/v1/namespaces/${other.ns}/limits`, { invocationsPerMinute: -1, concurrentActivations: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('/body/invocationsPerMinute');
    const set = await admin('PUT', `/api/v1/namespaces/${other.ns}/limits`, { invocationsPerMinute: 0, concurrentActivations: 1 });
    expect(set.body).toMatchObject({ namespace: other.ns, invocationsPerMinute: 0, concurrentActivations: 1, own: true });
    expect((await invoke(other.call, other.ns, 'slow', {}, 'blocking=false')).status).toBe(202);
    const second = await invoke(other.call, other.ns, 'slow', {}, 'blocking=false');
    expect(second.status).toBe(429);
    expect(second.body.detail).toMatch(/at most 1 activations at once/);
    // The CLI reads and sets the same.
    const cli = (args: string[]) => execFileSync(process.execPath, [CLI, ...args, '--apihost', d.url, '--auth', d.admin], { encoding: 'utf8' }).trim();
    expect(cli(['namespace', 'limits', other.ns, '--per-minute', '100'])).toBe(`${other.ns}: 100 invocations a minute, 1 at once (its own)`);
    expect((await admin('GET', `/api/v1/namespaces/${other.ns}/limits`)).body.invocationsPerMinute).toBe(100);
  });
});
