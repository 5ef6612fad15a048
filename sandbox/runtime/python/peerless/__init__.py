"""The peerless SDK for Python functions: who am I, find my peers, and send them
bytes directly over TCP on the namespace's network. No relay, no store.

    import peerless
    peerless.wait_for(["worker-1"], timeout=5)
    peerless.send("worker-1", b"hi")
    sender, data = peerless.recv()

The wire format (a hello, then frames of u8 kind + u64 length + payload) is
specified in docs/wire.md; the Node.js SDK speaks the same. Received data is
a bytearray (writable, one copy from the socket); collectives are in
peerless.collectives, an asyncio variant of every call in peerless.aio.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from .collectives import OPS, Collectives

SOCKET = os.environ.get("__OW_PEERLESS_API_SOCKET", "/peerless/api.sock")
DATA, COLL = 0, 2
SMALL = 64 * 1024
# A peer in the map as running listens once its code has loaded: in a shared container dozens load at once
# on a busy host, which can take seconds. A refused dial to a running peer is retried this long.
CONNECT_RETRY_S = 30.0
# A peer its job restarts is given this long to come back before it is taken for gone.
RESTART_WAIT_S = 8.0


class PeerlessError(Exception):
    """What every error of the SDK is (time-outs are Python's own TimeoutError)."""


class PeerGoneError(PeerlessError):
    """The peer is not in the map: it ended, failed or never ran."""

    def __init__(self, instance, why=""):
        super().__init__("instance %s is not alive%s" % (instance, ": " + why if why else ""))
        self.instance = instance


class PeerRestartedError(PeerlessError):
    """The peer failed and its job started it again under the same ID: what it held is gone, resend."""

    def __init__(self, instance, epoch):
        super().__init__("instance %s was restarted (epoch %d): what it held is gone" % (instance, epoch))
        self.instance = instance
        self.epoch = epoch


class ApiError(PeerlessError):
    def __init__(self, status, body):
        detail = body.get("detail") if isinstance(body, dict) else body
        super().__init__("function API answered %s: %s" % (status, detail))
        self.status = status
        self.body = body


def _env(name, default=""):
    return os.environ.get("__OW_PEERLESS_" + name, default)


def instance_id() -> Optional[str]:
    return _env("INSTANCE") or None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=330)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ.get("__OW_PEERLESS_API_SOCKET", SOCKET))


_api_local = threading.local()


def _api(method, path, body=None):
    conn = getattr(_api_local, "conn", None)
    if conn is None:
        conn = _api_local.conn = _UnixConnection()
    payload = None if body is None else json.dumps(body).encode()
    headers = {"authorization": "Bearer " + _env("TOKEN")}
    if payload is not None:
        headers["content-type"] = "application/json"
    for attempt in (0, 1):
        try:
            conn.request(method, path, body=payload, headers=headers)
            res = conn.getresponse()
            text = res.read()
            break
        except (OSError, http.client.HTTPException):
            # A kept-alive connection the daemon has closed: one more try on a fresh one.
            conn.close()
            conn = _api_local.conn = _UnixConnection()
            if attempt:
                raise
    parsed = json.loads(text) if text else None
    if res.status >= 400:
        raise ApiError(res.status, parsed)
    return parsed


# ---- directory ----

def self() -> Dict[str, Any]:
    return _api("GET", "/v1/self")


def instances() -> List[Dict[str, Any]]:
    return _api("GET", "/v1/instances")["instances"]


# The epoch each peer had when this activation first dealt with it, and whether its job restarts it.
_known = {}


def _remember(e):
    _known.setdefault(e["instance"], (e.get("epoch", 0), bool(e.get("restart"))))
    return e


def lookup(instance: str) -> Dict[str, Any]:
    try:
        return _remember(_api("GET", "/v1/instances/" + urllib.parse.quote(instance, safe="")))
    except ApiError as e:
        if e.status == 404:
            raise PeerGoneError(instance)
        raise


