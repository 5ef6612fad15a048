// The Node.js action proxy: OpenWhisk's action protocol on port 8080.
// POST /init loads the code once; POST /run calls its entry point with the
// parameters. After every activation both stdout and stderr end with the
// sentinel line, so the platform can cut the log stream per activation.
//
// With limits.concurrency > 1 (`concurrency` in /init) several instances share
// this container: each /run gets a worker thread of its own (instance.mjs),
// taken from those kept loaded and ready, so module state, the SDK and the
// activation's environment are the instance's alone while it runs (a worker
// that finished one instance may serve a later one, as a warm container does).
// Its log lines are tagged with its activation ID. A worker that throws, exits
// or runs out of heap ends alone (503 and why); one whose call is abandoned
// (timeout, stop) is terminated.
import http from 'node:http';
import { Worker } from 'node:worker_threads';
import { call, load, SENTINEL, unpack } from './load.mjs';

const TAG = '\u001e';
/** What the platform reads as "this instance failed on its own" in a shared container. */
const INSTANCE_FAILED = 503;
/** Workers kept loaded ahead of need, at most (each costs its isolate's memory while it waits). */
const READY_MAX = 8;

let entry = null;
let shared = null; // { value, concurrency, free: Worker[] } in a shared container: loaded workers not running anything

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

/** The activation's values as the action sees them: every /run field but `value`, as `__OW_<FIELD>`. */
function activationEnv(body) {
  const env = {};
  for (const [k, v] of Object.entries(body)) if (k !== 'value') env[`__OW_${k.toUpperCase()}`] = typeof v === 'string' ? v : JSON.stringify(v);
  return env;
}

async function run(body) {
  Object.assign(process.env, activationEnv(body));
  let sdk = null;
  try {
    if (body.peerless_token) {
      sdk = await import('peerless');
      await sdk._start();
    }
    return await call(entry, body.value);
  } finally {
    await sdk?._flushTraffic();
    sdk?._end();
    endOfActivation();
  }
}

// ---- shared containers ----

/**
 * A worker with the action loaded (`loaded` settles once it is, or fails with the init error). Its output is
 * copied to ours line by line, tagged with the activation it is running; the sentinel lines it writes after
 * each activation end that activation's logs.
 */
function spawnWorker() {
  // A heap limit well below the container's memory: one instance that runs away hits it and ends alone,
  // before the kernel's OOM killer would end the whole container.
  const limit = process.constrainedMemory?.() || 0;
  const w = new Worker(new URL('./instance.mjs', import.meta.url), {
    workerData: shared.value,
    stdout: true,
    stderr: true,
    ...(limit > 0 ? { resourceLimits: { maxOldGenerationSizeMb: Math.max(32, Math.floor((limit / 1048576) * 0.4)) } } : {}),
  });
  w.job = null; // { id, cuts, done(status, text), failed(why), cut() } while it runs an activation (see runShared)
  w.loaded = new Promise((resolve, reject) => {
    w.once('message', (m) => (m.type === 'ready' ? resolve(w) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`Initialization has failed: the instance exited with code ${code}.`)));
  });
  w.loaded.catch(() => {});
  w.on('message', (m) => m.type === 'done' && w.job?.done(m.status, m.text));
  w.on('error', (e) => {
    const oom = e?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    if (!oom) console.error(e && e.stack ? e.stack : String(e));
    w.job?.failed(oom ? 'The action exhausted its memory and was aborted.' : 'The action did not produce a valid response and exited unexpectedly.');
  });
  w.on('exit', (code) => {
    w.dead = true;
    shared.free = shared.free.filter((x) => x !== w);
    w.job?.failed(`The action did not produce a valid response and exited unexpectedly (exit code ${code}).`);
  });
  copyLines(w, w.stdout, process.stdout);
  copyLines(w, w.stderr, process.stderr);
  return w;
}

