// The peerless SDK for Node.js functions: who am I, find my peers, and send
// them bytes directly over TCP on the namespace's network. No relay, no store.
//
//   import * as peerless from 'peerless'   (or require('peerless'))
//   await peerless.waitFor(['worker-1'], 5000)
//   await peerless.send('worker-1', Buffer.from('hi'))
//   const { from, data } = await peerless.recv()
//
// The wire format (a hello, then frames of u8 kind + u64 length + payload) is
// specified in docs/wire.md; the Python SDK speaks the same.
import { unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { Collectives } from './collectives.js';

export { OPS } from './collectives.js';
const SOCKET = process.env.__OW_PEERLESS_API_SOCKET || '/peerless/api.sock';
const DATA = 0;
const COLL = 2;
// A peer in the map as running listens once its code has loaded: in a shared container dozens load at once
// on a busy host, which can take seconds. A refused dial to a running peer is retried this long.
const CONNECT_RETRY_MS = 30_000;
// A peer its job restarts is given this long to come back before it is taken for gone.
const RESTART_WAIT_MS = 8000;
const SMALL = 64 * 1024;
const agent = new http.Agent({ keepAlive: true });

/** What every error of the SDK is: `code` tells them apart (PEER_GONE, PEER_RESTARTED, TIMEOUT, API). */
export class PeerlessError extends Error {}
export class PeerGoneError extends PeerlessError {
  constructor(id, why) {
    super(`instance ${id} is not alive${why ? `: ${why}` : ''}`);
    this.name = 'PeerGoneError';
    this.code = 'PEER_GONE';
    this.instance = id;
  }
}
/** The peer failed and its job started it again under the same ID (its state is new): resend what it needs. */
export class PeerRestartedError extends PeerlessError {
  constructor(id, epoch) {
    super(`instance ${id} was restarted (epoch ${epoch}): what it held is gone`);
    this.name = 'PeerRestartedError';
    this.code = 'PEER_RESTARTED';
    this.instance = id;
    this.epoch = epoch;
  }
}
export class TimeoutError extends PeerlessError {
  constructor(message) {
    super(message);
    this.name = 'TimeoutError';
    this.code = 'TIMEOUT';
  }
}
export class ApiError extends PeerlessError {
  constructor(status, body) {
    super(`function API answered ${status}: ${body && body.detail ? body.detail : JSON.stringify(body)}`);
    this.name = 'PeerlessApiError';
    this.code = 'API';
    this.status = status;
    this.body = body;
  }
}

const env = () => ({
  token: process.env.__OW_PEERLESS_TOKEN || '',
  instance: process.env.__OW_PEERLESS_INSTANCE || null,
  ip: process.env.__OW_PEERLESS_IP || null,
  port: Number(process.env.__OW_PEERLESS_PORT || 7700),
  host: process.env.__OW_PEERLESS_HOST || null,
  // the namespace's directory of the co-located fast path under /peerless-peers (docs/wire.md)
  peers: process.env.__OW_PEERLESS_PEERS || null,
});
const PEERS_MOUNT = '/peerless-peers';
/** The Unix socket of an instance of this namespace on this host (null: not on this host, or turned off). */
function localPath(instance, host) {
  const e = env();
  if (!e.peers || !host || host !== e.host || process.env.PEERLESS_TCP_ONLY === '1') return null;
  return `${PEERS_MOUNT}/${e.peers}/${instance}.sock`;
}

function api(method, path, body, signal, retried = false) {
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: SOCKET,
        path,
        method,
        agent,
        signal,
        headers: { authorization: `Bearer ${env().token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = text;
          }
          if (res.statusCode >= 400) reject(new ApiError(res.statusCode, parsed));
          else resolve(parsed);
        });
      },
    );
    req.on('error', (err) => {
      // A kept-alive connection the daemon closed as idle just as this request went out on it: the daemon never
      // read the request, so it goes again once, on a new connection (a cold group waits long enough for this).
      if (!retried && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) resolve(api(method, path, body, signal, true));
      else reject(err);
    });
    req.end(payload);
  });
}

// ---- directory ----

export const self = () => api('GET', '/v1/self');
export const list = async () => (await api('GET', '/v1/instances')).instances;
// The epoch each peer had when this activation first dealt with it, and whether its job restarts it.
const known = new Map();
const remember = (e) => {
  if (!known.has(e.instance)) known.set(e.instance, { epoch: e.epoch ?? 0, restart: !!e.restart });
  return e;
};
export async function lookup(id) {
  try {
    return remember(await api('GET', `/v1/instances/${encodeURIComponent(id)}`));
  } catch (e) {
    if (e.status === 404) throw new PeerGoneError(id);
    throw e;
  }
}
/**
 * The peer is a new life of its ID: forget the old one, and the connection to it (the old instance may
 * still be running somewhere, cut off, and would take what is meant for the new one).
 */
function restarted(e) {
  known.set(e.instance, { epoch: e.epoch ?? 0, restart: !!e.restart });
  const c = conns.get(e.instance);
  conns.delete(e.instance);
  c?.then(
    (s) => s.destroy(),
    () => {},
  );
  return new PeerRestartedError(e.instance, e.epoch ?? 0);
}
/** The peer's entry if it is the one this activation knows; PeerRestartedError if its job restarted it. */
async function same(id) {
  const e = await lookup(id);
  if ((e.epoch ?? 0) !== known.get(id).epoch) throw restarted(e);
  return e;
}
/** A peer that left the map: its job may be restarting it; PeerRestartedError once it is back, PeerGoneError if not. */
async function goneOrRestarted(id, gone) {
  if (!known.get(id)?.restart) throw gone;
  const until = Date.now() + RESTART_WAIT_MS;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    const e = await lookup(id).catch(() => null);
    if (e) return same(id);
  }
  throw gone;
}
/**
 * Resolves with the entries of all IDs once every one is running; rejects with TimeoutError at the
 * timeout, or with PeerGoneError at once when one of them failed before it ran.
 */
export async function waitFor(ids, opts = {}) {
  const { timeout = 30000, signal } = typeof opts === 'number' ? { timeout: opts } : opts;
  const list = Array.isArray(ids) ? ids : [ids];
  const q = list.map((id) => `ids=${encodeURIComponent(id)}`).join('&');
  try {
    return (await api('GET', `/v1/wait?${q}&timeout=${Math.round(timeout)}`, undefined, signal)).instances.map(remember);
  } catch (e) {
    if (e.status === 410) throw new PeerGoneError(e.body.instance, e.body.detail);
    if (e.status === 408) throw new TimeoutError(e.body.detail);
    throw e;
  }
}
export const setStatus = (status) => api('PUT', '/v1/self/status', { status: String(status) });
/**
 * Starts instances of a function of this namespace, as a job that is cancelled if this activation ends
 * first (unless detach). spawn('worker', { instances: 'w-{0..9}', params, restart: 'on-failure:2', queueTimeout: ms })
 * resolves with the activations; the job's ID is in spawn.lastJob.
 */
export async function spawn(fn, opts = {}) {
  const r = await api('POST', '/v1/spawn', { function: fn, ...opts });
  spawn.lastJob = r.jobId;
  return r.activations;
}

// ---- messages ----

let server = null;
const inbox = []; // { kind, from, tag, data }
let waiters = []; // { match, resolve }
const conns = new Map(); // peer id -> Promise<net.Socket>
const reading = new Map(); // sender id -> its connections still being read
let unnamed = 0; // connections accepted whose sender is not read yet
let onClosed = []; // called when a connection from a peer has ended: every byte of it has been delivered
// A frame longer than this closes its connection instead of being buffered (default: the function's memory).
const maxFrame = () => Number(process.env.__OW_PEERLESS_MAX_FRAME) || 2 ** 31;
/** Frames refused since the process started, by reason (docs/wire.md: a bad frame closes its connection). */
export const refused = { tooLong: 0, badKind: 0, badTag: 0 };
function refuse(sock, from, why, reason) {
  refused[reason]++;
  console.error(`peerless: closed the connection from ${from}: ${why}`);
  sock.destroy();
}

function deliver(msg) {
  const i = waiters.findIndex((w) => w.match(msg));
  if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
  else inbox.push(msg);
}

/** A whole frame's payload has arrived: a data message as it is, a collective's with its tag read off. */
function frame(sock, from, kind, buf) {
  if (kind === DATA) return deliver({ kind, from, tag: null, data: buf });
  const n = buf.length >= 2 ? buf.readUInt16BE(0) : -1;
  if (n < 0 || 2 + n > buf.length) return refuse(sock, from, 'a collective frame whose tag overruns it', 'badTag');
  deliver({ kind, from, tag: buf.toString('utf8', 2, 2 + n), data: buf.subarray(2 + n) });
}

function onConnection(sock) {
  sock.setNoDelay(true);
  let from = null;
  unnamed++;
  sock.once('close', () => {
    if (from === null) unnamed--;
    else if (reading.get(from) === 1) reading.delete(from);
    else reading.set(from, reading.get(from) - 1);
    for (const f of onClosed) f();
  });
  let head = Buffer.alloc(0);
  let body = null; // { kind, buf, filled }
  // A frame's header is checked before a byte of its payload is held: too long or of no known kind closes.
  const header = (kind, len64) => {
    if (kind !== DATA && kind !== COLL) return (refuse(sock, from, `a frame of unknown kind ${kind}`, 'badKind'), false);
    if (len64 > BigInt(maxFrame())) return (refuse(sock, from, `a frame of ${len64} bytes is over the limit of ${maxFrame()} bytes`, 'tooLong'), false);
    return true;
  };
  sock.on('data', (chunk) => {
    let off = 0;
    while (off < chunk.length && !sock.destroyed) {
      if (body) {
        // Copy straight into the message's own buffer: one copy, never two.
        const n = Math.min(chunk.length - off, body.buf.length - body.filled);
        chunk.copy(body.buf, body.filled, off, off + n);
        body.filled += n;
        off += n;
        if (body.filled === body.buf.length) {
          frame(sock, from, body.kind, body.buf);
          body = null;
        }
        continue;
      }
      if (from !== null && head.length === 0 && chunk.length - off >= 9) {
        // Common case: a whole frame header inside this chunk, read in place.
        const kind = chunk[off];
        const len64 = chunk.readBigUInt64BE(off + 1);
        if (!header(kind, len64)) return;
        const len = Number(len64);
        off += 9;
        if (chunk.length - off >= len) {
          // The whole frame is in this chunk: handed over as a view of it, not copied (a socket's chunks are
          // new each read, never reused).
          frame(sock, from, kind, chunk.subarray(off, off + len));
          off += len;
        } else body = { kind, buf: Buffer.allocUnsafe(len), filled: 0 };
        continue;
      }
      // The hello's length is known only once its first two bytes are in, so `want` is asked again.
      const want = () => (from === null ? (head.length < 2 ? 2 : 2 + head.readUInt16BE(0)) : 9);
      const take = Math.min(want() - head.length, chunk.length - off);
      head = Buffer.concat([head, chunk.subarray(off, off + take)]);
      off += take;
      if (head.length < want()) continue;
      if (from === null) {
        from = head.subarray(2).toString('utf8');
        unnamed--;
        reading.set(from, (reading.get(from) ?? 0) + 1);
      } else {
        const kind = head[0];
        const len64 = head.readBigUInt64BE(1);
        if (!header(kind, len64)) return;
        if (len64 === 0n) frame(sock, from, kind, Buffer.alloc(0));
        else body = { kind, buf: Buffer.allocUnsafe(Number(len64)), filled: 0 };
      }
      head = Buffer.alloc(0);
    }
  });
  sock.on('error', () => sock.destroy());
}

/** Connections this process dialled, by the way they went: co-located peers over Unix sockets, others over TCP. */
export const links = { unix: 0, tcp: 0 };
let local = null; // { server, path }: this activation's Unix socket, for peers on this host

/**
 * Called by the action proxy before each activation: listen for peers on TCP (once), and, for a named
 * instance, on its Unix socket in the namespace's directory, where co-located peers dial it.
 */
export async function _start() {
  // A thread that ran an instance before may run this one on another port (its seat in a shared container).
  if (server && server.address()?.port !== Number(env().port)) {
    server.close();
    server = null;
  }
  if (!server) {
    server = net.createServer(onConnection);
    await new Promise((resolve, reject) => server.once('error', reject).listen(env().port, '0.0.0.0', resolve));
  }
  const path = env().instance ? localPath(env().instance, env().host) : null;
  if (path && !local) {
    const srv = net.createServer(onConnection);
    try {
      // A socket left by an earlier life of this ID (it crashed) is stale: nothing listens on it.
      await unlink(path).catch(() => {});
      await new Promise((resolve, reject) => srv.once('error', reject).listen(path, resolve));
      local = { server: srv, path };
    } catch {
      // No fast path here (no mount, say): peers on this host use TCP, as everyone else.
    }
  }
}

/**
 * Called by the action proxy after each activation: nothing of it may leak into the next one. Resolves once
 * what its sends handed over has left (at most 2 s), for a proxy that ends the instance's thread next.
 */
/** Called by the action proxy as the activation's function returns, before its token ends: the last traffic report. */
export async function _flushTraffic() {
  clearTimeout(traffic.timer);
  traffic.timer = null;
  await reportTraffic();
  traffic.sent.clear();
}

export function _end() {
  if (local) {
    local.server.close();
    void unlink(local.path).catch(() => {});
    local = null;
  }
  inbox.length = 0;
  known.clear();
  collectives.reset();
  closeStream(); // its token ends with the activation
  for (const w of waiters) w.resolve(null);
  waiters = [];
  // end(), not destroy(): bytes a send has handed over but the kernel has not taken yet still go out.
  const flushed = [...conns.values()].map((c) =>
    c.then(
      (s) =>
        new Promise((resolve) => {
          s.end(resolve);
          s.once('close', resolve);
          setTimeout(() => s.destroy(), 10_000).unref();
        }),
      () => {},
    ),
  );
  conns.clear();
  return Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, 2000).unref())]);
}

const me = () => env().instance || `activation-${process.env.__OW_ACTIVATION_ID || 'anonymous'}`;

/** A connected socket to these options, or the error that kept it from connecting. */
function connectTo(opts) {
  return new Promise((resolve, reject) => {
    const s = net.connect(opts);
    s.setNoDelay(true);
    s.once('connect', () => {
      s.setTimeout(0);
      resolve(s);
    });
    s.once('error', reject);
    s.setTimeout(2000, () => s.destroy(new Error('connect timeout')));
  });
}

// A co-located peer is in the map a moment before its SDK listens on its Unix socket: it is given this long
// to, before the dial goes over TCP instead (a peer whose code does not use the SDK never will).
const LOCAL_WAIT_MS = 1000;

async function dial(id) {
  const start = Date.now();
  const deadline = start + CONNECT_RETRY_MS;
  for (;;) {
    const e = await lookup(id); // a peer that is gone fails here, at once
    if (e.state === 'running' && e.ip) {
      let sock = null;
      const path = localPath(e.instance, e.host);
      if (path) {
        sock = await connectTo({ path }).catch(() => null);
        if (sock) links.unix++;
        else if (Date.now() - start < LOCAL_WAIT_MS) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
      }
      try {
        if (!sock) {
          sock = await connectTo({ host: e.ip, port: e.port });
          links.tcp++;
        }
        const idb = Buffer.from(me(), 'utf8');
        const hello = Buffer.alloc(2 + idb.length);
        hello.writeUInt16BE(idb.length, 0);
        idb.copy(hello, 2);
        sock.write(hello);
        sock.on('error', () => conns.delete(id));
        sock.on('close', () => conns.delete(id));
        return sock;
      } catch (err) {
        // The peer is in the map but not listening yet (its code is just starting): retry briefly.
        if (Date.now() > deadline) throw new PeerGoneError(id, err.message);
      }
    } else if (Date.now() > deadline) throw new PeerGoneError(id, `state ${e.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function connection(id) {
  let c = conns.get(id);
  if (!c) {
    c = dial(id);
    conns.set(id, c);
    c.catch(() => conns.delete(id));
  }
  return c;
}

/**
 * Writes one frame whole: its pieces are queued on the socket in one synchronous step, so frames of
 * sends running at the same time never interleave, whatever their sizes.
 */
function write(sock, ...pieces) {
  if (sock.destroyed) return Promise.reject(new Error('connection closed'));
  let taken = true;
  if (pieces.length > 1) sock.cork();
  for (const p of pieces) taken = sock.write(p);
  if (pieces.length > 1) sock.uncork();
  // Fast path: the kernel took it. A later failure closes the socket and the next send reconnects.
  if (taken) return Promise.resolve();
  // Backpressure: wait for the kernel to take the bytes before queuing more.
  return new Promise((resolve, reject) => {
    const onClose = () => {
      sock.off('drain', onDrain);
      reject(new Error('connection closed'));
    };
    const onDrain = () => {
      sock.off('close', onClose);
      resolve();
    };
    sock.once('drain', onDrain);
    sock.once('close', onClose);
  });
}

// Bytes this activation sent each peer, told to the daemon (the dashboard's job view draws them): at most once a
// second while sending, and once more when the activation ends. Only a named instance reports.
const traffic = { sent: new Map(), timer: null };
function counted(id, n) {
  traffic.sent.set(id, (traffic.sent.get(id) ?? 0) + n);
  if (traffic.timer || !env().instance) return;
  traffic.timer = setTimeout(() => {
    traffic.timer = null;
    void reportTraffic();
  }, 1000);
  traffic.timer.unref?.();
}
const reportTraffic = () => (traffic.sent.size === 0 || !env().instance ? Promise.resolve() : api('PUT', '/v1/self/traffic', { sent: Object.fromEntries(traffic.sent) }).catch(() => undefined));

/** Opens (or reuses) the connection to a peer ahead of the first send, so that send pays no set-up. */
export async function connect(id) {
  await connection(id);
}

const bytesOf = (data) => (typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));

/** One frame to a peer: the header (with a collective's tag) and the payload, which is never copied when large. */
async function sendFrame(id, kind, data, tag = null, signal = undefined) {
  signal?.throwIfAborted();
  const buf = bytesOf(data);
  const tb = tag === null ? null : Buffer.from(tag, 'utf8');
  const prefix = tb ? 2 + tb.length : 0;
  const header = Buffer.allocUnsafe(9 + prefix);
  header[0] = kind;
  header.writeBigUInt64BE(BigInt(prefix + buf.length), 1);
  if (tb) {
    header.writeUInt16BE(tb.length, 9);
    tb.copy(header, 11);
  }
  for (let attempt = 0; ; attempt++) {
    const connP = connection(id);
    const sock = await connP;
    try {
      // Small messages go out in one write; large ones are written as they are, never copied.
      if (buf.length <= SMALL) await write(sock, Buffer.concat([header, buf]));
      else await write(sock, header, buf);
      counted(id, header.length + buf.length);
      return;
    } catch (err) {
      if (conns.get(id) === connP) conns.delete(id);
      sock.destroy();
      if (attempt > 0) throw new PeerGoneError(id, err.message);
      // gone → PeerGoneError (or PeerRestartedError once its job has it back); restarted → PeerRestartedError;
      // still the same → one more try on a new connection
      await same(id).catch((e) => (e instanceof PeerGoneError ? goneOrRestarted(id, e) : Promise.reject(e)));
    }
  }
}

/** Sends bytes (Buffer, Uint8Array or string) to the instance with this ID. */
export const send = (id, data, opts = {}) => sendFrame(id, DATA, data, null, opts.signal);

/** `recv(from, 5000)` is `recv(from, { timeout: 5000 })`. */
const optsOf = (o) => (typeof o === 'number' ? { timeout: o } : (o ?? {}));

/**
 * The next message, from anyone or from one ID: { from, data: Buffer }. Options: timeout (ms, then
 * TimeoutError), signal (an AbortSignal: rejects with its reason).
 */
export function recv(from, opts) {
  const o = optsOf(opts);
  return take((m) => m.kind === DATA && (from == null || m.from === from), from, o).then((m) => ({ from: m.from, data: m.data }));
}

/** Messages as they come, from anyone (or from one ID): `for await (const { from, data } of peerless.messages())`. */
export async function* messages(opts = {}) {
  for (;;) {
    try {
      yield await recv(opts.from, { signal: opts.signal });
    } catch (e) {
      if (e.message === 'activation ended' || (opts.signal?.aborted && e === opts.signal.reason)) return;
      throw e;
    }
  }
}

const GONE_GRACE_MS = 300;
// A sender's connection that stays open this long after it left the map is taken as cut off, not slow.
const GONE_OPEN_LIMIT_MS = 10_000;
// The change stream stays open this long after the last receive that watched it, so a run of receives
// (every round of a collective) does not open and close it each time.
const STREAM_LINGER_MS = 2000;

// Receives waiting on named peers share one change stream from the daemon (GET /v1/events: the map now,
// then again on every change), however many there are, and nothing is asked while the map does not change.
const watchers = new Set();
let stream = null; // the open change-stream request
let lastMap = null; // the map it last brought, by instance ID
let linger = null;
function openStream() {
  const req = http.request({ socketPath: SOCKET, path: '/v1/events', method: 'GET', agent: false, headers: { authorization: `Bearer ${env().token}`, accept: 'text/event-stream' } });
  stream = req;
  const reopen = () => {
    if (stream !== req) return;
    stream = null;
    lastMap = null;
    // The daemon restarted or the stream broke: a new one starts with the whole map again.
    if (watchers.size > 0) setTimeout(() => watchers.size > 0 && stream === null && openStream(), 250).unref();
  };
  req.on('response', (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      return reopen();
    }
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk) => {
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const data = buf
          .slice(0, i)
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        buf = buf.slice(i + 2);
        let map;
        try {
          map = JSON.parse(data);
        } catch {
          continue;
        }
        const byId = new Map(map.instances.map((e) => [e.instance, e]));
        if (stream === req) lastMap = byId;
        for (const f of [...watchers]) f(byId);
      }
    });
    res.on('end', reopen);
    res.on('error', reopen);
  });
  req.on('error', reopen);
  req.end();
}
function closeStream() {
  clearTimeout(linger);
  linger = null;
  const s = stream;
  stream = null;
  lastMap = null;
  s?.destroy();
}
function watch(f) {
  watchers.add(f);
  clearTimeout(linger);
  linger = null;
  if (stream === null) openStream();
  // A watcher added while the stream is open missed its first map: the latest is the map now (any change
  // since would have come as a newer one).
  else if (lastMap !== null) {
    const m = lastMap;
    queueMicrotask(() => watchers.has(f) && f(m));
  }
  return () => {
    watchers.delete(f);
    if (watchers.size === 0 && stream !== null && linger === null) linger = setTimeout(closeStream, STREAM_LINGER_MS).unref();
  };
}