def _same(instance, e=None):
    """The peer's entry (asked for, unless given) if it is the one this activation knows; PeerRestartedError
    if its job restarted it."""
    e = lookup(instance) if e is None else _remember(e)
    epoch = e.get("epoch", 0)
    if epoch != _known[instance][0]:
        # A new life of the ID: the connection to the old one goes (it may still run somewhere, cut off,
        # and would take what is meant for the new one).
        _known[instance] = (epoch, bool(e.get("restart")))
        with _conns_lock:
            c = _conns.pop(instance, None)
        if c is not None:
            c.close()
        raise PeerRestartedError(instance, epoch)
    return e


def _gone_or_restarted(instance, gone):
    """A peer that left the map: its job may be restarting it."""
    if not _known.get(instance, (0, False))[1]:
        raise gone
    until = time.monotonic() + RESTART_WAIT_S
    while time.monotonic() < until:
        time.sleep(0.1)
        try:
            lookup(instance)
        except PeerGoneError:
            continue
        return _same(instance)
    raise gone


def wait_for(ids: Union[str, Sequence[str]], timeout: float = 30.0) -> List[Dict[str, Any]]:
    """Returns the entries once every ID is running; raises TimeoutError at the timeout, or
    PeerGoneError at once when one of them failed before it ran."""
    ids = [ids] if isinstance(ids, str) else list(ids)
    q = "&".join("ids=" + urllib.parse.quote(i, safe="") for i in ids)
    try:
        return [_remember(e) for e in _api("GET", "/v1/wait?%s&timeout=%d" % (q, int(timeout * 1000)))["instances"]]
    except ApiError as e:
        if e.status == 410:
            raise PeerGoneError(e.body.get("instance"), e.body.get("detail", ""))
        if e.status == 408:
            raise TimeoutError(e.body.get("detail", "timeout"))
        raise


def set_status(status: str) -> Dict[str, Any]:
    return _api("PUT", "/v1/self/status", {"status": str(status)})


last_job = None


def spawn(function: str, instance: Optional[str] = None, instances: Union[str, Sequence[str], None] = None,
          params: Optional[Dict[str, Any]] = None, restart: Optional[str] = None, queue_timeout: Optional[float] = None,
          detach: bool = False) -> List[Dict[str, Any]]:
    """Starts instances of a function of this namespace as a job, cancelled if this activation ends first
    (unless detach). restart="on-failure:2" starts a failed member again; queue_timeout (s) waits for room.
    Returns the activations; the job's ID is in peerless.last_job."""
    global last_job
    body = {"function": function, "params": params or {}, "detach": bool(detach)}
    if instance is not None:
        body["instance"] = instance
    if instances is not None:
        body["instances"] = instances
    if restart is not None:
        body["restart"] = restart
    if queue_timeout is not None:
        body["queueTimeout"] = int(queue_timeout * 1000)
    r = _api("POST", "/v1/spawn", body)
    last_job = r.get("jobId")
    return r["activations"]



# ---- messages ----

_lock = threading.Condition()
_inbox: List[Tuple[int, str, Optional[str], bytearray]] = []  # (kind, sender, tag, data)
_conns: Dict[str, "_Conn"] = {}  # peer id -> _Conn
_conns_lock = threading.Lock()
_server = None
_generation = 0
_reading: Dict[str, int] = {}  # sender id -> its connections still being read
_unnamed = 0  # connections accepted whose sender is not read yet
# Frames refused since the process started, by reason (docs/wire.md: a bad frame closes its connection).
refused = {"tooLong": 0, "badKind": 0, "badTag": 0}


def _read_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError()
        got += k
    return buf


def _max_frame():
    """A frame longer than this closes its connection instead of being buffered (default: the function's memory)."""
    return int(_env("MAX_FRAME", "0") or 0) or 2 ** 31


def _refuse(sender, why, reason):
    refused[reason] += 1
    print("peerless: closed the connection from %s: %s" % (sender, why), file=sys.stderr, flush=True)


