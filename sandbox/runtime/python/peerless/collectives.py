"""Collectives over a list of instance IDs, as schedules of point-to-point
messages: no I/O here, only a transport handed in (the SDK's, or an in-memory
twin in the tests). The very schedules and tags of the Node.js SDK
(collectives.js), as docs/wire.md specifies them, so members of both mix.

Every member calls the same collective with the same ID list; a member's rank
is its index in that list. Values travel as bytes; a member's own value says
how to read what it receives: a float is one little-endian f64, an int one
i64, an array.array its items (little-endian), bytes and str as they are.
"""
from __future__ import annotations

import array
import operator as _op
import struct
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Union

Value = Union[float, int, str, bytes, bytearray, memoryview, "array.array[Any]"]
Op = Union[str, Callable[[Any, Any], Any]]


class Transport(Protocol):
    me: str

    def ready(self, ids: List[str], timeout: Optional[float]) -> None: ...

    def send(self, peer: str, tag: str, data: bytes) -> None: ...

    def recv(self, peer: str, tag: str, base: str, timeout: Optional[float]) -> bytes: ...

    def abort(self, peers: List[str], base: str, err: Exception) -> None: ...


def encode(v: Value) -> bytes:
    """The bytes of a value (see the module's doc)."""
    if isinstance(v, bool):
        raise TypeError("a collective takes a float, an int, a str, bytes or an array.array, not a bool")
    if isinstance(v, float):
        return struct.pack("<d", v)
    if isinstance(v, int):
        return struct.pack("<q", v)
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, array.array):
        if sys.byteorder != "little":
            v = array.array(v.typecode, v)
            v.byteswap()
        return v.tobytes()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v) if not isinstance(v, bytes) else v
    raise TypeError("a collective takes a float, an int, a str, bytes or an array.array")


def decode(data: Union[bytes, bytearray, memoryview], like: Any) -> Any:
    """Reads bytes back as a value of the same kind as `like` (the caller's own contribution)."""
    if isinstance(like, float):
        return struct.unpack_from("<d", data)[0]
    if isinstance(like, int) and not isinstance(like, bool):
        return struct.unpack_from("<q", data)[0]
    if isinstance(like, str):
        return bytes(data).decode()
    if isinstance(like, array.array):
        out = array.array(like.typecode)
        if len(data) % out.itemsize:
            raise ValueError("%d bytes are not a whole array of %r" % (len(data), like.typecode))
        out.frombytes(bytes(data))
        if sys.byteorder != "little":
            out.byteswap()
        return out
    return bytes(data)


_SCALAR: Dict[str, Callable[[Any, Any], Any]] = {"sum": _op.add, "prod": _op.mul, "min": min, "max": max}
# From this many bytes, an allreduce of an array.array with a built-in operator scatters and gathers (docs/wire.md).
LARGE = 64 * 1024


