import { describe, expect, it } from 'vitest';
// @ts-expect-error the SDK is plain JavaScript, shipped into the runtime image as it is
import { Collectives, decode, encode, groupHash, OPS } from '../../sandbox/runtime/nodejs/sdk/collectives.js';

// The Node.js SDK's collective schedules over an in-memory twin of its transport: every member a
// Collectives of its own, messages matched by sender and tag as the SDK does. The same schedules run over
// TCP in test/integration/collectives.test.ts; here they run with many members, fast, and counted.

type Msg = { from: string; tag: string; bytes: Buffer };
class Net {
  boxes = new Map<string, Msg[]>();
  waiting = new Map<string, (() => void)[]>();
  sent = 0;
  dead = new Set<string>();
  member(me: string) {
    const net = this;
    const box = () => net.boxes.get(me) ?? net.boxes.set(me, []).get(me)!;
    return new Collectives({
      me,
      async ready() {},
      async send(peer: string, tag: string, bytes: Uint8Array) {
        if (net.dead.has(peer)) throw Object.assign(new Error(`instance ${peer} is not alive`), { instance: peer });
        net.sent++;
        (net.boxes.get(peer) ?? net.boxes.set(peer, []).get(peer)!).push({ from: me, tag, bytes: Buffer.from(bytes) });
        for (const w of net.waiting.get(peer)?.splice(0) ?? []) w();
      },
      async recv(peer: string, tag: string, base: string) {
        for (;;) {
          const b = box();
          const i = b.findIndex((m) => (m.from === peer && m.tag === tag) || m.tag === `${base}!`);
          if (i >= 0) {
            const m = b.splice(i, 1)[0];
            if (m.tag !== tag) throw Object.assign(new Error(`relayed: ${m.bytes}`), { instance: JSON.parse(m.bytes.toString()).instance, relayed: true });
            return m.bytes;
          }
          if (net.dead.has(peer)) throw Object.assign(new Error(`instance ${peer} is not alive`), { instance: peer });
          await new Promise<void>((r) => (net.waiting.get(me) ?? net.waiting.set(me, []).get(me)!).push(r));
        }
      },
      async abort(peers: string[], base: string, err: { instance: string; relayed?: boolean }) {
        if (err.relayed) return;
        for (const p of peers) await this.send(p, `${base}!`, Buffer.from(JSON.stringify({ instance: err.instance })));
      },
    });
  }
  kill(id: string) {
    this.dead.add(id);
    for (const ws of this.waiting.values()) for (const w of ws.splice(0)) w();
  }
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `m-${i}`);
const SIZES = [1, 2, 3, 8, 33];
async function all<T>(n: number, f: (c: any, id: string, rank: number) => Promise<T>): Promise<{ out: T[]; sent: number }> {
  const net = new Net();
  const members = ids(n).map((id) => net.member(id));
  const out = await Promise.all(members.map((c, r) => f(c, ids(n)[r], r)));
  return { out, sent: net.sent };
}
const log2 = (n: number) => Math.ceil(Math.log2(n));

