import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotation, cleanupHost, deploy, invoke, namespace, ROOT, startDaemon, waitFor, type Api, type TestDaemon } from '../helpers/daemon.ts';

// Addressability and direct messaging between instances, on the real engine:
// instance IDs, the address map (file and function API), the SDKs in both
// runtimes, and the walls between namespaces.

const HOST = `it-msg-${process.pid}`;
let d: TestDaemon;
let A: { ns: string; call: Api };
let B: { ns: string; call: Api };
const example = (p: string) => readFileSync(join(ROOT, 'examples', p), 'utf8');

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST, flags: ['--prewarm-nodejs', '2'] });
  A = await namespace(d, `${HOST}-a`);
  B = await namespace(d, `${HOST}-b`);
  for (const [ns, call] of [
    [A.ns, A.call],
    [B.ns, B.call],
  ] as const) {
    // A function that shows what the platform gives it: map file, identity, status, and waits for a message.
    await deploy(call, ns, 'probe', {
      kind: 'nodejs',
      code: `const fs = require('fs'); const peerless = require('peerless');
async function main(p) {
  if (p.status) await peerless.setStatus(p.status);
  const file = JSON.parse(fs.readFileSync('/peerless/addrmap.json', 'utf8'));
  const me = await peerless.self();
  if (p.hold) { const m = await peerless.recv(undefined, p.hold); return { got: m.data.toString(), from: m.from } }
  return { file, me, token: process.env.__OW_PEERLESS_TOKEN, ip: process.env.__OW_PEERLESS_IP };
}`,
    });
  }
});

