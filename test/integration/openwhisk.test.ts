import { execFileSync } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import openwhisk from 'openwhisk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupHost, namespace, ROOT, startDaemon, type TestDaemon } from '../helpers/daemon.ts';

// The official Apache OpenWhisk JavaScript client (npm `openwhisk`), pointed at a real daemon: what
// its users write must work as it does against OpenWhisk. Nothing here builds a request by hand.

const HOST = `it-ow-${process.pid}`;
let d: TestDaemon;
/**
 * The client, read loosely: its declarations are narrower than what it sends and gets (an update without
 * code, Response.status as "success" | "failure"), and these tests read what comes back as JSON.
 */
type Loose = (o?: Record<string, unknown>) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
let ow: Record<'actions' | 'activations' | 'namespaces' | 'packages' | 'triggers' | 'rules' | 'feeds', Record<string, Loose>>;
let ns: string;
let key: string;

/** The OpenWhiskError a call rejects with: its HTTP status and the message the client built. */
async function failure(p: Promise<unknown>): Promise<{ statusCode: number; message: string; error: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { statusCode: number; message: string; error: Record<string, unknown> };
  }
  throw new Error('the call succeeded');
}
/** What the client returns for a 204: no body (needle hands over an empty buffer). */
const empty = (x: unknown) => x === undefined || x === '' || (Buffer.isBuffer(x) && x.length === 0);
const ann = (doc: { annotations?: { key: string; value: unknown }[] }, key: string) => doc.annotations?.find((a) => a.key === key)?.value;

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST });
  ({ ns, auth: key } = await namespace(d, `${HOST}-ns`));
  ow = openwhisk({ apihost: d.url, api_key: key, namespace: ns }) as unknown as typeof ow;
});

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