function copyLines(w, stream, to) {
  let partial = '';
  const tag = (line) => (w.job ? `${TAG}${w.job.id} ${line}\n` : `${line}\n`);
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const l of lines) {
      to.write(tag(l));
      if (l === SENTINEL && w.job && ++w.job.cuts === 2) w.job.cut();
    }
  });
  // The thread ended (it failed, or was ended): whatever its activation wrote is all there will be.
  stream.on('end', () => {
    if (partial) to.write(tag(partial));
    if (w.job) {
      to.write(tag(SENTINEL));
      if (++w.job.cuts === 2) w.job.cut();
    }
  });
}

/** The first free worker that `ok` accepts, out of the free list. */
function take(ok) {
  const i = shared.free.findIndex(ok);
  return i < 0 ? undefined : shared.free.splice(i, 1)[0];
}

function end(w) {
  w.ending = true;
  void w.terminate();
}

/** Keeps a few loaded workers more than are running, so an instance starts without waiting for one to load. */
function topUp() {
  const fresh = shared.free.filter((w) => !w.used).length;
  for (let i = fresh; i < Math.min(READY_MAX, shared.concurrency); i++) shared.free.push(spawnWorker());
}

async function runShared(body, res) {
  const id = String(body.activation_id ?? 'unknown');
  const env = activationEnv(body);
  // A worker that ran an instance before is warm, as a container is: its module state stays, as OpenWhisk's
  // does. An idle one still listens on the port of its last seat: the one that held this seat's port takes it
  // (no other may listen there), else a fresh one, else any (it moves to this port).
  const port = env.__OW_PEERLESS_PORT;
  const w = take((x) => x.port === port) ?? take((x) => !x.used) ?? take(() => true) ?? spawnWorker();
  w.used = true;
  w.port = port;
  topUp();
  let answered = false;
  // Answered and both streams cut (in either order: output and messages come apart): the worker may take the
  // next instance, unless it ended or is one too many.
  const finish = () => {
    if (!answered || w.job.cuts < 2) return;
    w.job = null;
    if (w.dead) return;
    if (!w.ending && shared.free.filter((x) => x.used).length < shared.concurrency) shared.free.push(w);
    else end(w);
  };
  const answer = (status, text) => {
    if (answered) return;
    answered = true;
    if (!res.writableEnded && !res.destroyed) send(res, status, text);
    finish();
  };
  w.job = { id, cuts: 0, done: answer, failed: (error) => answer(INSTANCE_FAILED, JSON.stringify({ error })), cut: finish };
  // The platform gave up on this call (the activation's time ran out, or it was stopped): end the instance.
  res.on('close', () => {
    if (!answered) {
      answered = true;
      end(w);
    }
  });
  try {
    await w.loaded;
  } catch (e) {
    w.job.failed(e.message);
    return end(w);
  }
  w.postMessage({ value: body.value ?? {}, env });
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
      let value = body.value || {};
      const concurrency = Number(value.concurrency) || 1;
      // Parameters marked init reach the code as its environment, before it loads (OpenWhisk's value.env);
      // instances' worker threads start with a copy of it.
      if (value.env && typeof value.env === 'object') {
        for (const [k, v] of Object.entries(value.env)) process.env[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      if (value.binary) {
        // Unpacked once, for every instance of the container.
        try {
          value = { main: value.main, root: unpack(value.code) };
        } catch (e) {
          endOfActivation();
          return reply(res, 502, { error: `Initialization has failed due to: ${e.message}` });
        }
      }
      if (concurrency > 1) {
        shared = { value: { main: value.main, code: value.code, root: value.root }, concurrency, free: [] };
        topUp();
        try {
          // The first worker loading is the check that the code loads at all.
          await shared.free[0].loaded;
          return reply(res, 200, { ok: true });
        } catch (e) {
          shared.free.forEach((w) => void w.terminate());
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
      if (shared) return runShared(body, res);
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
