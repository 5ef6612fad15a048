"""The Python SDK's collective schedules over an in-memory twin of its transport, each member a thread
with a Collectives of its own (run by test/unit/collectives-py.test.ts). Mirrors test/unit/collectives.test.ts."""
import array
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "sandbox", "runtime", "python"))
from peerless.collectives import OPS, Collectives, decode, encode, group_hash  # noqa: E402


class Gone(Exception):
    def __init__(self, instance, relayed=False):
        super().__init__("instance %s is not alive" % instance)
        self.instance = instance
        self.relayed = relayed


class Net:
    def __init__(self):
        self.cv = threading.Condition()
        self.boxes = {}
        self.sent = 0
        self.dead = set()

    def member(self, me):
        net = self

        class T:
            def __init__(self):
                self.me = me

            def ready(self, ids, timeout):
                pass

            def send(self, peer, tag, data):
                with net.cv:
                    if peer in net.dead:
                        raise Gone(peer)
                    net.sent += 1
                    net.boxes.setdefault(peer, []).append((me, tag, bytes(data)))
                    net.cv.notify_all()

            def recv(self, peer, tag, base, timeout):
                with net.cv:
                    while True:
                        box = net.boxes.setdefault(me, [])
                        for i, (frm, t, d) in enumerate(box):
                            if (frm == peer and t == tag) or t == base + "!":
                                del box[i]
                                if t != tag:
                                    raise Gone(json.loads(d)["instance"], relayed=True)
                                return d
                        if peer in net.dead:
                            raise Gone(peer)
                        if not net.cv.wait(10):
                            raise TimeoutError("hung waiting on %s for %s" % (peer, tag))

            def abort(self, peers, base, err):
                if getattr(err, "relayed", False):
                    return
                for p in peers:
                    self.send(p, base + "!", json.dumps({"instance": err.instance}).encode())

        return Collectives(T())

    def kill(self, i):
        with self.cv:
            self.dead.add(i)
            self.cv.notify_all()


def ids(n):
    return ["m-%d" % i for i in range(n)]


def run_all(n, f, net=None, skip=()):
    net = net or Net()
    members = [net.member(i) for i in ids(n)]
    out = [None] * n
    errs = [None] * n

    def one(r):
        try:
            out[r] = f(members[r], ids(n)[r], r)
        except Exception as e:  # collected for the assertions
            errs[r] = e

    ths = [threading.Thread(target=one, args=(r,)) for r in range(n) if r not in skip]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    return out, errs, net.sent


SIZES = [1, 2, 3, 8, 33]
cat = lambda a, b: a + b  # noqa: E731  (does not commute: shows the order it was applied in)


class CollectiveTests(unittest.TestCase):
    def ok(self, errs):
        self.assertEqual([e for e in errs if e is not None], [])

    def test_allreduce(self):
        for n in SIZES:
            out, errs, _ = run_all(n, lambda c, i, r: c.allreduce(ids(n), r + 1, "sum"))
            self.ok(errs)
            self.assertEqual(out, [n * (n + 1) // 2] * n)
            out, errs, _ = run_all(n, lambda c, i, r: c.allreduce(ids(n), array.array("f", [r, 10 - r, 1]), "max"))
            self.ok(errs)
            self.assertEqual([list(v) for v in out], [[n - 1, 10, 1]] * n)
            out, errs, _ = run_all(n, lambda c, i, r: c.allreduce(ids(n), i[2:] + ",", cat))
            self.ok(errs)
            self.assertEqual(set(out), {"".join(i[2:] + "," for i in ids(n))})

    def test_allreduce_large(self):
        n_el = 10000  # 80 KB of f64: past LARGE
        for n in SIZES:
            out, errs, sent = run_all(n, lambda c, i, r: c.allreduce(ids(n), array.array("d", (r * n_el + j for j in range(n_el))), "sum"))
            self.ok(errs)
            want = [(n * (n - 1) / 2) * n_el + n * j for j in range(n_el)]
            for v in out:
                self.assertEqual(list(v), want)
            p = 1
            while p * 2 <= n:
                p *= 2
            self.assertEqual(sent, 2 * p * (p.bit_length() - 1) + 2 * (n - p))

    def test_reduce_to_last(self):
        for n in SIZES:
            root = ids(n)[-1]
            out, errs, sent = run_all(n, lambda c, i, r: c.reduce(ids(n), i[2:] + "|", cat, root=root))
            self.ok(errs)
            self.assertEqual(out[-1], "".join(i[2:] + "|" for i in ids(n)))
            self.assertTrue(all(x is None for x in out[:-1]))
            self.assertEqual(sent, n - 1 + (1 if n > 1 else 0))

    def test_scan(self):
        for n in SIZES:
            out, errs, _ = run_all(n, lambda c, i, r: c.scan(ids(n), float(r), "sum"))
            self.ok(errs)
            self.assertEqual(out, [float(r * (r + 1) // 2) for r in range(n)])
            out, errs, _ = run_all(n, lambda c, i, r: c.scan(ids(n), i[2:], cat))
            self.ok(errs)
            self.assertEqual(out, ["".join(j[2:] for j in ids(n)[: r + 1]) for r in range(n)])

    def test_broadcast(self):
        for n in SIZES:
            root = ids(n)[n // 2]
            out, errs, sent = run_all(n, lambda c, i, r: c.broadcast(ids(n), array.array("i", [7, 8, 9]) if i == root else array.array("i"), root=root))
            self.ok(errs)
            self.assertEqual([list(v) for v in out], [[7, 8, 9]] * n)
            self.assertEqual(sent, n - 1)

    def test_alltoall(self):
        for n in SIZES:
            out, errs, sent = run_all(n, lambda c, i, r: c.alltoall(ids(n), ["%d->%d" % (r, j) for j in range(n)]))
            self.ok(errs)
            for j, got in enumerate(out):
                self.assertEqual(got, ["%d->%d" % (r, j) for r in range(n)])
            self.assertEqual(sent, n * (n - 1))

    def test_barrier(self):
        for n in SIZES:
            out, errs, sent = run_all(n, lambda c, i, r: c.barrier(ids(n)))
            self.ok(errs)
            self.assertEqual(sent, n * (n - 1).bit_length() if n > 1 else 0)

    def test_dead_member(self):
        n = 8
        net = Net()
        net.kill("m-5")
        out, errs, _ = run_all(n, lambda c, i, r: c.allreduce(ids(n), 1, "sum"), net=net, skip=(5,))
        for r in range(n):
            if r != 5:
                self.assertIsInstance(errs[r], Gone, "member %d: %r" % (r, out[r]))
                self.assertEqual(errs[r].instance, "m-5")

    def test_refusals(self):
        c = Net().member("a")
        self.assertRaisesRegex(ValueError, "not in the ID list", c.allreduce, ["b"], 1, "sum")
        self.assertRaisesRegex(ValueError, "duplicates", c.allreduce, ["a", "a"], 1, "sum")
        self.assertRaisesRegex(TypeError, "unknown operator 'avg'", c.allreduce, ["a"], 1, "avg")
        self.assertRaisesRegex(ValueError, "not a whole array", decode, b"abc", array.array("d"))
        self.assertRaisesRegex(TypeError, "numbers and array.array", OPS["sum"], b"x", b"y")

    def test_same_bytes_and_tags_as_node(self):
        self.assertEqual(group_hash(["a", "b"]), "28e4c710")
        self.assertEqual(encode(1.5).hex(), "000000000000f83f")
        self.assertEqual(encode(-2).hex(), "feffffffffffffff")


if __name__ == "__main__":
    unittest.main()