describe('collectives (Node.js SDK schedules)', () => {
  it.each(SIZES)('allreduce of %i members: every member gets the sum; numbers, typed arrays and rank order kept', async (n) => {
    const sum = await all(n, (c, _, r) => c.allreduce(ids(n), r + 1, 'sum'));
    expect(sum.out).toEqual(Array(n).fill((n * (n + 1)) / 2));
    const vec = await all(n, (c, _, r) => c.allreduce(ids(n), new Float32Array([r, 10 - r, 1]), 'max'));
    for (const v of vec.out) expect([...(v as Float32Array)]).toEqual([n - 1, 10, 1]);
    // Concatenation does not commute: the result shows the order the operator was applied in.
    const cat = await all(n, (c, id) => c.allreduce(ids(n), `${id.slice(2)},`, (a: string, b: string) => a + b));
    expect(new Set(cat.out)).toEqual(
      new Set([
        ids(n)
          .map((i) => `${i.slice(2)},`)
          .join(''),
      ]),
    );
  });

  it.each(SIZES)('allreduce of a large array among %i members scatters and gathers: same sums, ~2× the array sent per member', async (n) => {
    const len = 10_000; // 80 KB of f64: past LARGE
    const r = await all(n, (c, _, rank) =>
      c.allreduce(
        ids(n),
        Float64Array.from({ length: len }, (__, i) => rank * len + i),
        'sum',
      ),
    );
    const want = Float64Array.from({ length: len }, (_, i) => ((n * (n - 1)) / 2) * len + n * i);
    for (const v of r.out) expect(v).toEqual(want);
    // Per member of the power of two: log2 p messages out while scattering, log2 p while gathering.
    let p = 1;
    while (p * 2 <= n) p *= 2;
    expect(r.sent).toBe(2 * p * Math.log2(p) + 2 * (n - p));
    const min = await all(n, (c, _, rank) => c.allreduce(ids(n), new Int32Array(20_000).fill(rank + 1), 'min'));
    for (const v of min.out) expect((v as Int32Array).every((x) => x === 1)).toBe(true);
  });

  it.each(SIZES)('reduce of %i members to a root that is not rank 0 keeps rank order; others get undefined', async (n) => {
    const root = ids(n)[n - 1];
    const r = await all(n, (c, id) => c.reduce(ids(n), `${id.slice(2)}|`, (a: string, b: string) => a + b, { root }));
    expect(r.out[n - 1]).toBe(
      ids(n)
        .map((i) => `${i.slice(2)}|`)
        .join(''),
    );
    expect(r.out.slice(0, n - 1).every((x) => x === undefined)).toBe(true);
    // A binomial tree: n - 1 messages, and one more to hand the result to a root other than rank 0.
    expect(r.sent).toBe(n - 1 + (n > 1 ? 1 : 0));
  });

  it.each(SIZES)('scan of %i members: member r gets v0 op ... op vr', async (n) => {
    const s = await all(n, (c, _, r) => c.scan(ids(n), BigInt(r), 'sum'));
    expect(s.out).toEqual(ids(n).map((_, r) => BigInt((r * (r + 1)) / 2)));
    const order = await all(n, (c, id) => c.scan(ids(n), id.slice(2), (a: string, b: string) => `${a}${b}`));
    expect(order.out).toEqual(
      ids(n).map((_, r) =>
        ids(n)
          .slice(0, r + 1)
          .map((i) => i.slice(2))
          .join(''),
      ),
    );
  });

  it.each(SIZES)('broadcast of %i members from a middle root reaches everyone in n - 1 messages', async (n) => {
    const root = ids(n)[Math.floor(n / 2)];
    const b = await all(n, (c, id) => c.broadcast(ids(n), id === root ? new Int32Array([7, 8, 9]) : new Int32Array(0), { root }));
    for (const v of b.out) expect([...(v as Int32Array)]).toEqual([7, 8, 9]);
    expect(b.sent).toBe(n - 1);
  });

  it.each(SIZES)('alltoall of %i members: member j gets part j of every member, by rank', async (n) => {
    const a = await all(n, (c, _, r) =>
      c.alltoall(
        ids(n),
        ids(n).map((__, j) => `${r}->${j}`),
      ),
    );
    a.out.forEach((got, j) => expect(got).toEqual(ids(n).map((__, r) => `${r}->${j}`)));
    expect(a.sent).toBe(n * (n - 1));
  });

  it.each(SIZES)('barrier of %i members takes ceil(log2 n) rounds of one message each', async (n) => {
    const b = await all(n, (c) => c.barrier(ids(n)));
    expect(b.out).toHaveLength(n);
    expect(b.sent).toBe(n * log2(n));
  });

  it('keeps successive collectives of one group, and of two groups, apart', async () => {
    const n = 8;
    const net = new Net();
    const members = ids(n).map((id) => net.member(id));
    const evens = ids(n).filter((_, i) => i % 2 === 0);
    const out = await Promise.all(
      members.map(async (c, r) => {
        const inEven = r % 2 === 0;
        const [a, b, e] = await Promise.all([c.allreduce(ids(n), r, 'sum'), c.allreduce(ids(n), 1, 'prod'), inEven ? c.allreduce(evens, r, 'max') : Promise.resolve(null)]);
        return [a, b, e];
      }),
    );
    for (const [r, [a, b, e]] of out.entries()) {
      expect(a).toBe(28);
      expect(b).toBe(1);
      expect(e).toBe(r % 2 === 0 ? 6 : null);
    }
  });

  it('a member that dies makes every other member fail naming it, not hang', async () => {
    const n = 8;
    const net = new Net();
    const members = ids(n).map((id) => net.member(id));
    // m-5 never joins: it died before the collective.
    net.kill('m-5');
    const results = await Promise.allSettled(members.filter((_, r) => r !== 5).map((c) => c.allreduce(ids(n), 1, 'sum')));
    for (const r of results) {
      expect(r.status, JSON.stringify(results.map((x) => (x.status === 'fulfilled' ? x.value : x.reason.message)))).toBe('rejected');
      expect((r as PromiseRejectedResult).reason.instance).toBe('m-5');
    }
  });

  it('refuses what it cannot do with a clear error', async () => {
    const c = new Net().member('a');
    expect(() => c.allreduce(['b', 'c'], 1, 'sum')).toThrow(/not in the ID list/);
    expect(() => c.allreduce(['a', 'a'], 1, 'sum')).toThrow(/duplicates/);
    expect(() => c.allreduce(['a'], 1, 'avg')).toThrow(/unknown operator "avg"/);
    expect(() => c.alltoall(['a'], [])).toThrow(/one part per member/);
    expect(() => decode(Buffer.alloc(3), new Float64Array(0))).toThrow(/not a whole Float64Array/);
    expect(() => OPS.sum('a', 'b')).toThrow(/numbers and typed arrays/);
  });

  it('agrees with the Python SDK on tags and bytes (docs/wire.md)', () => {
    expect(groupHash(['a', 'b'])).toBe('28e4c710');
    expect(encode(1.5).toString('hex')).toBe('000000000000f83f');
    expect(encode(-2n).toString('hex')).toBe('feffffffffffffff');
  });
});