def _elementwise(f: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def combine(a: Any, b: Any) -> Any:
        if isinstance(a, (str, bytes, bytearray, memoryview)):
            raise TypeError("the built-in operators take numbers and array.array: pass a function for str and bytes")
        if isinstance(a, array.array):
            if len(a) != len(b):
                raise ValueError("cannot combine arrays of %d and %d elements" % (len(a), len(b)))
            return array.array(a.typecode, map(f, a, b))
        return f(a, b)

    return combine


OPS: Dict[str, Callable[[Any, Any], Any]] = {k: _elementwise(f) for k, f in _SCALAR.items()}


def _operator(op: Op) -> Callable[[Any, Any], Any]:
    if callable(op):
        return op
    if op not in OPS:
        raise TypeError("unknown operator %r: sum, prod, min, max or a function (a, b) -> c" % (op,))
    return OPS[op]


def group_hash(ids: Sequence[str]) -> str:
    """FNV-1a (32 bits) of the IDs joined by newlines, in hex: two groups' collectives never take each other's messages."""
    h = 0x811C9DC5
    for b in "\n".join(ids).encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "%08x" % h


def _root_of(ids: Sequence[str], root: Optional[str]) -> int:
    if root is None:
        return 0
    if root not in ids:
        raise ValueError("the root %s is not in the ID list" % root)
    return list(ids).index(root)


class _Group:
    def __init__(self, c: "Collectives", name: str, ids: Sequence[str], timeout: Optional[float]):
        ids = list(ids)
        if not ids:
            raise ValueError("%s needs a non-empty list of instance IDs" % name)
        if len(set(ids)) != len(ids):
            raise ValueError("%s: the ID list has duplicates" % name)
        if c.t.me not in ids:
            raise ValueError("%s: this instance (%s) is not in the ID list" % (name, c.t.me))
        gh = group_hash(ids)
        with c.lock:
            seq = c.calls.get(gh, 0)
            c.calls[gh] = seq + 1
        self.c, self.gh = c, gh
        self.t, self.ids, self.name, self.timeout = c.t, ids, name, timeout
        self.rank, self.n = ids.index(c.t.me), len(ids)
        self.base = "%s.%d" % (gh, seq)

    def send(self, r: int, step: Any, data: bytes) -> None:
        self.t.send(self.ids[r], "%s.%s.%s" % (self.base, self.name, step), data)

    def recv(self, r: int, step: Any) -> bytes:
        return self.t.recv(self.ids[r], "%s.%s.%s" % (self.base, self.name, step), self.base, self.timeout)

    def run(self, body: Callable[[], Any]) -> Any:
        """Runs the schedule; on a failure the other members are told, so they fail naming the same peer."""
        try:
            # The first collective of a group waits for every member to be running: one that has not started
            # yet is not gone. A member that failed before it ran fails this at once.
            if self.gh not in self.c.seen:
                self.t.ready(self.ids, self.timeout)
                with self.c.lock:
                    self.c.seen.add(self.gh)
            return body()
        except Exception as err:
            bad = getattr(err, "instance", None)
            if bad is not None:
                self.t.abort([i for i in self.ids if i != self.t.me and i != bad], self.base, err)
            raise

    def both(self, send: Callable[[], None], recv: Callable[[], bytes]) -> bytes:
        """Sends and receives at once: a send blocks once the kernel's buffers are full, and the peer may be sending too."""
        err: List[BaseException] = []

        def sender() -> None:
            try:
                send()
            except BaseException as e:  # handed to the caller below
                err.append(e)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        try:
            got = recv()
        finally:
            th.join()
        if err:
            raise err[0]
        return got


def _rabenseifner(g: "_Group", acc: "array.array[Any]", op: Callable[[Any, Any], Any], nr: int, p: int,
                  peer_of: Callable[[int], int]) -> "array.array[Any]":
    """The large-array allreduce among p (a power of two) members, in place on acc: recursive halving, after
    which member nr holds block nr reduced, then recursive doubling hands every block to everyone. Blocks:
    p slices of the array, block i from floor(i*len/p) to floor((i+1)*len/p). As collectives.js does."""
    def at(b: int) -> int:
        return (b * len(acc)) // p

    lo, hi = 0, p
    mask, k = p >> 1, 0
    while mask >= 1:
        mid = lo + mask
        keep_lo, keep_hi, send_lo, send_hi = (mid, hi, lo, mid) if nr & mask else (lo, mid, mid, hi)
        peer = peer_of(nr ^ mask)
        out = encode(acc[at(send_lo):at(send_hi)])
        got = g.both(lambda: g.send(peer, "rs%d" % k, out), lambda: g.recv(peer, "rs%d" % k))
        other = decode(got, acc)
        a, b = at(keep_lo), at(keep_hi)
        if len(other) != b - a:
            raise ValueError("cannot combine arrays of %d and %d elements" % (b - a, len(other)))
        acc[a:b] = array.array(acc.typecode, map(op, acc[a:b], other))
        lo, hi = keep_lo, keep_hi
        mask, k = mask >> 1, k + 1
    mask, k = 1, 0
    while mask < p:
        peer = peer_of(nr ^ mask)
        out = encode(acc[at(lo):at(hi)])
        got = g.both(lambda: g.send(peer, "ag%d" % k, out), lambda: g.recv(peer, "ag%d" % k))
        olo, ohi = (lo - mask, lo) if nr & mask else (hi, hi + mask)
        acc[at(olo):at(ohi)] = decode(got, acc)
        lo, hi = min(lo, olo), max(hi, ohi)
        mask, k = mask << 1, k + 1
    return acc


class Collectives:
    def __init__(self, t: Transport):
        self.t = t
        self.lock = threading.Lock()
        # calls made so far per group: every member counts the same, so the n-th call's tags agree everywhere
        self.calls: Dict[str, int] = {}
        # groups whose members have all been seen running (members of a job start at about the same time)
        self.seen: set = set()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.seen.clear()

    def broadcast(self, ids: Sequence[str], value: Any = None, root: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """Every member gets the root's value: a binomial tree, ceil(log2 n) rounds. Non-roots pass None
        (they get bytes) or a value of the kind they expect."""
        g = _Group(self, "bcast", ids, timeout)
        rt = _root_of(ids, root)

        def body() -> Any:
            vr = (g.rank - rt) % g.n
            data = encode(value) if vr == 0 else b""
            mask = 1
            while mask < g.n:
                if vr & mask:
                    data = g.recv((vr - mask + rt) % g.n, 0)
                    break
                mask <<= 1
            mask >>= 1
            while mask > 0:
                if vr + mask < g.n:
                    g.send((vr + mask + rt) % g.n, 0, data)
                mask >>= 1
            return value if vr == 0 else decode(data, value)

        return g.run(body)

    def reduce(self, ids: Sequence[str], value: Any, op: Op, root: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """Combines every member's value into the root's, in rank order (v0 op v1 op ... op vn-1: operators
        need not commute). Others get None."""
        f = _operator(op)
        g = _Group(self, "reduce", ids, timeout)
        rt = _root_of(ids, root)

        def body() -> Any:
            acc = value
            mask = 1
            while mask < g.n:
                if g.rank & mask:
                    g.send(g.rank - mask, 0, encode(acc))
                    break
                if g.rank + mask < g.n:
                    acc = f(acc, decode(g.recv(g.rank + mask, 0), value))
                mask <<= 1
            if rt == 0:
                return acc if g.rank == 0 else None
            if g.rank == 0:
                g.send(rt, 1, encode(acc))
            return decode(g.recv(0, 1), value) if g.rank == rt else None

        return g.run(body)

    def allreduce(self, ids: Sequence[str], value: Any, op: Op, timeout: Optional[float] = None) -> Any:
        """Every member gets v0 op v1 op ... op vn-1: recursive doubling, log2 n rounds. Rank order is kept.
        A large array.array with a built-in operator goes by reduce-scatter and allgather instead."""
        f = _operator(op)
        g = _Group(self, "allreduce", ids, timeout)

        def body() -> Any:
            r, n = g.rank, g.n
            p = 1
            while p * 2 <= n:
                p *= 2
            rem = n - p
            large = isinstance(op, str) and isinstance(value, array.array) and len(value) * value.itemsize >= LARGE and len(value) >= p
            acc = array.array(value.typecode, value) if large else value
            if r < 2 * rem:
                if r % 2 == 0:
                    g.send(r + 1, "in", encode(acc))
                    nr = -1
                else:
                    acc = f(decode(g.recv(r - 1, "in"), value), acc)
                    nr = r >> 1
            else:
                nr = r - rem

            def peer_of(pn: int) -> int:
                return pn * 2 + 1 if pn < rem else pn + rem

            if nr >= 0 and large:
                acc = _rabenseifner(g, acc, _SCALAR[op], nr, p, peer_of)
            elif nr >= 0:
                mask, k = 1, 0
                while mask < p:
                    pn = nr ^ mask
                    mine = encode(acc)
                    other = decode(g.both(lambda: g.send(peer_of(pn), k, mine), lambda: g.recv(peer_of(pn), k)), value)
                    acc = f(other, acc) if pn < nr else f(acc, other)
                    mask, k = mask << 1, k + 1
            if r < 2 * rem:
                if r % 2 == 1:
                    g.send(r - 1, "out", encode(acc))
                else:
                    acc = decode(g.recv(r + 1, "out"), value)
            return acc

        return g.run(body)

    def scan(self, ids: Sequence[str], value: Any, op: Op, timeout: Optional[float] = None) -> Any:
        """Inclusive prefix: member r gets v0 op ... op vr, in ceil(log2 n) rounds."""
        f = _operator(op)
        g = _Group(self, "scan", ids, timeout)

        def body() -> Any:
            acc = value
            d, k = 1, 0
            while d < g.n:
                mine = encode(acc)
                to, frm = g.rank + d, g.rank - d
                if to < g.n and frm >= 0:
                    got = g.both(lambda: g.send(to, k, mine), lambda: g.recv(frm, k))
                    acc = f(decode(got, value), acc)
                elif to < g.n:
                    g.send(to, k, mine)
                elif frm >= 0:
                    acc = f(decode(g.recv(frm, k), value), acc)
                d, k = d << 1, k + 1
            return acc

        return g.run(body)

    def alltoall(self, ids: Sequence[str], parts: Sequence[Any], timeout: Optional[float] = None) -> List[Any]:
        """The shuffle: parts[i] goes to member i; returns what each member sent this one, by rank. Pairwise:
        in step s a member sends to rank+s and receives from rank-s."""
        g = _Group(self, "alltoall", ids, timeout)
        if len(parts) != g.n:
            raise ValueError("alltoall needs one part per member: %d parts" % g.n)

        def body() -> List[Any]:
            out: List[Any] = [None] * g.n
            out[g.rank] = parts[g.rank]

            def sends() -> None:
                for s in range(1, g.n):
                    to = (g.rank + s) % g.n
                    g.send(to, 0, encode(parts[to]))

            def recvs() -> bytes:
                for s in range(1, g.n):
                    frm = (g.rank - s) % g.n
                    out[frm] = decode(g.recv(frm, 0), parts[frm])
                return b""

            g.both(sends, recvs)
            return out

        return g.run(body)

    def barrier(self, ids: Sequence[str], timeout: Optional[float] = None) -> None:
        """Returns once every member has reached it: a dissemination barrier, ceil(log2 n) rounds of one message each."""
        g = _Group(self, "barrier", ids, timeout)

        def body() -> None:
            d, k = 1, 0
            while d < g.n:
                g.send((g.rank + d) % g.n, k, b"")
                g.recv((g.rank - d) % g.n, k)
                d, k = d << 1, k + 1

        g.run(body)
