// The Node.js action proxy: OpenWhisk's action protocol on port 8080.
// POST /init loads the code once; POST /run calls its entry point with the
// parameters. After every activation both stdout and stderr end with the
// sentinel line, so the platform can cut the log stream per activation.
//
// With limits.concurrency > 1 (`concurrency` in /init) several instances share
// this container: each /run gets a worker thread of its own (instance.mjs),
// taken from a few kept loaded and ready, so module state, the SDK and the
// activation's environment are the instance's alone. Its log lines are tagged
// with its activation ID. A worker that throws, exits or runs out of heap ends
// alone (503 and why); one whose call is abandoned (timeout, stop) is terminated.
import http from 'node:http';
import { Worker } from 'node:worker_threads';
import { call, load } from './load.mjs';

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const TAG = '\u001e';
/** What the platform reads as "this instance failed on its own" in a shared container. */
const INSTANCE_FAILED = 503;
/** Workers kept loaded ahead of need, at most. */
const READY_MAX = 4;

let entry = null;
let shared = null; // { value, concurrency, ready: Worker[] } in a shared container

function reply(res, status, body) {
  let text = JSON.stringify(body);
  if (text === undefined) text = 'null';
  send(res, status, text);
}

function send(res, status, text) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function endOfActivation() {
  process.stdout.write(`${SENTINEL}\n`);
  process.stderr.write(`${SENTINEL}\n`);
}

async function run(body) {
  for (const [k, v] of Object.entries(body)) {
    if (k !== 'value') process.env[`__OW_${k.toUpperCase()}`] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  let sdk = null;
  try {
    if (body.peerless_token) {
      sdk = await import('peerless');
      await sdk._start();
    }
    return await call(entry, body.value);
  } finally {
    sdk?._end();
    endOfActivation();
  }
}

// ---- shared containers ----

/** A worker with the action loaded; settles with it once ready, or fails with the init error. */
function spawnWorker() {
  // A heap limit below the container's memory: one instance that runs away hits it and ends alone, before
  // the kernel's OOM killer would end the whole container.
  const limit = process.constrainedMemory?.() || 0;
  const w = new Worker(new URL('./instance.mjs', import.meta.url), {
    workerData: shared.value,
    stdout: true,
    stderr: true,
    ...(limit > 0 ? { resourceLimits: { maxOldGenerationSizeMb: Math.max(32, Math.floor((limit / 1048576) * 0.4)) } } : {}),
  });
  w.loaded = new Promise((resolve, reject) => {
    w.once('message', (m) => (m.type === 'ready' ? resolve(w) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`Initialization has failed: the instance exited with code ${code}.`)));
  });
  w.loaded.catch(() => {});
  return w;
}

/** Keeps a few workers loaded, so an instance starts without waiting for one to load its code. */
function topUp() {
  while (shared.ready.length < Math.min(READY_MAX, shared.concurrency)) shared.ready.push(spawnWorker());
}

/** Copies a worker's stream to ours, each line tagged with the activation; resolves once the stream ended. */
function forward(stream, to, id) {
  return new Promise((resolve) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      if (lines.length > 0) to.write(lines.map((l) => `${TAG}${id} ${l}\n`).join(''));
    });
    stream.on('end', () => {
      to.write(`${partial ? `${TAG}${id} ${partial}\n` : ''}${TAG}${id} ${SENTINEL}\n`);
      resolve();
    });
  });
}

async function runShared(body, req, res) {
  const id = String(body.activation_id ?? 'unknown');
  const env = {};
  for (const [k, v] of Object.entries(body)) if (k !== 'value') env[`__OW_${k.toUpperCase()}`] = typeof v === 'string' ? v : JSON.stringify(v);
  const w = shared.ready.shift() ?? spawnWorker();
  topUp();
  const logs = Promise.all([forward(w.stdout, process.stdout, id), forward(w.stderr, process.stderr, id)]);
  let settled = false;
  const answer = (status, text) => {
    if (settled) return;
    settled = true;
    if (!res.writableEnded && !res.destroyed) send(res, status, text);
  };
  const failed = (error) => answer(INSTANCE_FAILED, JSON.stringify({ error }));
  // The platform gave up on this call (the activation's time ran out, or it was stopped): end the instance.
  res.on('close', () => {
    if (!settled) {
      settled = true;
      void w.terminate();
    }
  });
  w.on('error', (e) => {
    const oom = e?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    if (!oom) console.error(e && e.stack ? e.stack : String(e));
    failed(oom ? 'The action exhausted its memory and was aborted.' : 'The action did not produce a valid response and exited unexpectedly.');
  });
  w.on('exit', (code) => failed(`The action did not produce a valid response and exited unexpectedly (exit code ${code}).`));
  try {
    await w.loaded;
  } catch (e) {
    return failed(e.message);
  }
  w.on('message', (m) => {
    if (m.type !== 'done') return;
    answer(m.status, m.text);
    void w.terminate();
  });
  w.postMessage({ value: body.value ?? {}, env });
  await logs;
}

// ---- the action protocol ----

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return reply(res, 400, { error: 'the request body is not JSON' });
    }
    if (req.method === 'POST' && req.url === '/init') {
      if (entry || shared) return reply(res, 403, { error: 'Cannot initialize the action more than once.' });
      const value = body.value || {};
      const concurrency = Number(value.concurrency) || 1;
      if (concurrency > 1) {
        shared = { value: { main: value.main, code: value.code, binary: value.binary }, concurrency, ready: [] };
        topUp();
        try {
          // The first worker loading is the check that the code loads at all.
          await shared.ready[0].loaded;
          return reply(res, 200, { ok: true });
        } catch (e) {
          shared.ready.forEach((w) => void w.terminate());
          shared = null;
          endOfActivation();
          return reply(res, 502, { error: e.message });
        }
      }
      try {
        const fn = await load(value);
        if (typeof fn !== 'function') {
          endOfActivation();
          return reply(res, 502, { error: `Action entrypoint '${value.main || 'main'}' is not a function.` });
        }
        entry = fn;
        return reply(res, 200, { ok: true });
      } catch (e) {
        console.error(e && e.stack ? e.stack : String(e));
        endOfActivation();
        return reply(res, 502, { error: `Initialization has failed due to: ${e && e.message ? e.message : String(e)}` });
      }
    }
    if (req.method === 'POST' && req.url === '/run') {
      if (shared) return runShared(body, req, res);
      if (!entry) return reply(res, 403, { error: 'The action has not been initialized.' });
      const [status, result] = await run(body);
      return reply(res, status, result);
    }
    reply(res, 404, { error: 'no such route' });
  });
});
server.keepAliveTimeout = 600_000;
server.listen(8080, '0.0.0.0');
// 128 + 15, as a shell reports it: the daemon tells a stop from outside apart from code that exits by itself.
process.on('SIGTERM', () => process.exit(143));