describe('the official openwhisk client', () => {
  it('creates, reads, lists, updates and deletes actions as OpenWhisk documents', async () => {
    // The client's defaults: kind nodejs:default, annotations and parameters as key/value arrays.
    const created = await ow.actions.create({
      name: 'hello',
      action: 'function main(p) { return { greeting: `hello ${p.name}`, region: p.region } }',
      params: { region: 'eu' },
      annotations: { description: 'says hello' },
      limits: { memory: 128, logs: 5 },
    });
    expect(created.exec.kind).toBe('nodejs:24');
    expect(created.version).toBe('0.0.1');
    expect(ann(created, 'exec')).toBe('nodejs:24');
    expect(ann(created, 'provide-api-key')).toBe(false);
    expect(ann(created, 'description')).toBe('says hello');
    expect(created.limits).toMatchObject({ memory: 128, logs: 5, concurrency: 1 });

    const again = await failure(ow.actions.create({ name: 'hello', action: 'function main() { return {} }' }));
    expect(again.statusCode).toBe(409);
    expect(again.message).toMatch(/resource already exists/);
    expect(typeof again.error.code).toBe('string');

    // An update merges annotations, keeps what it does not name, and bumps the version.
    const updated = await ow.actions.update({ name: 'hello', action: { annotations: [{ key: 'web-export', value: true }] } });
    expect(updated.version).toBe('0.0.2');
    expect(ann(updated, 'description')).toBe('says hello');
    expect(ann(updated, 'web-export')).toBe(true);
    expect(updated.parameters).toEqual([{ key: 'region', value: 'eu' }]);

    const got = await ow.actions.get({ name: 'hello' });
    expect(got.exec.code).toContain('hello ${p.name}');
    const bare = await ow.actions.get({ name: 'hello', code: false });
    expect(bare.exec.code).toBeUndefined();
    const list = await ow.actions.list();
    expect(list.map((a: { name: string }) => a.name)).toContain('hello');
    // OpenWhisk lists carry no exec.kind: clients read it from the exec annotation.
    expect(list.find((a: { name: string }) => a.name === 'hello').exec).toEqual({ binary: false });
    expect(await ow.actions.list({ count: true })).toEqual({ actions: 1 });

    expect(await ow.actions.invoke({ name: 'hello', params: { name: 'ow' }, blocking: true, result: true })).toEqual({ greeting: 'hello ow', region: 'eu' });

    expect((await ow.actions.delete({ name: 'hello' })).name).toBe('hello');
    const gone = await failure(ow.actions.get({ name: 'hello' }));
    expect(gone.statusCode).toBe(404);
    expect(gone.message).toMatch(/does not exist/);
  });

  it('gives init parameters to the code as its environment, and keeps final parameters from being overridden', async () => {
    await ow.actions.create({
      name: 'env',
      action: 'function main(p) { return { env: process.env.GREETING || null, arg: p.GREETING || null, x: p.x } }',
      params: { x: 1 },
      annotations: { final: true },
    });
    // The client cannot mark a parameter init; OpenWhisk's document can.
    await ow.actions.update({
      name: 'env',
      action: {
        parameters: [
          { key: 'GREETING', value: 'from init', init: true },
          { key: 'x', value: 1 },
        ],
      },
    });
    expect((await ow.actions.get({ name: 'env' })).parameters).toEqual([
      { key: 'GREETING', value: 'from init', init: true },
      { key: 'x', value: 1 },
    ]);
    expect(await ow.actions.invoke({ name: 'env', blocking: true, result: true })).toEqual({ env: 'from init', arg: null, x: 1 });
    const e = await failure(ow.actions.invoke({ name: 'env', params: { x: 2 }, blocking: true }));
    expect([e.statusCode, e.message]).toEqual([400, expect.stringMatching(/not allowed/)]);
  });

  it('takes every kind OpenWhisk clients send, and names the field of one it does not know', async () => {
    for (const [kind, stored] of [
      ['nodejs', 'nodejs'],
      ['nodejs:default', 'nodejs:24'],
      ['nodejs:24', 'nodejs:24'],
      ['python', 'python'],
      ['python:default', 'python:3.11'],
      ['python:3', 'python:3'],
      ['python:3.11', 'python:3.11'],
    ]) {
      const code = kind!.startsWith('python') ? 'def main(args):\n    return {"kind": "py"}\n' : 'function main() { return { kind: "js" } }';
      const a = await ow.actions.create({ name: `k-${kind!.replace(':', '-')}`, action: code, kind });
      expect(a.exec.kind, kind).toBe(stored);
    }
    expect(await ow.actions.invoke({ name: 'k-python-3', blocking: true, result: true })).toEqual({ kind: 'py' });
    const bad = await failure(ow.actions.create({ name: 'k-bad', action: 'x', kind: 'cobol:1' }));
    expect(bad.statusCode).toBe(400);
    expect(bad.message).toMatch(/'cobol:1' is not supported.*\/body\/exec\/kind/);
  });

  it('invokes blocking and not, and reads activations, their results and logs', async () => {
    await ow.actions.create({ name: 'logs', action: 'function main(p) { console.log("seen", p.n); return { n: p.n * 2 } }' });
    const full = await ow.actions.invoke({ name: 'logs', params: { n: 21 }, blocking: true });
    expect(full.response).toMatchObject({ status: 'success', success: true, result: { n: 42 } });
    const { activationId } = await ow.actions.invoke({ name: 'logs', params: { n: 1 } });
    expect(activationId).toMatch(/^[0-9a-f]{32}$/);
    const deadline = Date.now() + 20_000;
    let a;
    while (!a && Date.now() < deadline) a = await ow.activations.get({ name: activationId }).catch(() => undefined);
    while (a.response.status === 'running' && Date.now() < deadline) a = await ow.activations.get({ name: activationId });
    expect(a.response.result).toEqual({ n: 2 });
    expect((await ow.activations.result({ name: activationId })).result).toEqual({ n: 2 });
    expect((await ow.activations.logs({ name: activationId })).logs.join('\n')).toMatch(/seen 1/);
    const listed = await ow.activations.list({ name: 'logs', limit: 5 });
    expect(listed.map((x: { activationId: string }) => x.activationId)).toContain(activationId);
    expect(await ow.activations.list({ name: 'logs', count: true })).toEqual({ activations: 2 });
    expect((await failure(ow.activations.list({ count: true, docs: true }))).message).toMatch(/'docs' is not permitted with 'count'/);
    // A blocking call that waits less than the action runs answers 202 with the ID, as OpenWhisk's ?timeout= does.
    await ow.actions.create({ name: 'slow', action: 'async function main() { await new Promise(r => setTimeout(r, 1500)); return { done: true } }' });
    expect((await ow.actions.invoke({ name: 'slow', blocking: true })).response.result).toEqual({ done: true });
    const r = await fetch(`${d.url}/api/v1/namespaces/${ns}/actions/slow?blocking=true&timeout=100`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(key).toString('base64')}` } });
    expect(r.status).toBe(202);
    expect(r.headers.get('x-openwhisk-activation-id')).toBe(((await r.json()) as { activationId: string }).activationId);
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it("shows an action's own error as the client's message, and a result that is not a dictionary as the developer's error", async () => {
    await ow.actions.create({ name: 'fails', action: 'function main() { return { error: "no such thing" } }' });
    const e = await failure(ow.actions.invoke({ name: 'fails', blocking: true, result: true }));
    expect(e.statusCode).toBe(502);
    expect(e.message).toMatch(/no such thing/);
    await ow.actions.create({ name: 'scalar', action: 'function main() { return 42 }' });
    const s = await failure(ow.actions.invoke({ name: 'scalar', blocking: true }));
    expect(s.statusCode).toBe(502);
    expect(s.message).toMatch(/did not return a dictionary or array/);
    await ow.actions.create({ name: 'array', action: 'function main() { return [1, 2, 3] }' });
    expect(await ow.actions.invoke({ name: 'array', blocking: true, result: true })).toEqual([1, 2, 3]);
  });

  it('runs sequences: each component on the previous result, stopping at the first error', async () => {
    await ow.actions.create({ name: 'inc', action: 'function main(p) { return { n: (p.n || 0) + 1 } }' });
    await ow.actions.create({ name: 'dbl', action: 'function main(p) { return { n: p.n * 2 } }' });
    await ow.actions.create({ name: 'boom', action: 'function main(p) { return { error: `boom at ${p.n}` } }' });
    const seq = await ow.actions.create({ name: 'calc', sequence: [`/${ns}/inc`, '/_/dbl', 'inc'] });
    expect(seq.exec).toEqual({ kind: 'sequence', components: [`/${ns}/inc`, `/${ns}/dbl`, `/${ns}/inc`], binary: false });
    const out = await ow.actions.invoke({ name: 'calc', params: { n: 4 }, blocking: true });
    expect(out.response.result).toEqual({ n: 11 });
    expect(out.logs).toHaveLength(3);
    const first = await ow.activations.get({ name: out.logs[0] });
    expect(first.cause).toBe(out.activationId);
    expect(ann(first, 'causedBy')).toBe('sequence');
    expect(ann(out, 'kind')).toBe('sequence');
    expect(ann(out, 'topmost')).toBe(true);

    // Nested, and failing in the middle: the rest never runs.
    await ow.actions.create({ name: 'outer', sequence: ['/_/calc', '/_/boom', '/_/inc'] });
    const bad = await failure(ow.actions.invoke({ name: 'outer', params: { n: 0 }, blocking: true }));
    expect(bad.statusCode).toBe(502);
    expect(bad.message).toMatch(/boom at 3/);
    const rec = bad.error as { logs: string[]; response: { status: string } };
    expect(rec.logs).toHaveLength(2);
    expect(rec.response.status).toBe('application error');

    expect((await failure(ow.actions.create({ name: 'loop', sequence: ['/_/loop'] }))).statusCode).toBe(400);
    expect((await failure(ow.actions.create({ name: 'nowhere', sequence: ['/_/missing'] }))).message).toMatch(/does not exist.*components\/0/);
  });

  it('fires triggers through their active rules, and enables and disables rules', async () => {
    await ow.actions.create({ name: 'on-event', action: 'function main(p) { return { from: p.from, n: p.n } }' });
    const t = await ow.triggers.create({
      name: 'ticks',
      trigger: {
        parameters: [
          { key: 'from', value: 'trigger' },
          { key: 'n', value: 0 },
        ],
      },
    });
    expect(t).toMatchObject({
      name: 'ticks',
      namespace: ns,
      version: '0.0.1',
      parameters: [
        { key: 'from', value: 'trigger' },
        { key: 'n', value: 0 },
      ],
    });
    expect((await failure(ow.triggers.create({ name: 'ticks' }))).statusCode).toBe(409);
    // No rule yet: nothing to run, and OpenWhisk's 204.
    expect(empty(await ow.triggers.invoke({ name: 'ticks', params: { n: 1 } }))).toBe(true);

    const r = await ow.rules.create({ name: 'ticks-to-event', trigger: 'ticks', action: 'on-event' });
    expect(r).toMatchObject({ status: 'active', trigger: { path: ns, name: 'ticks' }, action: { path: ns, name: 'on-event' } });
    expect((await ow.triggers.get({ name: 'ticks' })).rules).toEqual({ [`${ns}/ticks-to-event`]: { action: { path: ns, name: 'on-event' }, status: 'active' } });
    const fired = await ow.triggers.invoke({ name: 'ticks', params: { n: 7 } });
    expect(fired.activationId).toMatch(/^[0-9a-f]{32}$/);
    const record = await ow.activations.get({ name: fired.activationId });
    expect(record.response.result).toEqual({ n: 7 });
    const line = JSON.parse(record.logs[0]);
    expect(line).toMatchObject({ statusCode: 0, success: true, rule: `${ns}/ticks-to-event`, action: `/${ns}/on-event` });
    const deadline = Date.now() + 20_000;
    let ran;
    while (Date.now() < deadline && !(ran?.response?.status && ran.response.status !== 'running')) ran = await ow.activations.get({ name: line.activationId }).catch(() => undefined);
    expect(ran.response.result).toEqual({ from: 'trigger', n: 7 });

    // Lists leave the status out, as OpenWhisk's do; disabled, the rule runs nothing.
    expect((await ow.rules.list()).map((x: Record<string, unknown>) => 'status' in x)).toEqual([false]);
    await ow.rules.disable({ name: 'ticks-to-event' });
    expect((await ow.rules.get({ name: 'ticks-to-event' })).status).toBe('inactive');
    expect(empty(await ow.triggers.invoke({ name: 'ticks' }))).toBe(true);
    await ow.rules.enable({ name: 'ticks-to-event' });
    expect((await ow.rules.get({ name: 'ticks-to-event' })).status).toBe('active');

    const bad = await failure(ow.rules.create({ name: 'dangling', trigger: 'ticks', action: 'nothing-here' }));
    expect([bad.statusCode, bad.message]).toEqual([400, expect.stringMatching(/action \/.*\/nothing-here does not exist/)]);
    expect(await ow.triggers.list({ count: true })).toEqual({ triggers: 1 });
    expect((await ow.rules.delete({ name: 'ticks-to-event' })).name).toBe('ticks-to-event');
    expect((await ow.triggers.delete({ name: 'ticks' })).name).toBe('ticks');
  });

  it('reaches a feed action with the lifecycle parameters the client sends', async () => {
    await ow.actions.create({ name: 'feed', action: 'function main(p) { return { event: p.lifecycleEvent, trigger: p.triggerName, keyed: typeof p.authKey === "string" } }' });
    const r = await ow.feeds.create({ name: 'feed', trigger: 'someday', params: { cron: '* * * * *' } });
    expect(r.response.result).toEqual({ event: 'CREATE', trigger: `/${ns}/someday`, keyed: true });
    expect((await ow.feeds.delete({ name: 'feed', trigger: 'someday' })).response.result.event).toBe('DELETE');
  });

  it("keeps actions in packages, with the package's parameters under theirs, and binds packages", async () => {
    const pkg = await ow.packages.create({
      name: 'utils',
      package: {
        parameters: [
          { key: 'greeting', value: 'hi' },
          { key: 'who', value: 'world' },
        ],
      },
    });
    expect(pkg).toMatchObject({ name: 'utils', binding: {}, version: '0.0.1' });
    const a = await ow.actions.create({ name: 'utils/greet', action: 'function main(p) { return { said: `${p.greeting} ${p.who}` } }', params: { who: 'action' } });
    expect([a.namespace, a.name]).toEqual([`${ns}/utils`, 'greet']);
    expect(await ow.actions.invoke({ name: 'utils/greet', blocking: true, result: true })).toEqual({ said: 'hi action' });
    expect(await ow.actions.invoke({ name: 'utils/greet', params: { who: 'caller' }, blocking: true, result: true })).toEqual({ said: 'hi caller' });

    // A binding: its parameters over the package's, the package's actions through it.
    const b = await ow.packages.create({ name: 'utils-fr', package: { binding: { namespace: ns, name: 'utils' }, parameters: [{ key: 'greeting', value: 'salut' }] } });
    expect(b.binding).toEqual({ namespace: ns, name: 'utils' });
    expect(await ow.actions.invoke({ name: 'utils-fr/greet', blocking: true, result: true })).toEqual({ said: 'salut action' });
    expect((await failure(ow.actions.create({ name: 'utils-fr/other', action: 'function main() { return {} }' }))).message).toMatch(/not permitted on package binding/);
    expect((await failure(ow.packages.create({ name: 'bad-binding', package: { binding: { namespace: ns, name: 'nothing' } } }))).message).toMatch(/does not exist/);

    const got = await ow.packages.get({ name: 'utils' });
    expect(got.actions.map((x: { name: string }) => x.name)).toEqual(['greet']);
    expect((await ow.packages.get({ name: 'utils-fr' })).actions.map((x: { name: string }) => x.name)).toEqual(['greet']);
    const listed = await ow.packages.list();
    expect(listed.find((x: { name: string }) => x.name === 'utils-fr').binding).toEqual({ namespace: ns, name: 'utils' });
    expect(listed.find((x: { name: string }) => x.name === 'utils').binding).toBe(false);

    // Sequences take package actions as components.
    await ow.actions.create({ name: 'shout', action: 'function main(p) { return { said: p.said.toUpperCase() } }' });
    await ow.actions.create({ name: 'greet-loud', sequence: [`/${ns}/utils/greet`, '/_/shout'] });
    expect(await ow.actions.invoke({ name: 'greet-loud', blocking: true, result: true })).toEqual({ said: 'HI ACTION' });

    expect((await failure(ow.packages.delete({ name: 'utils' }))).statusCode).toBe(409);
    expect((await failure(ow.packages.create({ name: 'default' }))).statusCode).toBe(400);
    await ow.actions.delete({ name: 'greet-loud' });
    await ow.actions.delete({ name: 'utils/greet' });
    await ow.packages.delete({ name: 'utils-fr' });
    expect((await ow.packages.delete({ name: 'utils' })).name).toBe('utils');
  });

  it('updates packages, triggers and rules, and reads and updates through feeds, as the client calls them', async () => {
    await ow.packages.create({ name: 'kit', package: { parameters: [{ key: 'a', value: 1 }] } });
    const p2 = await ow.packages.update({ name: 'kit', package: { parameters: [{ key: 'a', value: 2 }], publish: true } });
    expect([p2.version, p2.publish, p2.parameters]).toEqual(['0.0.2', true, [{ key: 'a', value: 2 }]]);
    await ow.triggers.create({ name: 'tt' });
    expect((await ow.triggers.update({ name: 'tt', trigger: { parameters: [{ key: 'b', value: 3 }] } })).parameters).toEqual([{ key: 'b', value: 3 }]);
    await ow.actions.create({ name: 'first', action: 'function main() { return { which: 1 } }' });
    await ow.actions.create({ name: 'second', action: 'function main() { return { which: 2 } }' });
    await ow.rules.create({ name: 'rr', trigger: 'tt', action: 'first' });
    const moved = await ow.rules.update({ name: 'rr', trigger: 'tt', action: 'second' });
    expect([moved.action, moved.status, moved.version]).toEqual([{ path: ns, name: 'second' }, 'active', '0.0.2']);
    // Every CRUD method also takes a list, as the client runs them at once.
    const both = await ow.actions.get([{ name: 'first' }, { name: 'second' }] as unknown as Record<string, unknown>);
    expect(both.map((a: { name: string }) => a.name)).toEqual(['first', 'second']);
    await ow.actions.create({ name: 'feed2', action: 'function main(p) { return { event: p.lifecycleEvent } }' });
    expect((await ow.feeds.get({ name: 'feed2', trigger: 'tt' })).response.result).toEqual({ event: 'READ' });
    expect((await ow.feeds.update({ name: 'feed2', trigger: 'tt' })).response.result).toEqual({ event: 'UPDATE' });
    await ow.rules.delete({ name: 'rr' });
    await ow.triggers.delete({ name: 'tt' });
    await ow.packages.delete({ name: 'kit' });
  });

  it('reads a whole namespace as the client does', async () => {
    const all = await ow.namespaces.get();
    expect(Object.keys(all).sort()).toEqual(['actions', 'packages', 'rules', 'triggers']);
    expect(all.actions.length).toBeGreaterThan(0);
  });

  it('runs zip actions in both languages, with what they ship, and says what is wrong with a bad archive', async () => {
    execFileSync(process.execPath, [join(ROOT, 'examples/zip/build.mjs')]);
    // The client sends a Buffer as base64 with no flag: the server knows an archive when it sees one.
    const node = await ow.actions.create({ name: 'uptime', action: readFileSync(join(ROOT, 'examples/zip/node-action.zip')), kind: 'nodejs:default' });
    expect(node.exec.binary).toBe(true);
    expect(await ow.actions.invoke({ name: 'uptime', params: { ms: 93_784_000 }, blocking: true, result: true })).toEqual({ ms: 93_784_000, human: '1 day', short: '1d' });
    await ow.actions.create({ name: 'stats', action: readFileSync(join(ROOT, 'examples/zip/python-action.zip')), kind: 'python:3' });
    expect(await ow.actions.invoke({ name: 'stats', params: { text: 'a b a c a b' }, blocking: true, result: true })).toEqual({ words: 6, distinct: 3, top: ['a', 'b', 'c'] });
    expect((await ow.actions.get({ name: 'stats' })).exec.code).toBe(readFileSync(join(ROOT, 'examples/zip/python-action.zip')).toString('base64'));

    const noEntry = Buffer.from(zipSync({ 'lib/helper.js': strToU8('module.exports = 1') }));
    await ow.actions.create({ name: 'no-entry', action: noEntry, kind: 'nodejs:24' });
    const e1 = await failure(ow.actions.invoke({ name: 'no-entry', blocking: true }));
    expect([e1.statusCode, e1.message]).toEqual([502, expect.stringMatching(/must contain either package.json or index.js/)]);
    const truncated = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(64, 7)]);
    await ow.actions.create({ name: 'truncated', action: truncated, kind: 'python:3.11' });
    const e2 = await failure(ow.actions.invoke({ name: 'truncated', blocking: true }));
    expect([e2.statusCode, e2.message]).toEqual([502, expect.stringMatching(/error uncompressing the action archive/)]);
  });

  it('lists namespaces', async () => {
    expect(await ow.namespaces.list()).toEqual([ns]);
  });
});

describe('web actions', () => {
  const web = (path: string, init: RequestInit = {}) => fetch(`${d.url}/api/v1/web/${ns}/default/${path}`, init);
  const echo = `function main(p) {
    const { __ow_headers: h, ...rest } = p;
    if (p.fail) return { error: { statusCode: 418, body: 'no' } };
    if (p.__ow_path === '/img') return { headers: { 'content-type': 'image/png' }, body: Buffer.from([137, 80, 78, 71]).toString('base64') };
    if (p.__ow_path === '/status') return { statusCode: 201, headers: { 'x-made': 'yes' }, body: { made: true } };
    return { ...rest, ua: h['user-agent'], html: '<p>hi</p>', svg: '<svg/>', text: 'plain', body: undefined };
  }`;

  beforeAll(async () => {
    await ow.actions.create({ name: 'echo', action: echo, params: { fixed: 'f' }, annotations: { 'web-export': true, final: true } });
    await ow.actions.create({
      name: 'raw',
      action: 'function main(p) { return { q: p.__ow_query, b: Buffer.from(p.__ow_body, "base64").toString() } }',
      annotations: { 'web-export': true, 'raw-http': true },
    });
    await ow.actions.create({ name: 'secret', action: 'function main(p) { return { user: p.__ow_user || null } }', annotations: { 'web-export': true, 'require-whisk-auth': 'opensesame' } });
    await ow.actions.create({ name: 'private', action: 'function main() { return {} }' });
  });

  it('answers each extension as OpenWhisk does, with the request as __ow_ parameters', async () => {
    const j = await web('echo.json/some/where?x=1', { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'tester' }, body: JSON.stringify({ y: 2 }) });
    expect(j.status).toBe(200);
    expect(j.headers.get('x-openwhisk-activation-id')).toMatch(/^[0-9a-f]{32}$/);
    expect(j.headers.get('access-control-allow-origin')).toBe('*');
    expect(await j.json()).toMatchObject({ x: '1', y: 2, fixed: 'f', __ow_method: 'post', __ow_path: '/some/where', ua: 'tester' });
    expect(await (await web('echo.html')).text()).toBe('<p>hi</p>');
    const svg = await web('echo.svg');
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    expect(await svg.text()).toBe('<svg/>');
    expect(await (await web('echo.text')).text()).toBe('plain');
    const made = await web('echo/status');
    expect([made.status, made.headers.get('x-made'), await made.json()]).toEqual([201, 'yes', { made: true }]);
    const img = await web('echo.http/img');
    expect(img.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await img.arrayBuffer())]).toEqual([137, 80, 78, 71]);
    // An application error's `error` is the answer; final parameters cannot be overridden; __ow_ names are reserved.
    const failed = await web('echo.http?fail=1');
    expect([failed.status, await failed.text()]).toEqual([418, 'no']);
    expect((await web('echo.json?fixed=mine')).status).toBe(400);
    const reserved = await web('echo.json?__ow_user=me');
    expect(reserved.status).toBe(400);
    expect(((await reserved.json()) as { error: string }).error).toMatch(/reserved properties/);
    expect((await web('echo', { method: 'OPTIONS' })).status).toBe(200);
  });

  it('hands raw-http actions the query and body untouched, and keeps secured and unexported actions shut', async () => {
    const r = await web('raw.json?a=1&b=two', { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'raw body' });
    expect(await r.json()).toEqual({ q: 'a=1&b=two', b: 'raw body' });
    expect((await web('secret.json')).status).toBe(401);
    expect((await web('secret.json', { headers: { 'x-require-whisk-auth': 'wrong' } })).status).toBe(401);
    const ok = await web('secret.json', { headers: { 'x-require-whisk-auth': 'opensesame' } });
    expect([ok.status, await ok.json()]).toEqual([200, { user: null }]);
    for (const p of ['private.json', 'missing.json']) {
      const x = await web(p);
      expect(x.status).toBe(404);
      expect(((await x.json()) as { error: string }).error).toMatch(/^The requested resource does not exist\./);
    }
  });
});

describe('TLS', () => {
  it('serves the API over HTTPS with a self-signed pair it makes, which the client takes with ignore_certs', async () => {
    const host = `${HOST}-tls`;
    const t = await startDaemon({ hostId: host, flags: ['--tls', 'true'] });
    try {
      const key = statSync(join(t.dataDir, 'tls/key.pem'));
      expect(key.mode & 0o777).toBe(0o600);
      // The admin makes a namespace over HTTPS, trusting the certificate the daemon made.
      const tns = `${host}-ns`;
      const made = await new Promise<{ auth: string }>((resolve, reject) => {
        const req = httpsRequest(
          `${t.url}/api/v1/namespaces/${tns}`,
          {
            method: 'PUT',
            ca: readFileSync(join(t.dataDir, 'tls/cert.pem')),
            headers: { authorization: `Basic ${Buffer.from(t.admin).toString('base64')}` },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(JSON.parse(text) as { auth: string }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      const auth = made.auth;
      // No scheme: the client assumes https://, as with OpenWhisk.
      const secure = openwhisk({ apihost: `127.0.0.1:${t.port}`, api_key: auth, ignore_certs: true }) as unknown as typeof ow;
      expect(await secure.namespaces.list()).toEqual([tns]);
      const strict = openwhisk({ apihost: `127.0.0.1:${t.port}`, api_key: auth }) as unknown as typeof ow;
      expect((await failure(strict.namespaces.list())).message).toMatch(/self.signed|certificate/i);
    } finally {
      await t.stop();
      await cleanupHost(host, t.dataDir);
    }
  });
});