/**
 * The first message `match` accepts, from the inbox or as it arrives. Waiting on one peer (`from`): if it
 * leaves the map without having sent, it fails instead of waiting forever; if its job restarted it, it says
 * so (what it was to send is lost with its old life).
 */
function take(match, from, { timeout, signal } = {}) {
  const i = inbox.findIndex(match);
  if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const timers = [];
    let check = null;
    let unwatch = null;
    const onAbort = () => fail(signal.reason);
    const finish = (f) => {
      for (const t of timers) clearTimeout(t), clearInterval(t);
      unwatch?.();
      signal?.removeEventListener('abort', onAbort);
      const j = waiters.indexOf(w);
      if (j >= 0) waiters.splice(j, 1);
      if (check) onClosed = onClosed.filter((c) => c !== check);
      f();
    };
    const w = { match, resolve: (m) => finish(() => (m ? resolve(m) : reject(new Error('activation ended')))) };
    const fail = (e) => {
      if (waiters.includes(w)) finish(() => reject(e));
    };
    waiters.push(w);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeout != null) timers.push(setTimeout(() => fail(new TimeoutError(`no message${from ? ` from ${from}` : ''} within ${timeout} ms`)), timeout));
    if (from == null) return;
    unwatch = watch((byId) => {
      const e = byId.get(from);
      if (e) {
        const k = known.get(from);
        if (!k) remember(e);
        else if ((e.epoch ?? 0) !== k.epoch) fail(restarted(e));
        return;
      }
      unwatch();
      unwatch = null;
      const gone = new PeerGoneError(from, 'it ended without sending');
      if (known.get(from)?.restart) return void goneOrRestarted(from, gone).catch(fail);
      // Its last bytes may still be on their way: fail only once no connection that could carry them is
      // left (after a grace for one not yet accepted), or once one has stayed open far too long.
      const goneAt = Date.now();
      check = () => {
        const waited = Date.now() - goneAt;
        const arriving = (reading.get(from) ?? 0) > 0 || unnamed > 0;
        if (waited > GONE_OPEN_LIMIT_MS || (waited > GONE_GRACE_MS && !arriving)) fail(gone);
      };
      onClosed.push(check);
      timers.push(setInterval(check, GONE_GRACE_MS / 3));
    });
  });
}

