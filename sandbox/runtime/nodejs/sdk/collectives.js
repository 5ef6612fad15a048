// Collectives over a list of instance IDs, as schedules of point-to-point
// messages: no I/O here, only a transport handed in (the SDK's, or an
// in-memory twin in the tests). Every member calls the same collective with
// the same ID list; a member's rank is its index in that list. The algorithms
// and the tags they put on the wire are specified in docs/wire.md: the Python
// SDK runs the very same schedules, so Node.js and Python members mix.

/**
 * @typedef {{ me: string,
 *   ready(ids: string[], opts: Opts): Promise<void>,
 *   send(peer: string, tag: string, bytes: Uint8Array, opts: Opts): Promise<void>,
 *   recv(peer: string, tag: string, base: string, opts: Opts): Promise<Buffer>,
 *   abort(peers: string[], base: string, err: Error): Promise<void> }} Transport
 * @typedef {{ signal?: AbortSignal, timeout?: number }} Opts
 */

// ---- values: what travels is bytes; a member's own value says how to read what it receives ----

const TYPED = [Float64Array, Float32Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array, BigInt64Array, BigUint64Array];

/** The bytes of a value: numbers as one little-endian f64, bigints as one i64, arrays and buffers as they are. */
export function encode(v) {
  if (typeof v === 'number') {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(v);
    return b;
  }
  if (typeof v === 'bigint') {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64LE(v);
    return b;
  }
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError('a collective takes a number, a bigint, a string, a Buffer or a typed array');
}

/** Reads bytes back as a value of the same kind as `like` (the caller's own contribution). */
export function decode(bytes, like) {
  if (typeof like === 'number') return bytes.readDoubleLE(0);
  if (typeof like === 'bigint') return bytes.readBigInt64LE(0);
  if (typeof like === 'string') return bytes.toString('utf8');
  if (Buffer.isBuffer(like) || like === undefined) return bytes;
  const Ctor = TYPED.find((C) => like instanceof C) ?? Uint8Array;
  if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw new RangeError(`${bytes.byteLength} bytes are not a whole ${Ctor.name}`);
  // A typed array must start on a multiple of its element size: copy when the frame's bytes do not.
  const aligned = bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? bytes : Buffer.from(bytes);
  return new Ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / Ctor.BYTES_PER_ELEMENT);
}

const SCALAR = { sum: (x, y) => x + y, prod: (x, y) => x * y, min: (x, y) => (y < x ? y : x), max: (x, y) => (y > x ? y : x) };
const elementwise = (f) => (a, b) => {
  if (typeof a === 'number' || typeof a === 'bigint') return f(a, b);
  if (typeof a === 'string' || Buffer.isBuffer(a)) throw new TypeError('the built-in operators take numbers and typed arrays: pass a function for strings and bytes');
  if (a.length !== b.length) throw new RangeError(`cannot combine arrays of ${a.length} and ${b.length} elements`);
  const out = new a.constructor(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i], b[i]);
  return out;
};
/** Built-in operators, element by element on typed arrays; each returns a new value (never changes its inputs). */
export const OPS = Object.fromEntries(Object.entries(SCALAR).map(([k, f]) => [k, elementwise(f)]));
/** From this many bytes, an allreduce of a typed array with a built-in operator scatters and gathers (docs/wire.md). */
export const LARGE = 64 * 1024;
function operator(op) {
  if (typeof op === 'function') return op;
  const f = OPS[op];
  if (!f) throw new TypeError(`unknown operator ${JSON.stringify(op)}: sum, prod, min, max or a function (a, b) => c`);
  return f;
}

// ---- tags: which collective, which call, which round (docs/wire.md) ----