afterAll(async () => {
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

describe('instance IDs', () => {
  it('puts a named instance in the map while it runs, refuses a clash with 409, and removes it after', async () => {
    const r = await invoke(A.call, A.ns, 'probe', { status: 'waiting', hold: 20000 }, 'blocking=false&instance=holder');
    expect(r.status).toBe(202);
    const e = await waitFor(
      async () => {
        const g = await A.call('GET', `/api/v1/namespaces/${A.ns}/instances/holder`);
        return g.status === 200 && g.body.status === 'waiting' && g.body;
      },
      20_000,
      'holder in the map with its status',
    );
    expect(e).toMatchObject({ instance: 'holder', function: 'probe', state: 'running', host: HOST, activation: r.body.activationId });
    expect(e.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    const clash = await invoke(A.call, A.ns, 'probe', {}, 'blocking=true&instance=holder');
    expect(clash.status).toBe(409);
    expect(clash.body.field).toBe('/query/instance');
    // The same ID in another namespace is a different instance.
    const elsewhere = await invoke(B.call, B.ns, 'probe', {}, 'blocking=true&instance=holder');
    expect(elsewhere.status).toBe(200);

    // Release the holder by sending it a message from a second instance.
    await deploy(A.call, A.ns, 'sender', { kind: 'nodejs', code: `const peerless = require('peerless'); async function main(p) { await peerless.send(p.to, 'hello ' + p.to); return {} }` });
    const s = await invoke(A.call, A.ns, 'sender', { to: 'holder' }, 'blocking=true&instance=sender-1');
    expect(s.body.response.status).toBe('success');
    const done = await waitFor(
      async () => {
        const g = await A.call('GET', `/api/v1/namespaces/${A.ns}/activations/${r.body.activationId}`);
        return g.body.response.status !== 'running' && g.body;
      },
      20_000,
      'holder to finish',
    );
    expect(done.response.result).toEqual({ got: 'hello holder', from: 'sender-1' });
    expect(annotation(done, 'instance')).toBe('holder');
    expect((await A.call('GET', `/api/v1/namespaces/${A.ns}/instances/holder`)).status).toBe(404);
  });

  it('starts a group at once, and refuses a group with a clash without starting any of it', async () => {
    const g = await invoke(A.call, A.ns, 'probe', {}, `blocking=true&instances=${encodeURIComponent('g-{0..4}')}`);
    expect(g.status).toBe(200);
    expect(g.body.activations).toHaveLength(5);
    const ids = g.body.activations.map((a: { annotations: { key: string; value: unknown }[] }) => annotation(a, 'instance'));
    expect(ids.sort()).toEqual(['g-0', 'g-1', 'g-2', 'g-3', 'g-4']);
    // Each member saw its own entry in the map file.
    for (const a of g.body.activations) {
      const me = a.response.result.me;
      expect(a.response.result.file.instances.map((e: { instance: string }) => e.instance)).toContain(me.instance);
      expect(a.response.result.file.namespace).toBe(A.ns);
      expect(a.response.result.file.version).toBeGreaterThan(0);
    }

    const hold = await invoke(A.call, A.ns, 'probe', { hold: 15000 }, 'blocking=false&instance=c-2');
    await waitFor(async () => (await A.call('GET', `/api/v1/namespaces/${A.ns}/instances/c-2`)).status === 200, 20_000, 'c-2');
    const before = (await A.call('GET', `/api/v1/namespaces/${A.ns}/activations?limit=200`)).body.length;
    const clash = await invoke(A.call, A.ns, 'probe', {}, `blocking=false&instances=${encodeURIComponent('c-{0..3}')}`);
    expect(clash.status).toBe(409);
    expect(clash.body.detail).toContain('c-2');
    expect((await A.call('GET', `/api/v1/namespaces/${A.ns}/activations?limit=200`)).body.length).toBe(before);
    expect((await A.call('GET', `/api/v1/namespaces/${A.ns}/instances/c-0`)).status).toBe(404);
    await invoke(A.call, A.ns, 'sender', { to: 'c-2' }, 'blocking=true');
    await waitFor(async () => (await A.call('GET', `/api/v1/namespaces/${A.ns}/activations/${hold.body.activationId}`)).body.response.status === 'success', 20_000, 'c-2 done');
  });

  it('refuses bad instance IDs and patterns with 400 naming the field', async () => {
    expect((await invoke(A.call, A.ns, 'probe', {}, 'instance=bad%20id')).body.field).toBe('/query/instance');
    expect((await invoke(A.call, A.ns, 'probe', {}, `instances=${encodeURIComponent('w-{5..1}')}`)).body.field).toBe('/query/instances');
    expect((await invoke(A.call, A.ns, 'probe', {}, `instances=${encodeURIComponent('w-{0..5000}')}`)).body.field).toBe('/query/instances');
    expect((await invoke(A.call, A.ns, 'probe', {}, 'instances=a,b&instance=c')).status).toBe(400);
  });
});

describe('function API and SDKs', () => {
  it('serves wait-for with a timeout, and spawn from inside a function', async () => {
    await deploy(A.call, A.ns, 'spawner', {
      kind: 'nodejs',
      code: `const peerless = require('peerless');
async function main() {
  let timedOut = null;
  try { await peerless.waitFor(['nobody'], 300) } catch (e) { timedOut = e.name }
  await peerless.spawn('sender', { instances: 'kid-{0..2}', params: { to: peerless.instanceId() } });
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await peerless.recv(undefined, 20000)).from);
  let gone = null; const t0 = Date.now();
  try { await peerless.send('never-existed', 'x') } catch (e) { gone = { name: e.name, ms: Date.now() - t0 } }
  return { timedOut, got: got.sort(), gone };
}`,
    });
    const r = await invoke(A.call, A.ns, 'spawner', {}, 'blocking=true&instance=parent');
    expect(r.body.response.result.timedOut).toBe('TimeoutError');
    expect(r.body.response.result.got).toEqual(['kid-0', 'kid-1', 'kid-2']);
    // A peer that is not in the map fails at once, not after a TCP timeout.
    expect(r.body.response.result.gone.name).toBe('PeerGoneError');
    expect(r.body.response.result.gone.ms).toBeLessThan(1000);
  });

  it('streams map changes to a function (server-sent events)', async () => {
    await deploy(A.call, A.ns, 'watcher', {
      kind: 'nodejs',
      code: `const http = require('http'); const peerless = require('peerless');
function main() {
  return new Promise((resolve) => {
    const events = [];
    http.get({ socketPath: '/peerless/api.sock', path: '/v1/events', headers: { authorization: 'Bearer ' + process.env.__OW_PEERLESS_TOKEN } }, (res) => {
      let buf = '';
      res.on('data', async (c) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\\n\\n')) >= 0) {
          const ev = JSON.parse(buf.slice(0, i).split('\\n').find((l) => l.startsWith('data: ')).slice(6));
          buf = buf.slice(i + 2);
          events.push(ev);
          if (events.length === 1) await peerless.setStatus('step-1');
          const mine = ev.instances.find((e) => e.instance === 'watcher');
          if (mine && mine.status === 'step-1') { res.destroy(); resolve({ type: res.headers['content-type'], versions: events.map((e) => e.version), status: mine.status }); }
        }
      });
    });
  });
}`,
    });
    const r = await invoke(A.call, A.ns, 'watcher', {}, 'blocking=true&result=true&instance=watcher');
    expect(r.body.type).toBe('text/event-stream');
    expect(r.body.status).toBe('step-1');
    expect(r.body.versions.length).toBeGreaterThanOrEqual(2);
    expect(r.body.versions.at(-1)).toBeGreaterThan(r.body.versions[0]);
  });

  it('refuses a bad traffic report with a 400 problem naming the field, and keeps the good one', async () => {
    // Bodies an SDK could get wrong, sent straight to the function API; then one good report.
    await deploy(A.call, A.ns, 'reporter', {
      kind: 'nodejs',
      code: `const http = require('http');
function put(body) {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: '/peerless/api.sock', path: '/v1/self/traffic', method: 'PUT', headers: { authorization: 'Bearer ' + process.env.__OW_PEERLESS_TOKEN, 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body: b ? JSON.parse(b) : null }));
    });
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}
async function main() {
  const many = {};
  for (let i = 0; i < 1025; i++) many['p' + i] = 1;
  const bad = [];
  for (const body of [{}, { sent: 'x' }, { sent: { a: -1 } }, { sent: { a: 1.5 } }, { sent: { a: 1 }, extra: 1 }, { sent: many }, { sent: { ['x'.repeat(129)]: 1 } }, '{"sent":']) bad.push(await put(body));
  return { bad, good: (await put({ sent: { peer: 42 } })).status };
}`,
    });
    const r = await invoke(A.call, A.ns, 'reporter', {}, 'blocking=true&instance=reporter');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const { bad, good } = r.body.response.result as { bad: { status: number; type: string; body: { detail: string; field?: string } }[]; good: number };
    expect(bad).toHaveLength(8);
    for (const b of bad) {
      expect(b.status, JSON.stringify(b)).toBe(400);
      expect(b.type).toContain('application/problem+json');
      expect(b.body.detail.length).toBeGreaterThan(0);
      expect(JSON.stringify(b.body)).not.toMatch(/\n\s+at /);
    }
    expect(bad.filter((b) => (b.body.field ?? b.body.detail).includes('sent')).length).toBeGreaterThanOrEqual(5);
    expect(good).toBe(204);
    // Only the good report reached the record.
    expect(annotation(r.body, 'traffic')).toEqual({ peer: 42 });
  });

  it('fails a receive from a peer that ends without sending, in both SDKs', async () => {
    await deploy(A.call, A.ns, 'quitter', {
      kind: 'nodejs',
      code: `const peerless = require('peerless'); async function main() { await peerless.waitFor(['w'], 20000); await new Promise(r => setTimeout(r, 300)); return {} }`,
    });
    await deploy(A.call, A.ns, 'waiter', {
      kind: 'python',
      code: 'import time, peerless\ndef main(p):\n    peerless.wait_for(["q"], timeout=20)\n    t0 = time.time()\n    try:\n        peerless.recv("q")\n        return {"got": True}\n    except peerless.PeerGoneError as e:\n        return {"gone": str(e), "s": time.time() - t0}\n',
    });
    await deploy(A.call, A.ns, 'waiter-js', {
      kind: 'nodejs',
      code: `const peerless = require('peerless'); async function main() { await peerless.waitFor(['q'], 20000); const t0 = Date.now(); try { await peerless.recv('q'); return { got: true } } catch (e) { return { gone: e.message, name: e.name, s: (Date.now() - t0) / 1000 } } }`,
    });
    for (const waiter of ['waiter', 'waiter-js']) {
      const w = invoke(A.call, A.ns, waiter, {}, 'blocking=true&instance=w');
      expect((await invoke(A.call, A.ns, 'quitter', {}, 'blocking=true&instance=q')).body.response.status).toBe('success');
      const r = await w;
      expect(r.body.response.result.gone, waiter).toContain('q');
      expect(r.body.response.result.s).toBeLessThan(5);
    }
  });

  it('keeps the last message of a peer that sent it and ended at once, even when the receiver reads it late', async () => {
    // A loaded host reads late: here the receiver's SDK starts reading each connection 2 s after accepting
    // it, longer than the sender takes to end and leave the map. The message must still arrive, not a
    // "gone" error.
    await deploy(A.call, A.ns, 'lastwords', {
      kind: 'nodejs',
      code: `const peerless = require('peerless'); async function main() { await peerless.waitFor(['late'], 20000); await peerless.send('late', 'last words'); return {} }`,
    });
    await deploy(A.call, A.ns, 'latereader', {
      kind: 'python',
      code: [
        'import time, peerless',
        'def main(p):',
        '    serve = peerless._serve_connection',
        '    peerless._serve_connection = lambda sock: (time.sleep(2), serve(sock))',
        '    try:',
        '        peerless.wait_for(["lw"], timeout=20)',
        '        t0 = time.time()',
        '        _, data = peerless.recv("lw", timeout=20)',
        '        return {"got": bytes(data).decode(), "s": time.time() - t0}',
        '    finally:',
        '        peerless._serve_connection = serve',
      ].join('\n'),
    });
    const late = invoke(A.call, A.ns, 'latereader', {}, 'blocking=true&instance=late');
    expect((await invoke(A.call, A.ns, 'lastwords', {}, 'blocking=true&instance=lw')).body.response.status).toBe('success');
    const r = await late;
    expect(r.body.response.result, JSON.stringify(r.body.response)).toMatchObject({ got: 'last words' });
    expect(r.body.response.result.s).toBeGreaterThan(1.5);
  });

  it('passes messages Node→Node, Python→Python and Node→Python, small and large', async () => {
    await deploy(A.call, A.ns, 'pingpong', { kind: 'nodejs', code: example('pingpong/pingpong.js') });
    await deploy(A.call, A.ns, 'pingpong-py', { kind: 'python', code: example('pingpong/pingpong.py') });
    for (const fn of ['pingpong', 'pingpong-py']) {
      for (const [n, size] of [
        [500, 64],
        [2, 16 * 1024 * 1024],
      ] as const) {
        const r = await invoke(A.call, A.ns, fn, { n, size }, 'blocking=true&result=true&instances=ping,pong');
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const ping = r.body.activations.find((x: { role: string }) => x.role === 'ping');
        const pong = r.body.activations.find((x: { role: string }) => x.role === 'pong');
        expect(pong).toEqual({ role: 'pong', received: n, bytes: n * size });
        expect(ping.reply).toBe(`got ${n} messages, ${n * size} bytes`);
      }
    }
    // The wire format is the same in both SDKs: a Node ping talks to a Python pong.
    const pong = invoke(A.call, A.ns, 'pingpong-py', { n: 100, size: 1000 }, 'blocking=true&result=true&instance=pong');
    const ping = await invoke(A.call, A.ns, 'pingpong', { n: 100, size: 1000 }, 'blocking=true&result=true&instance=ping');
    expect(ping.body.reply).toBe('got 100 messages, 100000 bytes');
    expect((await pong).body).toEqual({ role: 'pong', received: 100, bytes: 100000 });
  });

  it('keeps frames of concurrent sends to one peer whole, in both SDKs, and refuses an oversized frame without dying', async () => {
    // The receiver takes two 4 MiB messages and says whether each is all one byte, as sent.
    await deploy(
      A.call,
      A.ns,
      'rx',
      {
        kind: 'nodejs',
        code: `const peerless = require('peerless');
async function main() {
  const out = [];
  for (let i = 0; i < 2; i++) {
    const { data } = await peerless.recv(undefined, 30000);
    out.push({ len: data.length, whole: data.every((b) => b === data[0]), byte: data[0] });
  }
  const after = (await peerless.recv(undefined, 30000)).data.toString();
  return { got: out.sort((a, b) => a.byte - b.byte), after };
}`,
      },
      { limits: { memory: 128 } },
    );
    await deploy(A.call, A.ns, 'tx2', {
      kind: 'nodejs',
      code: `const peerless = require('peerless');
async function main(p) {
  await peerless.waitFor([p.to], 10000);
  await Promise.all([peerless.send(p.to, Buffer.alloc(4 << 20, 1)), peerless.send(p.to, Buffer.alloc(4 << 20, 2))]);
  return {};
}`,
    });
    await deploy(A.call, A.ns, 'tx2-py', {
      kind: 'python',
      code: `import threading
import peerless

def main(p):
    peerless.wait_for([p["to"]], 10)
    ts = [threading.Thread(target=peerless.send, args=(p["to"], bytes([b]) * (4 << 20))) for b in (1, 2)]
    for t in ts: t.start()
    for t in ts: t.join()
    return {}`,
    });
    // A peer that lies: a frame header announcing 2^63 bytes, then the honest message after it on a new connection.
    await deploy(A.call, A.ns, 'liar', {
      kind: 'nodejs',
      code: `const net = require('net'); const peerless = require('peerless');
async function main(p) {
  const [e] = await peerless.waitFor([p.to], 10000);
  const closed = await new Promise((resolve) => {
    const s = net.connect(e.port, e.ip, () => {
      const id = Buffer.from('liar');
      const hello = Buffer.alloc(2); hello.writeUInt16BE(id.length);
      const head = Buffer.alloc(9); head[0] = 0; head.writeBigUInt64BE(2n ** 63n, 1);
      s.write(Buffer.concat([hello, id, head, Buffer.alloc(1024, 7)]));
    });
    s.on('close', () => resolve(true)); s.on('error', () => {});
    setTimeout(() => resolve(false), 5000);
  });
  await peerless.send(p.to, 'still here');
  return { closed };
}`,
    });
    for (const tx of ['tx2', 'tx2-py']) {
      const rx = invoke(A.call, A.ns, 'rx', {}, 'blocking=true&instance=rx');
      const sent = await invoke(A.call, A.ns, tx, { to: 'rx' }, 'blocking=true&result=true');
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      const liar = await invoke(A.call, A.ns, 'liar', { to: 'rx' }, 'blocking=true&result=true');
      expect(liar.body).toEqual({ closed: true });
      const got = (await rx).body;
      expect(got.response.status, JSON.stringify(got)).toBe('success');
      expect(got.response.result).toEqual({
        got: [
          { len: 4 << 20, whole: true, byte: 1 },
          { len: 4 << 20, whole: true, byte: 2 },
        ],
        after: 'still here',
      });
      expect(got.logs.join('\n')).toMatch(/closed the connection from liar: a frame of 9223372036854775808 bytes is over the limit of 134217728 bytes/);
    }
  });

  it('runs the k-means (broadcast, allreduce) and sample-sort (allreduce, alltoall, scan) examples as groups', async () => {
    await deploy(A.call, A.ns, 'kmeans', { kind: 'nodejs', code: example('kmeans/kmeans.js') }, { limits: { memory: 128 } });
    const km = await invoke(A.call, A.ns, 'kmeans', { members: 4, k: 4, points: 5000 }, 'blocking=true&result=true&instances=km-{0..3}');
    expect(km.status, JSON.stringify(km.body)).toBe(200);
    const runs = km.body.activations as { centres: number[][]; rounds: number; points: number }[];
    expect(runs).toHaveLength(4);
    // Every member ends with the same centres, near the four true ones at radius 10.
    for (const r of runs) expect(r.centres).toEqual(runs[0]!.centres);
    expect(runs[0]!.points).toBe(20_000);
    for (const [x, y] of runs[0]!.centres) expect(Math.abs(Math.hypot(x!, y!) - 10)).toBeLessThan(0.5);

    await deploy(A.call, A.ns, 'sort', { kind: 'python', code: example('sort/sort.py') }, { limits: { memory: 256 } });
    const st = await invoke(A.call, A.ns, 'sort', { members: 4, n: 20_000 }, 'blocking=true&result=true&instances=sort-{0..3}');
    expect(st.status, JSON.stringify(st.body)).toBe(200);
    const parts = (st.body.activations as { member: string; count: number; offset: number; total: number; first: number; last: number; sorted: boolean }[]).sort((a, b) => a.offset - b.offset);
    expect(parts.map((q) => q.member)).toEqual(['sort-0', 'sort-1', 'sort-2', 'sort-3']);
    let at = 0;
    for (const [i, q] of parts.entries()) {
      expect(q.sorted).toBe(true);
      expect(q.total).toBe(80_000);
      expect(q.offset).toBe(at);
      at += q.count;
      if (i > 0) expect(q.first).toBeGreaterThanOrEqual(parts[i - 1]!.last);
    }
    expect(at).toBe(80_000);
  });

  it('runs the word-count scatter-gather in Node.js and Python', async () => {
    for (const [master, worker, file] of [
      ['master.js', 'worker.js', 'nodejs'],
      ['master.py', 'worker.py', 'python'],
    ] as const) {
      await deploy(A.call, A.ns, `wc-${file}`, { kind: file, code: example(`wordcount/${master}`) });
      await deploy(A.call, A.ns, `wc-worker-${file}`, { kind: file, code: example(`wordcount/${worker}`) }, { limits: { memory: 128 } });
      const input = JSON.parse(example('wordcount/input-100.json'));
      const r = await invoke(A.call, A.ns, `wc-${file}`, { ...input, worker: `wc-worker-${file}` }, `blocking=true&result=true&instance=wc-${file}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ workers: 17, words: 285 });
    }
  });
});

describe('the co-located fast path', () => {
  it('connects instances on one daemon over Unix sockets, in both SDKs and across them, with the same messages', async () => {
    // b answers a's 1 MiB with its length; each says how it dialled (links) and what it got.
    await deploy(A.call, A.ns, 'colo', {
      kind: 'nodejs',
      code: `const peerless = require('peerless');
async function main(p) {
  const me = peerless.instanceId();
  if (me === p.a) {
    await peerless.waitFor([p.b], 20000);
    await peerless.send(p.b, Buffer.alloc(1 << 20, 7));
    const { data } = await peerless.recv(p.b, 20000);
    return { me, got: data.toString(), links: { ...peerless.links } };
  }
  const { data } = await peerless.recv(p.a, 20000);
  await peerless.send(p.a, String(data.length));
  return { me, got: data.length, links: { ...peerless.links } };
}`,
    });
    await deploy(A.call, A.ns, 'colopy', {
      kind: 'python',
      code: [
        'import peerless',
        'def main(p):',
        '    me = peerless.instance_id()',
        '    if me == p["a"]:',
        '        peerless.wait_for([p["b"]], timeout=20)',
        '        peerless.send(p["b"], bytes(1 << 20))',
        '        _, data = peerless.recv(p["b"], timeout=20)',
        '        return {"me": me, "got": bytes(data).decode(), "links": dict(peerless.links)}',
        '    _, data = peerless.recv(p["a"], timeout=20)',
        '    peerless.send(p["a"], str(len(data)))',
        '    return {"me": me, "got": len(data), "links": dict(peerless.links)}',
      ].join('\n'),
    });
    for (const [fa, fb] of [
      ['colo', 'colo'],
      ['colopy', 'colopy'],
      ['colo', 'colopy'],
    ]) {
      const p = { a: `${fa}-a`, b: `${fb}-b` };
      const [ra, rb] = await Promise.all([invoke(A.call, A.ns, fa!, p, `blocking=true&result=true&instance=${p.a}`), invoke(A.call, A.ns, fb!, p, `blocking=true&result=true&instance=${p.b}`)]);
      expect(ra.body, JSON.stringify([ra.body, rb.body])).toMatchObject({ got: String(1 << 20) });
      expect(rb.body).toMatchObject({ got: 1 << 20 });
      // Each dialled the other once, over the namespace's Unix socket directory, not TCP.
      expect(ra.body.links.unix).toBeGreaterThanOrEqual(1);
      expect(rb.body.links.unix).toBeGreaterThanOrEqual(1);
      expect(ra.body.links.tcp + rb.body.links.tcp).toBe(0);
    }
  });

  it("keeps each namespace's socket directory unlisted and unnamed to the others", async () => {
    const snoop = `const fs = require('fs');
async function main() {
  const tryIt = (f) => { try { return f() } catch (e) { return e.code } };
  return { secret: process.env.__OW_PEERLESS_PEERS, root: tryIt(() => fs.readdirSync('/peerless-peers')),
    own: tryIt(() => fs.readdirSync('/peerless-peers/' + process.env.__OW_PEERLESS_PEERS)),
    make: tryIt(() => fs.mkdirSync('/peerless-peers/mine')) };
}`;
    await deploy(A.call, A.ns, 'snoop', { kind: 'nodejs', code: snoop });
    await deploy(B.call, B.ns, 'snoop', { kind: 'nodejs', code: snoop });
    const a = (await invoke(A.call, A.ns, 'snoop', {}, 'blocking=true&result=true&instance=snoop-a')).body;
    const b = (await invoke(B.call, B.ns, 'snoop', {}, 'blocking=true&result=true&instance=snoop-b')).body;
    // Neither can list the root (so neither can learn the other's directory) nor make one of its own there,
    // nor list even its own directory; the two names differ and are 128 random bits.
    for (const x of [a, b]) expect(x).toMatchObject({ root: 'EACCES', own: 'EACCES', make: 'EACCES' });
    expect(a.secret).toMatch(/^[0-9a-f]{32}$/);
    expect(b.secret).toMatch(/^[0-9a-f]{32}$/);
    expect(a.secret).not.toBe(b.secret);
  });
});

describe('namespaces cannot see or reach each other', () => {
  it("keeps A's map, IDs, addresses, socket and token away from B", async () => {
    const holder = await invoke(A.call, A.ns, 'probe', { hold: 20000 }, 'blocking=false&instance=secret');
    const aEntry = await waitFor(
      async () => {
        const g = await A.call('GET', `/api/v1/namespaces/${A.ns}/instances/secret`);
        return g.status === 200 && g.body.state === 'running' && g.body;
      },
      20_000,
      'secret running',
    );
    const aToken = (await invoke(A.call, A.ns, 'probe', {}, 'blocking=true&instance=a-probe')).body.response.result.token;

    await deploy(B.call, B.ns, 'intruder', {
      kind: 'nodejs',
      code: `const fs = require('fs'); const http = require('http'); const net = require('net'); const peerless = require('peerless');
const get = (path, token) => new Promise((resolve) => { const h = token === null ? {} : { authorization: 'Bearer ' + token };
  http.get({ socketPath: '/peerless/api.sock', path, headers: h }, (res) => { let b = ''; res.on('data', c => b += c); res.on('end', () => resolve({ status: res.statusCode, body: b })) }).on('error', e => resolve({ error: e.code })) });
async function main(p) {
  const file = JSON.parse(fs.readFileSync('/peerless/addrmap.json', 'utf8'));
  let lookup; try { await peerless.lookup('secret'); lookup = 'found' } catch (e) { lookup = e.name }
  const tcp = await new Promise(r => { const s = net.connect(7700, p.ip); s.setTimeout(1500, () => { s.destroy(); r('timeout') }); s.on('connect', () => { s.destroy(); r('connected') }); s.on('error', e => r(e.code)) });
  return {
    file, lookup, tcp, entries: fs.readdirSync('/peerless').filter(f => !f.startsWith('.')).sort(),
    theirToken: await get('/v1/instances/secret', p.token), forged: await get('/v1/instances', 'forged-token'), none: await get('/v1/instances', null),
    own: await get('/v1/instances/secret', process.env.__OW_PEERLESS_TOKEN),
  };
}`,
    });
    const r = await invoke(B.call, B.ns, 'intruder', { ip: aEntry.ip, token: aToken }, 'blocking=true&instance=intruder');
    const x = r.body.response.result;
    expect(x.file.namespace).toBe(B.ns);
    expect(x.file.instances.map((e: { instance: string }) => e.instance)).toEqual(['intruder']);
    expect(x.entries).toEqual(['addrmap.json', 'api.sock']);
    expect(x.lookup).toBe('PeerGoneError');
    expect(['timeout', 'EHOSTUNREACH', 'ECONNREFUSED', 'ENETUNREACH']).toContain(x.tcp);
    expect(x.theirToken.status).toBe(401); // A's token is void by now or, if still live, for another namespace
    expect(x.forged.status).toBe(401);
    expect(x.none.status).toBe(401);
    expect(x.own.status).toBe(404);

    // A live token of A presented on B's socket is refused as another namespace's. The holder publishes its
    // token as its status (visible to A's user), the way a leak would happen.
    await deploy(A.call, A.ns, 'leaky', {
      kind: 'nodejs',
      code: `const peerless = require('peerless'); async function main() { await peerless.setStatus(process.env.__OW_PEERLESS_TOKEN); await peerless.recv(undefined, 20000); return {} }`,
    });
    const leaky = await invoke(A.call, A.ns, 'leaky', {}, 'blocking=false&instance=leaky');
    const leaked = await waitFor(async () => (await A.call('GET', `/api/v1/namespaces/${A.ns}/instances/leaky`)).body.status, 20_000, 'leaked token');
    await deploy(B.call, B.ns, 'intruder2', {
      kind: 'nodejs',
      code: `const http = require('http'); function main(p) { return new Promise(resolve => http.get({ socketPath: '/peerless/api.sock', path: '/v1/instances', headers: { authorization: 'Bearer ' + p.token } }, res => { res.resume(); resolve({ status: res.statusCode }) })) }`,
    });
    expect((await invoke(B.call, B.ns, 'intruder2', { token: leaked }, 'blocking=true&result=true')).body).toEqual({ status: 403 });
    for (const to of ['leaky', 'secret']) expect((await invoke(A.call, A.ns, 'sender', { to }, 'blocking=true')).body.response.status).toBe('success');
    for (const id of [leaky.body.activationId, holder.body.activationId])
      await waitFor(async () => (await A.call('GET', `/api/v1/namespaces/${A.ns}/activations/${id}`)).body.response.status === 'success', 20_000, 'holders done');
    expect(d.proc.exitCode).toBeNull();
  });
});