def _serve_connection(sock):
    global _unnamed
    sender = None
    try:
        if sock.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        (n,) = struct.unpack(">H", _read_exact(sock, 2))
        name = bytes(_read_exact(sock, n)).decode()
        with _lock:
            _unnamed -= 1
            sender = name
            _reading[sender] = _reading.get(sender, 0) + 1
        while True:
            kind, length = struct.unpack(">BQ", _read_exact(sock, 9))
            if kind not in (DATA, COLL):
                return _refuse(sender, "a frame of unknown kind %d" % kind, "badKind")
            if length > _max_frame():
                return _refuse(sender, "a frame of %d bytes is over the limit of %d bytes" % (length, _max_frame()), "tooLong")
            data = _read_exact(sock, length) if length else bytearray()
            tag = None
            if kind == COLL:
                n = struct.unpack_from(">H", data)[0] if length >= 2 else -1
                if n < 0 or 2 + n > length:
                    return _refuse(sender, "a collective frame whose tag overruns it", "badTag")
                tag = bytes(data[2:2 + n]).decode()
                del data[:2 + n]
            with _lock:
                _inbox.append((kind, sender, tag, data))
                _lock.notify_all()
    except (OSError, EOFError, struct.error, UnicodeDecodeError):
        pass
    finally:
        # Every byte of this connection is in the inbox now: a receive waiting on this sender may decide.
        with _lock:
            if sender is None:
                _unnamed -= 1
            elif _reading[sender] == 1:
                del _reading[sender]
            else:
                _reading[sender] -= 1
            _lock.notify_all()
        sock.close()


def _accept_loop(srv):
    global _unnamed
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with _lock:
            _unnamed += 1
        threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()


PEERS_MOUNT = "/peerless-peers"
# Connections this process dialled, by the way they went: co-located peers over Unix sockets, others over TCP.
links = {"unix": 0, "tcp": 0}
_local = None  # (server socket, path): this activation's Unix socket, for peers on this host


def _local_path(instance, host):
    """The Unix socket of an instance of this namespace on this host (None: not on this host, or turned off)."""
    peers = _env("PEERS")
    if not peers or not host or host != _env("HOST") or os.environ.get("PEERLESS_TCP_ONLY") == "1":
        return None
    return "%s/%s/%s.sock" % (PEERS_MOUNT, peers, instance)


def _start():
    """Called by the action proxy before each activation: listen for peers on TCP (once), and, for a named
    instance, on its Unix socket in the namespace's directory, where co-located peers dial it."""
    global _server, _local
    if _server is None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", int(_env("PORT", "7700"))))
        srv.listen(1024)
        _server = srv
        threading.Thread(target=_accept_loop, args=(srv,), daemon=True).start()
    path = _local_path(instance_id(), _env("HOST")) if instance_id() else None
    if path and _local is None:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                os.unlink(path)  # left by an earlier life of this ID that crashed: nothing listens on it
            except OSError:
                pass
            srv.bind(path)
            srv.listen(1024)
        except OSError:
            srv.close()  # no fast path here (no mount, say): peers on this host use TCP, as everyone else
            return
        _local = (srv, path)
        threading.Thread(target=_accept_loop, args=(srv,), daemon=True).start()


def _end():
    """Called by the action proxy after each activation: nothing of it leaks into the next."""
    global _generation, _local
    with _traffic_lock:
        if _traffic["timer"] is not None:
            _traffic["timer"].cancel()
    _report_traffic()  # the last report, before the token ends with the activation
    with _traffic_lock:
        _traffic["sent"] = {}
    if _local is not None:
        srv, path = _local
        _local = None
        srv.close()
        try:
            os.unlink(path)
        except OSError:
            pass
    with _lock:
        del _inbox[:]
        _generation += 1
        _lock.notify_all()
    with _conns_lock:
        conns = list(_conns.values())
        _conns.clear()
    for c in conns:
        c.close()
    _known.clear()
    _collectives.reset()
    _close_stream()  # its token ends with the activation


# A co-located peer is in the map a moment before its SDK listens on its Unix socket: it is given this long
# to, before the dial goes over TCP instead (a peer whose code does not use the SDK never will).
LOCAL_WAIT_S = 1.0