// ---- collectives (collectives.js holds the schedules; this is their transport) ----

const ABORT = '!';
const collectives = new Collectives({
  get me() {
    return me();
  },
  ready: (ids, o) => waitFor(ids, { timeout: o.timeout ?? 60000, signal: o.signal }),
  send: (peer, tag, bytes, o) => sendFrame(peer, COLL, bytes, tag, o.signal),
  async recv(peer, tag, base, o) {
    const m = await take((x) => x.kind === COLL && ((x.from === peer && x.tag === tag) || x.tag === base + ABORT), peer, o);
    if (m.tag !== tag) {
      // Another member could not go on: fail as it did, naming the same peer.
      let why = {};
      try {
        why = JSON.parse(m.data.toString('utf8'));
      } catch {}
      const inst = typeof why.instance === 'string' ? why.instance : m.from;
      const err = why.epoch != null ? new PeerRestartedError(inst, why.epoch) : new PeerGoneError(inst, `${m.from} saw it fail during a collective`);
      err.relayed = true;
      throw err;
    }
    return m.data;
  },
  async abort(peers, base, err) {
    if (err.relayed) return; // whoever saw the failure first tells everyone; the others only fail
    const why = Buffer.from(JSON.stringify({ instance: err.instance, ...(err.epoch != null ? { epoch: err.epoch } : {}) }));
    const bounded = (p) => Promise.race([p, new Promise((r) => setTimeout(r, 2000).unref())]);
    await Promise.allSettled(peers.map((p) => bounded(sendFrame(p, COLL, why, base + ABORT))));
  },
});

/**
 * Sends the root's value to every member and returns it (a binomial tree). Called by every member with the
 * same IDs; non-roots pass undefined (they get a Buffer) or a value of the kind they expect. Called by an
 * instance that is not in `ids`, it just sends the data to each of them (they recv() it).
 */
export function broadcast(ids, data, opts = {}) {
  if (!ids.includes(me())) return Promise.all(ids.map((id) => send(id, data, opts)));
  return collectives.broadcast(ids, data, opts);
}
export const reduce = (ids, value, op, opts) => collectives.reduce(ids, value, op, opts);
export const allreduce = (ids, value, op, opts) => collectives.allreduce(ids, value, op, opts);
export const scan = (ids, value, op, opts) => collectives.scan(ids, value, op, opts);
export const alltoall = (ids, parts, opts) => collectives.alltoall(ids, parts, opts);
export const barrier = (ids, opts) => collectives.barrier(ids, opts);
export const scatter = (ids, chunks, opts = {}) => Promise.all(ids.map((id, i) => send(id, chunks[i], opts)));
/** One message from each ID, in the order of the IDs. */
export const gather = async (ids, opts) => Promise.all(ids.map(async (id) => (await recv(id, opts)).data));
export const instanceId = () => env().instance;