/** FNV-1a (32 bits) of the IDs joined by newlines, in hex: two groups' collectives never take each other's messages. */
export function groupHash(ids) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(ids.join('\n'), 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

export class Collectives {
  /** @param {Transport} t */
  constructor(t) {
    this.t = t;
    /** calls made so far per group: every member counts the same, so the n-th call's tags agree everywhere */
    this.calls = new Map();
    /** groups whose members have all been seen running (members of a job start at about the same time) */
    this.seen = new Set();
  }

  /** Forgets the call counts (a new activation starts from zero). */
  reset() {
    this.calls.clear();
    this.seen.clear();
  }

  group(name, ids, opts) {
    if (!Array.isArray(ids) || ids.length === 0) throw new TypeError(`${name} needs a non-empty list of instance IDs`);
    if (new Set(ids).size !== ids.length) throw new TypeError(`${name}: the ID list has duplicates`);
    const rank = ids.indexOf(this.t.me);
    if (rank < 0) throw new TypeError(`${name}: this instance (${this.t.me}) is not in the ID list`);
    const gh = groupHash(ids);
    const seq = this.calls.get(gh) ?? 0;
    this.calls.set(gh, seq + 1);
    const base = `${gh}.${seq}`;
    const t = this.t;
    return {
      rank,
      n: ids.length,
      send: (r, step, bytes) => t.send(ids[r], `${base}.${name}.${step}`, bytes, opts),
      recv: (r, step) => t.recv(ids[r], `${base}.${name}.${step}`, base, opts),
      /** runs the schedule; on a failure the other members are told, so they fail naming the same peer */
      run: async (body) => {
        try {
          // The first collective of a group waits for every member to be running: one that has not started
          // yet is not gone. A member that failed before it ran fails this at once.
          if (!this.seen.has(gh)) {
            await t.ready(ids, opts);
            this.seen.add(gh);
          }
          return await body();
        } catch (err) {
          if (err && err.instance)
            await t.abort(
              ids.filter((id) => id !== t.me && id !== err.instance),
              base,
              err,
            );
          throw err;
        }
      },
    };
  }

  /** Every member gets the root's value: a binomial tree, ceil(log2 n) rounds. */
  broadcast(ids, value, opts = {}) {
    const g = this.group('bcast', ids, opts);
    const root = rootOf(ids, opts.root);
    return g.run(async () => {
      const vr = (g.rank - root + g.n) % g.n;
      const real = (v) => (v + root) % g.n;
      let bytes = vr === 0 ? encode(value) : null;
      let mask = 1;
      for (; mask < g.n; mask <<= 1) {
        if (vr & mask) {
          bytes = await g.recv(real(vr - mask), 0);
          break;
        }
      }
      const sends = [];
      for (mask >>= 1; mask > 0; mask >>= 1) if (vr + mask < g.n) sends.push(g.send(real(vr + mask), 0, bytes));
      await Promise.all(sends);
      return vr === 0 ? value : decode(bytes, value);
    });
  }

  /**
   * Combines every member's value into the root's, in rank order (v0 op v1 op ... op vn-1: operators need
   * not commute): a binomial tree towards rank 0, then on to the root. Others get undefined.
   */
  reduce(ids, value, op, opts = {}) {
    const f = operator(op);
    const g = this.group('reduce', ids, opts);
    const root = rootOf(ids, opts.root);
    return g.run(async () => {
      let acc = value;
      for (let mask = 1; mask < g.n; mask <<= 1) {
        if (g.rank & mask) {
          await g.send(g.rank - mask, 0, encode(acc));
          break;
        }
        if (g.rank + mask < g.n) acc = f(acc, decode(await g.recv(g.rank + mask, 0), value));
      }
      if (root === 0) return g.rank === 0 ? acc : undefined;
      if (g.rank === 0) await g.send(root, 1, encode(acc));
      return g.rank === root ? decode(await g.recv(0, 1), value) : undefined;
    });
  }

  /**
   * Every member gets v0 op v1 op ... op vn-1: recursive doubling, log2 n rounds, with the members past the
   * largest power of two folded in first and given the result last. Rank order is kept.
   */
  allreduce(ids, value, op, opts = {}) {
    const f = operator(op);
    const g = this.group('allreduce', ids, opts);
    return g.run(async () => {
      const r = g.rank;
      let p = 1;
      while (p * 2 <= g.n) p *= 2;
      const rem = g.n - p;
      // A large array with a built-in operator: reduce-scatter then allgather (Rabenseifner), so each member
      // sends and combines about twice its array in all instead of log2 p times it.
      const large = typeof op === 'string' && ArrayBuffer.isView(value) && !Buffer.isBuffer(value) && value.byteLength >= LARGE && value.length >= p;
      let acc = large ? value.slice() : value;
      let nr; // rank among the p that take part in the main phase
      if (r < 2 * rem) {
        if (r % 2 === 0) {
          await g.send(r + 1, 'in', encode(acc));
          nr = -1;
        } else {
          acc = f(decode(await g.recv(r - 1, 'in'), value), acc);
          nr = r >> 1;
        }
      } else nr = r - rem;
      if (nr >= 0) {
        const peerOf = (pn) => (pn < rem ? pn * 2 + 1 : pn + rem);
        if (large) acc = await rabenseifner(g, acc, SCALAR[op], nr, p, peerOf);
        else {
          for (let mask = 1, k = 0; mask < p; mask <<= 1, k++) {
            const pn = nr ^ mask;
            const [, got] = await Promise.all([g.send(peerOf(pn), k, encode(acc)), g.recv(peerOf(pn), k)]);
            const other = decode(got, value);
            acc = pn < nr ? f(other, acc) : f(acc, other);
          }
        }
      }
      if (r < 2 * rem) {
        if (r % 2 === 1) await g.send(r - 1, 'out', encode(acc));
        else acc = decode(await g.recv(r + 1, 'out'), value);
      }
      return acc;
    });
  }

  /** Inclusive prefix: member r gets v0 op ... op vr, in ceil(log2 n) rounds. */
  scan(ids, value, op, opts = {}) {
    const f = operator(op);
    const g = this.group('scan', ids, opts);
    return g.run(async () => {
      let acc = value;
      for (let d = 1, k = 0; d < g.n; d <<= 1, k++) {
        const sent = g.rank + d < g.n ? g.send(g.rank + d, k, encode(acc)) : null;
        if (g.rank - d >= 0) acc = f(decode(await g.recv(g.rank - d, k), value), acc);
        await sent;
      }
      return acc;
    });
  }

  /**
   * The shuffle: parts[i] goes to member i; returns what each member sent this one, by rank. Pairwise: in step
   * s a member sends to rank+s and receives from rank-s, so no member is every sender's target at once.
   */
  alltoall(ids, parts, opts = {}) {
    const g = this.group('alltoall', ids, opts);
    if (!Array.isArray(parts) || parts.length !== ids.length) throw new TypeError(`alltoall needs one part per member: ${ids.length} parts`);
    return g.run(async () => {
      const out = new Array(g.n);
      out[g.rank] = parts[g.rank];
      const steps = [];
      for (let s = 1; s < g.n; s++) {
        const to = (g.rank + s) % g.n;
        const from = (g.rank - s + g.n) % g.n;
        steps.push(
          g.send(to, 0, encode(parts[to])),
          g.recv(from, 0).then((b) => (out[from] = decode(b, parts[from]))),
        );
      }
      await Promise.all(steps);
      return out;
    });
  }

  /** Returns once every member has reached it: a dissemination barrier, ceil(log2 n) rounds of one message each. */
  barrier(ids, opts = {}) {
    const g = this.group('barrier', ids, opts);
    return g.run(async () => {
      const empty = Buffer.alloc(0);
      for (let d = 1, k = 0; d < g.n; d <<= 1, k++) {
        await Promise.all([g.send((g.rank + d) % g.n, k, empty), g.recv((g.rank - d + g.n) % g.n, k)]);
      }
    });
  }
}

/**
 * The large-array allreduce among p (a power of two) members, in place on acc: recursive halving (each round
 * keeps half of its blocks and sends the other half to the partner whose rank differs in that bit, adding
 * what comes back), after which member nr holds block nr reduced; then recursive doubling hands every block
 * to everyone. Blocks: p slices of the array, block i from floor(i·len/p) to floor((i+1)·len/p).
 */
async function rabenseifner(g, acc, op, nr, p, peerOf) {
  const at = (b) => Math.floor((b * acc.length) / p);
  const part = (lo, hi) => acc.subarray(at(lo), at(hi));
  let lo = 0;
  let hi = p;
  for (let mask = p >> 1, k = 0; mask >= 1; mask >>= 1, k++) {
    const mid = lo + mask;
    const [keepLo, keepHi, sendLo, sendHi] = nr & mask ? [mid, hi, lo, mid] : [lo, mid, mid, hi];
    const peer = peerOf(nr ^ mask);
    const [, got] = await Promise.all([g.send(peer, `rs${k}`, encode(part(sendLo, sendHi))), g.recv(peer, `rs${k}`)]);
    const mine = part(keepLo, keepHi);
    const other = decode(got, mine);
    if (other.length !== mine.length) throw new RangeError(`cannot combine arrays of ${mine.length} and ${other.length} elements`);
    for (let i = 0; i < mine.length; i++) mine[i] = op(mine[i], other[i]);
    [lo, hi] = [keepLo, keepHi];
  }
  for (let mask = 1, k = 0; mask < p; mask <<= 1, k++) {
    const peer = peerOf(nr ^ mask);
    const [, got] = await Promise.all([g.send(peer, `ag${k}`, encode(part(lo, hi))), g.recv(peer, `ag${k}`)]);
    // The partner holds the neighbouring run of blocks of the same size: below or above this one's.
    const [olo, ohi] = nr & mask ? [lo - mask, lo] : [hi, hi + mask];
    part(olo, ohi).set(decode(got, acc));
    [lo, hi] = [Math.min(lo, olo), Math.max(hi, ohi)];
  }
  return acc;
}

function rootOf(ids, root) {
  if (root === undefined) return 0;
  const r = ids.indexOf(root);
  if (r < 0) throw new TypeError(`the root ${root} is not in the ID list`);
  return r;
}