def _connect(peer):
    me = instance_id() or "activation-" + os.environ.get("__OW_ACTIVATION_ID", "anonymous")
    start = time.monotonic()
    deadline = start + CONNECT_RETRY_S
    while True:
        e = lookup(peer)  # a peer that is gone fails here, at once
        if e["state"] == "running" and e.get("ip"):
            try:
                s = None
                path = _local_path(e["instance"], e.get("host"))
                if path:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        s.settimeout(2)
                        s.connect(path)
                        links["unix"] += 1
                    except OSError:
                        s.close()
                        s = None
                        if time.monotonic() - start < LOCAL_WAIT_S:
                            time.sleep(0.02)
                            continue
                if s is None:
                    s = socket.create_connection((e["ip"], e["port"]), timeout=2)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    links["tcp"] += 1
                s.settimeout(None)
                idb = me.encode()
                s.sendall(struct.pack(">H", len(idb)) + idb)
                return s
            except OSError as err:
                # In the map but not listening yet: its code is just starting. Retry briefly.
                if time.monotonic() > deadline:
                    raise PeerGoneError(peer, str(err))
        elif time.monotonic() > deadline:
            raise PeerGoneError(peer, "state " + e["state"])
        time.sleep(0.02)


class _Conn:
    """One connection to a peer. A frame is written whole under its lock, so frames of threads sending to
    the same peer at once never interleave."""

    def __init__(self, peer):
        self.peer = peer
        self.lock = threading.Lock()
        self.sock = None

    def open(self):
        if self.sock is None:
            self.sock = _connect(self.peer)
        return self.sock

    def close(self):
        s, self.sock = self.sock, None
        if s is not None:
            s.close()


def _conn(peer):
    with _conns_lock:
        c = _conns.get(peer)
        if c is None:
            c = _conns[peer] = _Conn(peer)
        return c


Bytes = Union[bytes, bytearray, memoryview, str]


# Bytes this activation sent each peer, told to the daemon (the dashboard's job view draws them): at most once
# a second while sending, and once more when the activation ends. Only a named instance reports.
_traffic: Dict[str, Any] = {"sent": {}, "timer": None}
_traffic_lock = threading.Lock()


def _counted(peer: str, n: int) -> None:
    with _traffic_lock:
        _traffic["sent"][peer] = _traffic["sent"].get(peer, 0) + n
        if _traffic["timer"] is not None or not instance_id():
            return
        t = threading.Timer(1.0, _report_traffic)
        t.daemon = True
        _traffic["timer"] = t
        t.start()


def _report_traffic() -> None:
    with _traffic_lock:
        _traffic["timer"] = None
        sent = dict(_traffic["sent"])
    if sent and instance_id():
        try:
            _api("PUT", "/v1/self/traffic", {"sent": sent})
        except (OSError, ApiError, http.client.HTTPException):
            pass  # the dashboard misses one report; the next carries the totals


def _send_frame(peer: str, kind: int, data: Bytes, tag: Optional[str] = None) -> None:
    if isinstance(data, str):
        data = data.encode()
    prefix = b"" if tag is None else struct.pack(">H", len(tag.encode())) + tag.encode()
    header = struct.pack(">BQ", kind, len(prefix) + len(data)) + prefix
    for attempt in (0, 1):
        c = _conn(peer)
        with c.lock:
            try:
                s = c.open()
                if len(data) <= SMALL:
                    s.sendall(header + bytes(data))
                else:
                    s.sendall(header)
                    s.sendall(memoryview(data))  # large messages are sent as they are, never copied
                _counted(peer, len(header) + len(data))
                return
            except OSError as err:
                c.close()
                if attempt:
                    raise PeerGoneError(peer, str(err))
        # gone -> PeerGoneError (or PeerRestartedError once its job has it back); restarted ->
        # PeerRestartedError; still the same -> one more try on a new connection
        try:
            _same(peer)
        except PeerGoneError as gone:
            _gone_or_restarted(peer, gone)


def connect(peer: str) -> None:
    """Opens (or reuses) the connection to a peer ahead of the first send, so that send pays no set-up."""
    c = _conn(peer)
    with c.lock:
        c.open()


def send(peer: str, data: "Bytes") -> None:
    """Sends bytes (or str) to the instance with this ID."""
    _send_frame(peer, DATA, data)


# The change stream (GET /v1/events): the map now, then again on every change. One per activation, opened by
# the first receive that waits on a named peer; such receives look at the latest map instead of asking.
_stream = {"gen": 0, "map": None, "conn": None, "thread": None}


