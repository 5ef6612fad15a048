import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupHost, CLI, ROOT, startDaemon, type TestDaemon } from '../helpers/daemon.ts';

// The `peerless` command against a real daemon, as a user types it.

const HOST = `it-cli-${process.pid}`;
const exec = promisify(execFile);
let d: TestDaemon;
let env: NodeJS.ProcessEnv;
const tmp = mkdtempSync(join(tmpdir(), 'peerless-cli-'));

async function peerless(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { env, cwd: ROOT });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST });
  // An empty config dir, so the user's own ~/.config never leaks into the test.
  env = { ...process.env, PEERLESS_APIHOST: d.url, PEERLESS_AUTH: d.admin, XDG_CONFIG_HOME: tmp, PEERLESS_NAMESPACE: '' };
  delete env.PEERLESS_NAMESPACE;
});

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
  rmSync(tmp, { recursive: true, force: true });
});

describe('peerless CLI', () => {
  const ns = `${HOST}-a`;
  let nsAuth = '';

  it('manages namespaces with the admin key', async () => {
    const c = await peerless('namespace', 'create', ns, '--json');
    expect(c.code).toBe(0);
    nsAuth = JSON.parse(c.stdout).auth;
    expect(nsAuth).toMatch(/^[0-9a-f-]{36}:[A-Za-z0-9_-]{43}$/);
    expect((await peerless('namespace', 'list')).stdout.split('\n')).toContain(ns);
    const dup = await peerless('namespace', 'create', ns);
    expect(dup.code).toBe(1);
    expect(dup.stderr.trim().split('\n')).toHaveLength(1);
    expect(dup.stderr).toMatch(/^error: namespace .* already exists/);
  });

  it('deploys and invokes fib from examples/ in Node.js and Python (832040)', async () => {
    env.PEERLESS_AUTH = nsAuth;
    expect((await peerless('fn', 'create', 'fib', 'examples/fib/fib.js')).stdout).toContain('ok: created function fib');
    expect((await peerless('fn', 'create', 'fib-py', 'examples/fib/fib.py', '--memory', '128', '--timeout', '20')).code).toBe(0);
    const r = await peerless('fn', 'invoke', 'fib', '-p', 'n', '30', '--result');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ n: 30, fib: 832040 });
    const py = await peerless('fn', 'invoke', 'fib-py', '-p', 'n', '30', '--result');
    expect(JSON.parse(py.stdout)).toEqual({ n: 30, fib: 832040 });
    const got = JSON.parse((await peerless('fn', 'get', 'fib-py', '--json')).stdout);
    expect(got).toMatchObject({ name: 'fib-py', limits: { memory: 128, timeout: 20000 }, exec: { kind: 'python' } });
    expect((await peerless('fn', 'list')).stdout).toMatch(/fib\s+nodejs/);
  });

  it('takes parameters from -p and from a -P file, and default parameters from create', async () => {
    writeFileSync(join(tmp, 'echo.js'), 'function main(p) { return p }');
    writeFileSync(join(tmp, 'params.json'), JSON.stringify({ fromFile: [1, 2], over: 'file' }));
    await peerless('fn', 'create', 'echo', join(tmp, 'echo.js'), '-p', 'dflt', 'yes');
    const r = await peerless('fn', 'invoke', 'echo', '-P', join(tmp, 'params.json'), '-p', 'over', 'flag', '-p', 'num', '42', '--result');
    expect(JSON.parse(r.stdout)).toEqual({ dflt: 'yes', fromFile: [1, 2], over: 'flag', num: 42 });
  });

  it('reads activations: list, get, result, logs', async () => {
    writeFileSync(join(tmp, 'talk.py'), 'def main(p):\n    print("said", p.get("w"))\n    return {"w": p.get("w")}\n');
    await peerless('fn', 'create', 'talk', join(tmp, 'talk.py'));
    const inv = await peerless('fn', 'invoke', 'talk', '-p', 'w', 'hello');
    expect(inv.stdout).toMatch(/^ok: invoked talk with id [0-9a-f]{32}$/m);
    const id = /id ([0-9a-f]{32})/.exec(inv.stdout)![1]!;
    let got: { response: { status: string } } | undefined;
    for (let i = 0; i < 100 && got?.response.status !== 'success'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      got = JSON.parse((await peerless('activation', 'get', id, '--json')).stdout);
    }
    expect(got!.response.status).toBe('success');
    expect(JSON.parse((await peerless('activation', 'result', id)).stdout)).toEqual({ w: 'hello' });
    expect((await peerless('activation', 'logs', id)).stdout).toMatch(/stdout: said hello/);
    expect((await peerless('activation', 'list', 'talk')).stdout).toContain(id);
  });

  it('shows the live numbers in the terminal with top: this daemon, its last minute, its activations', async () => {
    const t = await peerless('top', '--once');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`^peerless top · ${HOST} · `));
    expect(t.stdout).toMatch(new RegExp(`^${HOST} \\*\\s+up\\s`, 'm'));
    // The activations of the tests before this one are counted and listed.
    const minute = /last minute: (\d+) invocations/.exec(t.stdout);
    expect(Number(minute?.[1])).toBeGreaterThan(0);
    expect(t.stdout).toMatch(/\/talk\s+\S+\s+success/);
    const bad = await exec(process.execPath, [CLI, 'top', '--once'], { env: { ...env, PEERLESS_AUTH: 'nope:nope' } }).catch((e) => e as { code: number; stderr: string });
    expect((bad as { code: number }).code).not.toBe(0);
  });

  it('fails with a non-zero exit and a one-line reason', async () => {
    const missing = await peerless('fn', 'invoke', 'nope', '--result');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: function nope does not exist \(\/params\/name\)\n$/);
    writeFileSync(join(tmp, 'bad.js'), 'function main() { throw new Error("kaput") }');
    await peerless('fn', 'create', 'bad', join(tmp, 'bad.js'));
    const failed = await peerless('fn', 'invoke', 'bad', '--result');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('kaput');
    const usage = await peerless('fn', 'create', 'x');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: /);
    const unreachable = await exec(process.execPath, [CLI, 'fn', 'list'], { env: { ...env, PEERLESS_APIHOST: 'http://127.0.0.1:1' } }).catch((e) => e);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach the daemon/);
  });

  it('shows the address map and reports a missing instance', async () => {
    const list = await peerless('instances');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^map version \d+, 0 instances$/m);
    const missing = await peerless('instance', 'get', 'nobody');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: instance nobody does not exist/);
    writeFileSync(join(tmp, 'grp.js'), 'function main() { return { me: process.env.__OW_PEERLESS_INSTANCE } }');
    await peerless('fn', 'create', 'grp', join(tmp, 'grp.js'));
    // Unquoted, the shell would have expanded the braces into separate words; both forms work.
    const r = await peerless('fn', 'invoke', 'grp', '--instances', 'm-0', 'm-1', 'm-2', '--result');
    expect(
      JSON.parse(r.stdout)
        .activations.map((a: { me: string }) => a.me)
        .sort(),
    ).toEqual(['m-0', 'm-1', 'm-2']);
    const q = await peerless('fn', 'invoke', 'grp', '--instances', 'n-{0..1}', '--result');
    expect(JSON.parse(q.stdout).activations).toHaveLength(2);
  });

  it('ends a daemon that could not start, with the reason, though its cluster node had started', async () => {
    // The API port is taken: the failure comes after the cluster node (a live libp2p node) is up.
    const dir = mkdtempSync(join(tmpdir(), 'peerless-taken-'));
    const taken = new URL(d.url).port;
    const t0 = Date.now();
    const r = await exec(
      process.execPath,
      [CLI, 'daemon', '--data-dir', dir, '--port', taken, '--host-id', `${HOST}-taken`, '--prewarm-nodejs', '0', '--cluster-key', 'a'.repeat(64), '--cluster-listen', '/ip4/127.0.0.1/tcp/0'],
      { env, timeout: 60_000 },
    ).catch((e) => e as { code: number; stderr: string; killed: boolean });
    expect(r).toMatchObject({ code: 1, killed: false });
    expect(r.stderr).toMatch(/^error: the daemon could not start: listen EADDRINUSE.*\n$/);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await cleanupHost(`${HOST}-taken`, dir);
  });

  it("speaks wsk's words: actions with --web, packages, triggers, rules, namespace and property", async () => {
    env.PEERLESS_AUTH = nsAuth;
    const hello = join(tmp, 'hello.js');
    writeFileSync(hello, 'function main(p) { return { hello: p.name || "world", greeting: p.greeting } }');
    expect((await peerless('action', 'create', 'hello', hello, '--web', 'true', '-m', '128', '-t', '3000', '-a', 'description', 'says hello')).stdout).toContain('ok: created action hello');
    const got = JSON.parse((await peerless('action', 'get', 'hello', '--json')).stdout);
    expect(got.limits).toMatchObject({ memory: 128, timeout: 3000 });
    expect(got.annotations).toEqual(
      expect.arrayContaining([
        { key: 'web-export', value: true },
        { key: 'final', value: true },
        { key: 'description', value: 'says hello' },
        { key: 'exec', value: 'nodejs:24' },
      ]),
    );
    expect(JSON.parse((await peerless('action', 'invoke', 'hello', '-p', 'name', 'wsk', '-r')).stdout)).toEqual({ hello: 'wsk' });
    expect(await (await fetch(`${d.url}/api/v1/web/${ns}/default/hello.json?name=web`)).json()).toEqual({ hello: 'web' });

    expect((await peerless('package', 'create', 'greetings', '-p', 'greeting', 'hi')).code).toBe(0);
    expect((await peerless('action', 'create', 'greetings/hello', hello)).stdout).toContain('ok: created action greetings/hello');
    expect((await peerless('package', 'bind', 'greetings', 'salut', '-p', 'greeting', 'salut')).code).toBe(0);
    expect(JSON.parse((await peerless('action', 'invoke', 'salut/hello', '-r')).stdout)).toEqual({ hello: 'world', greeting: 'salut' });
    expect((await peerless('action', 'list', 'greetings')).stdout).toContain(`/${ns}/greetings/hello`);

    expect((await peerless('trigger', 'create', 'knock', '-p', 'name', 'trigger')).code).toBe(0);
    expect((await peerless('rule', 'create', 'knock-hello', 'knock', 'hello')).stdout).toContain('ok: created rule knock-hello');
    expect((await peerless('trigger', 'fire', 'knock')).stdout).toMatch(/ok: triggered .*knock with id [0-9a-f]{32}/);
    expect((await peerless('rule', 'disable', 'knock-hello')).stdout).toContain('ok: disabled rule knock-hello');
    expect((await peerless('trigger', 'fire', 'knock')).stdout).toContain('no rule is active');
    const all = (await peerless('namespace', 'get')).stdout;
    for (const x of ['hello', 'greetings', 'knock', 'knock-hello']) expect(all).toContain(`/${ns}/${x}`);
    expect((await peerless('property', 'get')).stdout).toMatch(new RegExp(`whisk namespace\\s+${ns}`));
    // A bad word is a usage error, not a crash.
    const bad = await peerless('rule', 'create', 'half', 'knock');
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/rule create NAME TRIGGER ACTION/)]);
  });

  it('keeps the target and key in a config file', async () => {
    const noEnv = { ...env };
    delete noEnv.PEERLESS_APIHOST;
    delete noEnv.PEERLESS_AUTH;
    const run = (...a: string[]) => exec(process.execPath, [CLI, ...a], { env: noEnv });
    await run('config', 'set', 'apihost', d.url);
    await run('config', 'set', 'auth', nsAuth);
    const shown = (await run('config', 'show')).stdout;
    expect(shown).not.toContain(nsAuth.split(':')[1]);
    expect(JSON.parse((await run('fn', 'invoke', 'fib', '-p', 'n', '10', '--result')).stdout)).toEqual({ n: 10, fib: 55 });
  });
});
