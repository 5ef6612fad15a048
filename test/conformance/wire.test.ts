import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDirectory } from './directory.ts';

// The wire conformance suite (docs/wire.md): the Node.js and the Python SDK, each as it ships, in processes
// of their own on loopback, against each other. Node→Python and Python→Node, sizes from 0 B to 64 MiB sent
// all at once to one peer, a peer that sends garbage or a length of 2^63, and every collective with members
// of both languages mixed, including one that dies in the middle.

type Lang = 'node' | 'python';
const DIR = import.meta.dirname;
let tmp: string;
let sock: string;
const dir = new FakeDirectory();
// Below the kernel's ephemeral range (32768+), where an outgoing connection could hold a port first.
let nextPort = 20000 + (process.pid % 1000) * 12;
const procs = new Set<ChildProcess>();

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'peerless-wire-'));
  sock = join(tmp, 'api.sock');
  await dir.listen(sock);
});
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await dir.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Starts a member; resolves with the JSON line it prints. It is in the map from the start, as a running instance is. */
function member(lang: Lang, id: string, task: object, maxFrame = 2 ** 31): { done: Promise<any>; port: number } {
  const port = nextPort++;
  const env = { ...process.env, __OW_PEERLESS_API_SOCKET: sock, __OW_PEERLESS_INSTANCE: id, __OW_PEERLESS_PORT: String(port), __OW_PEERLESS_MAX_FRAME: String(maxFrame) };
  const args = lang === 'node' ? [join(DIR, 'member.mjs'), JSON.stringify(task)] : [join(DIR, 'member.py'), JSON.stringify(task)];
  const p = spawn(lang === 'node' ? process.execPath : 'python3', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(p);
  let out = '';
  let err = '';
  let ready = false;
  p.stdout!.on('data', (c) => {
    out += c;
    // In the map once it listens, as a running instance is (the daemon lists it just before its code runs).
    if (!ready && out.includes('\n')) {
      ready = true;
      dir.add(id, port);
      out = out.slice(out.indexOf('\n') + 1);
    }
  });
  p.stderr!.on('data', (c) => (err += c));
  const done = new Promise<any>((resolve, reject) => {
    // 'close', not 'exit': only then has all it printed been read (on a loaded machine 'exit' can come first).
    p.once('close', (code) => {
      procs.delete(p);
      dir.remove(id);
      let parsed: object | null = null;
      try {
        parsed = code === 0 ? JSON.parse(out) : null;
      } catch {
        // reported below, with what it printed
      }
      resolve(parsed ? { ...parsed, stderr: err } : { exit: code, stdout: out.slice(0, 2000), stderr: err.slice(0, 4000) });
    });
    p.once('error', reject);
  });
  return { done, port };
}

const SIZES = [0, 1, 8, 9, 65_535, 65_536, 65_537, 1 << 20, 16 << 20, 64 << 20];
const PAIRS: [Lang, Lang][] = [
  ['node', 'python'],
  ['python', 'node'],
  ['node', 'node'],
  ['python', 'python'],
];

describe('wire between the SDKs', () => {
  it.each(PAIRS)(
    '%s → %s: every size from 0 B to 64 MiB, all sent at once to one peer, arrives whole',
    async (from, to) => {
      const rx = member(to, `rx-${from}-${to}`, { do: 'recv', count: SIZES.length });
      const tx = member(from, `tx-${from}-${to}`, { do: 'send', to: `rx-${from}-${to}`, sizes: SIZES });
      const [got, sent] = await Promise.all([rx.done, tx.done]);
      expect(sent.sent, sent.stderr).toBe(SIZES.length);
      expect(
        got.got.map((g: any) => g.size),
        got.stderr,
      ).toEqual(SIZES);
      expect(got.got.every((g: any) => g.ok && g.from === `tx-${from}-${to}`)).toBe(true);
      expect(got.refused).toEqual({ tooLong: 0, badKind: 0, badTag: 0 });
    },
    120_000,
  );

  it.each(['node', 'python'] as Lang[])(
    'a %s receiver closes a connection that sends garbage or a length of 2^63, counts it, and goes on',
    async (lang) => {
      const rx = member(lang, `guard-${lang}`, { do: 'recv', count: 1 }, 1 << 20);
      // Raw connections, as a broken or hostile peer would make them: a hello, then one bad frame each.
      const hello = Buffer.concat([Buffer.from([0, 4]), Buffer.from('evil')]);
      const frame = (kind: number, len: bigint, rest = Buffer.alloc(0)) => {
        const h = Buffer.alloc(9);
        h[0] = kind;
        h.writeBigUInt64BE(len, 1);
        return Buffer.concat([h, rest]);
      };
      const bad = [
        frame(9, 3n, Buffer.from('abc')), // a kind nobody defined
        frame(0, 2n ** 63n), // a length of 2^63
        frame(0, (1n << 20n) + 1n), // one byte over this receiver's limit
        frame(2, 4n, Buffer.from([0xff, 0xff, 0, 0])), // a collective frame whose tag runs past its end
      ];
      for (const b of bad) {
        const closed = await new Promise<boolean>((resolve) => {
          const tryOnce = () => {
            const s = connect({ host: '127.0.0.1', port: rx.port });
            let connected = false;
            s.on('error', () => connected || setTimeout(tryOnce, 50)); // not listening yet; once connected, a reset is its answer
            s.once('connect', () => {
              connected = true;
              s.write(Buffer.concat([hello, b]));
              const t = setTimeout(() => (s.destroy(), resolve(false)), 5000);
              s.once('close', () => (clearTimeout(t), resolve(true)));
              s.resume();
            });
          };
          tryOnce();
        });
        expect(closed).toBe(true);
      }
      // ...and a good peer is still served.
      const tx = member(lang === 'node' ? 'python' : 'node', `good-${lang}`, { do: 'send', to: `guard-${lang}`, sizes: [1000] });
      const [got] = await Promise.all([rx.done, tx.done]);
      expect(got.got, got.stderr).toEqual([expect.objectContaining({ size: 1000, ok: true })]);
      expect(got.refused, got.stderr).toEqual({ tooLong: 2, badKind: 1, badTag: 1 });
      expect(got.stderr).toMatch(/closed the connection from evil: a frame of 9223372036854775808 bytes is over the limit/);
    },
    60_000,
  );
});

describe('collectives with members of both languages', () => {
  const run = async (n: number, dieAt?: string) => {
    const ids = Array.from({ length: n }, (_, i) => `c${n}-${i}`);
    const outs = await Promise.all(ids.map((id, i) => member(i % 2 === 0 ? 'node' : 'python', id, { do: 'collectives', ids, dieAt, limit: 40 }).done));
    return { ids, outs };
  };

  it.each([1, 2, 3, 8, 33])(
    '%i members: allreduce, reduce, scan, broadcast, alltoall and barrier agree, in rank order',
    async (n) => {
      const { ids, outs } = await run(n);
      for (const [r, o] of outs.entries()) {
        expect(o.exit, outs.map((x) => x.stderr).join('\n')).toBeUndefined();
        expect(o.sum).toBe((n * (n + 1)) / 2);
        expect(o.vec).toEqual([0, 10 - (n - 1)]);
        expect(o.big).toEqual(Array(3).fill((n * (n - 1)) / 2)); // 160 KB: the scatter-gather schedule
        expect(o.order).toBe(ids.map((_, i) => `${i},`).join(''));
        expect(o.reduced).toBe(r === n - 1 ? ids.map((_, i) => `${i}|`).join('') : null);
        expect(o.scan).toBeCloseTo(
          Array.from({ length: r + 1 }, (_, i) => i + 0.5).reduce((a, b) => a + b),
          9,
        );
        expect(o.bcast).toBe('from the root');
        expect(o.aio).toBe(2 * n); // Python members through peerless.aio
        expect(o.shuffle).toEqual(ids.map((_, i) => `${i}->${r}`));
        expect(o.after).toBe(n);
      }
    },
    120_000,
  );

  it('a member that dies between two collectives makes every other fail with PeerGoneError naming it', async () => {
    const { ids, outs } = await run(8, 'c8-5');
    for (const [r, o] of outs.entries()) {
      if (r === 5) expect(o.exit).toBe(3);
      else expect(o.after, `${ids[r]}: ${o.stderr}`).toEqual({ error: 'PeerGoneError', instance: 'c8-5' });
    }
  }, 60_000);
});