def _stream_loop(gen):
    while True:
        conn = None
        try:
            conn = _UnixConnection()
            conn.request("GET", "/v1/events", headers={"authorization": "Bearer " + _env("TOKEN"), "accept": "text/event-stream"})
            with _lock:
                if gen != _stream["gen"]:
                    return
                _stream["conn"] = conn
            res = conn.getresponse()
            if res.status != 200:
                raise OSError("change stream answered %d" % res.status)
            data = []
            while True:
                line = res.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    m = json.loads("\n".join(data))
                    data = []
                    with _lock:
                        if gen != _stream["gen"]:
                            return
                        _stream["map"] = {e["instance"]: e for e in m["instances"]}
                        _lock.notify_all()
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            if conn is not None:
                conn.close()
        with _lock:
            if gen != _stream["gen"]:
                return
            _stream["map"] = None  # broken: until a new one brings the whole map again
        time.sleep(0.25)


def _watch_map():
    """The latest map from the change stream (opening it if needed), or None while it has none."""
    with _lock:
        if _stream["thread"] is None:
            th = threading.Thread(target=_stream_loop, args=(_stream["gen"],), daemon=True)
            _stream["thread"] = th
            th.start()
        return _stream["map"]


def _close_stream():
    with _lock:
        _stream["gen"] += 1
        _stream["map"], _stream["thread"] = None, None
        conn, _stream["conn"] = _stream["conn"], None
    if conn is not None and conn.sock is not None:
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)  # wakes its reader, which then ends
        except OSError:
            pass


GONE_CHECK_S = 0.5
GONE_GRACE_S = 0.3
# A sender's connection that stays open this long after it left the map is taken as cut off, not slow.
GONE_OPEN_LIMIT_S = 10.0


