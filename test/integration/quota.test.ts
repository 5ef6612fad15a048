import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupHost, deploy, invoke, namespace, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Per-namespace quotas: over the rate or the concurrency, a 429 problem with
// Retry-After, never a crash, and no activation is started or lost for it.

const HOST = `it-quota-${process.pid}`;
let d: TestDaemon;
let call: Api;
let ns: string;
let auth: string;

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
    const statuses: number[] = [];
    let retry = '';
    for (let i = 0; i < 6; i++) {
      const r = await raw('blocking=true&result=true');
      statuses.push(r.status);
      if (r.status === 429) retry = r.headers.get('retry-after') ?? '';
      await r.text();
    }
    // 2 used above, 4 more fit in the minute's 6, then 429s.
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.slice(4)).toEqual([429, 429]);
    expect(Number(retry)).toBeGreaterThan(0);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    const acts = (await call('GET', `/api/v1/namespaces/${ns}/activations?limit=200`)).body;
    expect(acts).toHaveLength(6);
    expect(acts.every((x: { response: { status: string } }) => x.response.status === 'success')).toBe(true);
  });
});