def _take(match, sender: Optional[str] = None, timeout: Optional[float] = None):
    """The first message `match` accepts, from the inbox or as it arrives. Waiting on one peer (`sender`):
    if it leaves the map without having sent, PeerGoneError instead of waiting forever; if its job restarted
    it, PeerRestartedError (what it was to send is lost with its old life)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    gen = _generation
    gone_since = None
    while True:
        with _lock:
            for i, m in enumerate(_inbox):
                if match(m):
                    del _inbox[i]
                    return m
            if gen != _generation:
                raise RuntimeError("activation ended")
            if gone_since is not None:
                # Waiting on a peer that has left the map: its last bytes may still be on their way, so fail
                # only once no connection that could carry them is left (after a grace for one not yet
                # accepted), or once one has stayed open far too long.
                waited = time.monotonic() - gone_since
                arriving = _reading.get(sender, 0) > 0 or _unnamed > 0
                if waited > GONE_OPEN_LIMIT_S or (waited > GONE_GRACE_S and not arriving):
                    raise PeerGoneError(sender, "it ended without sending")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("no message%s within %ss" % (" from " + sender if sender else "", timeout))
            wait = left if sender is None else (GONE_CHECK_S if gone_since is None else GONE_GRACE_S / 3)
            if left is not None and wait is not None:
                wait = min(wait, left)
            _lock.wait(wait)
        if sender is not None and gone_since is None:
            try:
                snap = _watch_map()
                if snap is None:
                    _same(sender)  # no change stream yet: ask
                elif sender in snap:
                    _same(sender, snap[sender])
                else:
                    raise PeerGoneError(sender)
            except PeerGoneError as gone:
                if _known.get(sender, (0, False))[1]:
                    try:
                        _gone_or_restarted(sender, gone)  # back under a new epoch: PeerRestartedError
                    except PeerGoneError:
                        pass
                gone_since = time.monotonic()


def recv(sender: Optional[str] = None, timeout: Optional[float] = None) -> Tuple[str, bytearray]:
    """The next message, from anyone or from one ID: (sender, data). TimeoutError after `timeout` seconds."""
    _, s, _, d = _take(lambda m: m[0] == DATA and (sender is None or m[1] == sender), sender, timeout)
    return s, d


def messages(sender: Optional[str] = None, timeout: Optional[float] = None) -> Iterator[Tuple[str, bytearray]]:
    """Messages as they come: `for sender, data in peerless.messages(): ...`. Ends when none came within
    `timeout` seconds (if given), or when the activation ends."""
    while True:
        try:
            yield recv(sender, timeout)
        except (TimeoutError, RuntimeError):
            return


# ---- collectives (peerless.collectives holds the schedules; this is their transport) ----

_ABORT = "!"


class _Transport:
    @property
    def me(self) -> str:
        return instance_id() or "activation-" + os.environ.get("__OW_ACTIVATION_ID", "anonymous")

    def ready(self, ids: List[str], timeout: Optional[float]) -> None:
        wait_for(ids, timeout=60.0 if timeout is None else timeout)

    def send(self, peer: str, tag: str, data: bytes) -> None:
        _send_frame(peer, COLL, data, tag)

    def recv(self, peer: str, tag: str, base: str, timeout: Optional[float]) -> bytes:
        _, frm, t, data = _take(lambda m: m[0] == COLL and ((m[1] == peer and m[2] == tag) or m[2] == base + _ABORT), peer, timeout)
        if t != tag:
            # Another member could not go on: fail as it did, naming the same peer.
            try:
                why = json.loads(bytes(data))
            except ValueError:
                why = {}
            inst = why.get("instance") if isinstance(why.get("instance"), str) else frm
            err: Exception = PeerRestartedError(inst, why["epoch"]) if isinstance(why.get("epoch"), int) else \
                PeerGoneError(inst, "%s saw it fail during a collective" % frm)
            err.relayed = True  # type: ignore[attr-defined]
            raise err
        return data

    def abort(self, peers: List[str], base: str, err: Exception) -> None:
        if getattr(err, "relayed", False):
            return  # whoever saw the failure first tells everyone; the others only fail
        why: Dict[str, Any] = {"instance": getattr(err, "instance")}
        if isinstance(err, PeerRestartedError):
            why["epoch"] = err.epoch
        payload = json.dumps(why).encode()

        def tell(p: str) -> None:
            try:
                _send_frame(p, COLL, payload, base + _ABORT)
            except Exception:
                pass  # best effort: that member learns of the failure on its own

        threads = [threading.Thread(target=tell, args=(p,), daemon=True) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(2.0)


_collectives = Collectives(_Transport())


def broadcast(ids: Sequence[str], data: Any = None, root: Optional[str] = None, timeout: Optional[float] = None) -> Any:
    """Sends the root's value to every member and returns it (a binomial tree). Called by every member with
    the same IDs; non-roots pass None (they get bytes) or a value of the kind they expect. Called by an
    instance that is not in `ids`, it just sends the data to each of them (they recv() it)."""
    if _Transport().me not in ids:
        for i in ids:
            send(i, data)
        return data
    return _collectives.broadcast(ids, data, root, timeout)


def reduce(ids: Sequence[str], value: Any, op: Any, root: Optional[str] = None, timeout: Optional[float] = None) -> Any:
    """v0 op v1 op ... op vn-1 at the root (None elsewhere), in rank order. op: "sum", "prod", "min", "max" or a function."""
    return _collectives.reduce(ids, value, op, root, timeout)


def allreduce(ids: Sequence[str], value: Any, op: Any, timeout: Optional[float] = None) -> Any:
    """v0 op v1 op ... op vn-1 at every member, in rank order (recursive doubling)."""
    return _collectives.allreduce(ids, value, op, timeout)


def scan(ids: Sequence[str], value: Any, op: Any, timeout: Optional[float] = None) -> Any:
    """Inclusive prefix: member r gets v0 op ... op vr."""
    return _collectives.scan(ids, value, op, timeout)


def alltoall(ids: Sequence[str], parts: Sequence[Any], timeout: Optional[float] = None) -> List[Any]:
    """The shuffle: parts[i] goes to member i; returns what each member sent this one, by rank."""
    return _collectives.alltoall(ids, parts, timeout)


def barrier(ids: Sequence[str], timeout: Optional[float] = None) -> None:
    """Returns once every instance in ids has reached the barrier (a dissemination barrier)."""
    _collectives.barrier(ids, timeout)


def scatter(ids: Sequence[str], chunks: Sequence[Bytes]) -> None:
    """Sends chunks[i] to ids[i] (they recv() it)."""
    for i, c in zip(ids, chunks):
        send(i, c)


def gather(ids: Sequence[str], timeout: Optional[float] = None) -> List[bytearray]:
    """One message from each ID, in the order of the IDs."""
    return [recv(i, timeout)[1] for i in ids]
