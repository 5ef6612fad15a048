# The Python action proxy: OpenWhisk's action protocol on port 8080.
# POST /init loads the code once; POST /run calls its entry point with the
# parameters. Both stdout and stderr end every activation with the sentinel.
#
# With limits.concurrency > 1 (`concurrency` in /init) several instances share
# this container. The code is loaded once, at /init, and the loaded interpreter
# is forked into a zygote: a process that only forks. Each /run is a child of
# it, with its own environment, SDK state, port and logs (tagged with its
# activation ID). A child that crashes, exits or is killed for memory ends
# alone (503 and why); one whose call is abandoned (timeout, stop) is killed.
import gc
import json
import os
import queue
import selectors
import signal
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
TAG = "\x1e"
INSTANCE_FAILED = 503  # what the platform reads as "this instance failed on its own"
entry = None
concurrency = 1
# One instance per container runs on the main thread, as it always has: handlers hand it their activation.
main_jobs = queue.Queue()
out_lock = threading.Lock()


def end_of_activation():
    sys.stdout.write(SENTINEL + "\n")
    sys.stdout.flush()
    sys.stderr.write(SENTINEL + "\n")
    sys.stderr.flush()


ZIP_ROOT = "/tmp/action-zip"


def load_zip(code, main):
    """A zip action, as OpenWhisk's Python runtime takes one: __main__.py at its root, and a virtualenv/
    folder whose site-packages are importable. Unpacked once, into the container's writable /tmp."""
    import base64
    import glob
    import io
    import zipfile
    try:
        archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(code)))
    except (ValueError, zipfile.BadZipFile) as e:
        raise ValueError("There was an error uncompressing the action archive: %s" % e)
    root = os.path.realpath(ZIP_ROOT)
    for name in archive.namelist():
        # An entry may not write outside the action's directory (a zip slip).
        to = os.path.realpath(os.path.join(root, name))
        if to != root and not to.startswith(root + os.sep):
            raise ValueError("the action archive has an entry outside its root: %s" % name)
    archive.extractall(root)
    if not os.path.exists(os.path.join(root, "__main__.py")):
        raise ValueError("Zip file does not include __main__.py")
    venv = os.path.join(root, "virtualenv")
    if os.path.isdir(venv):
        found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages"))
        if not found:
            raise ValueError("Invalid virtualenv. Zip file does not include site-packages under virtualenv/lib/")
        sys.path[:0] = found
    sys.path.insert(0, root)
    scope = {"__name__": "__action__", "__file__": os.path.join(root, "__main__.py")}
    with open(scope["__file__"], encoding="utf-8") as f:
        exec(compile(f.read(), scope["__file__"], "exec"), scope)
    fn = scope.get(main)
    if not callable(fn):
        raise LookupError("Action entrypoint '%s' is not a function." % main)
    return fn


def load(value):
    main = value.get("main") or "main"
    if value.get("binary"):
        return load_zip(value.get("code") or "", main)
    code = value.get("code") or ""
    if not code.strip():
        raise ValueError("no code to initialize")
    scope = {"__name__": "__action__", "__file__": "/tmp/action.py"}
    exec(compile(code, "/tmp/action.py", "exec"), scope)
    fn = scope.get(main)
    if not callable(fn):
        raise LookupError("Action entrypoint '%s' is not a function." % main)
    return fn


def invoke(body):
    """Runs the entry point on the activation's parameters: (status, body) as the action protocol has it."""
    for k, v in body.items():
        if k != "value":
            os.environ["__OW_" + k.upper()] = v if isinstance(v, str) else json.dumps(v)
    sdk = None
    try:
        if body.get("peerless_token"):
            import peerless as sdk
            sdk._start()
        result = entry(body.get("value") or {})
        if isinstance(result, list):
            status, out = 200, result
        elif not isinstance(result, dict):
            # OpenWhisk's proxies answer a result that is neither a dictionary nor an array with a 502 of their own.
            status, out = 502, {"error": "The action did not return a dictionary or array."}
        elif "error" in result:
            status, out = 502, {"error": result["error"]}
        else:
            status, out = 200, result
    except BaseException as e:
        traceback.print_exc()
        status, out = 502, {"error": "An error has occurred: %s" % e}
    if sdk is not None:
        sdk._end()
    return status, out


def encode(status, out):
    try:
        return status, json.dumps(out).encode("utf-8")
    except (TypeError, ValueError):
        return 502, json.dumps({"error": "The action did not return a JSON-serializable dictionary."}).encode("utf-8")


def close_all_but(*keep):
    """Closes every descriptor from 3 up but those in keep."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def child(r_in, w_out, w_err, w_res):
    """A forked instance: reads its activation, runs it with its own stdout and stderr (pipes to the proxy),
    writes its answer, exits."""
    try:
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        # Nothing of the zygote's (its control socket, other instances' pipes) stays open here.
        close_all_but(r_in, w_res)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        with open(r_in, "rb") as f:
            body = json.loads(f.read())
        status, data = encode(*invoke(body))
        sys.stdout.flush()
        sys.stderr.flush()
        view = memoryview(json.dumps(status).encode("utf-8") + b"\n" + data)
        while view:
            view = view[os.write(w_res, view):]
    finally:
        os._exit(0)


def zygote(ctl):
    """The loaded interpreter every instance is forked from: a process of its own, with one thread and
    nothing else to do, so that a fork is as cheap as the kernel makes it (forking the proxy, with a
    thread per running instance, was several times slower). It forks one child per request that comes
    with the child's four descriptors, answers with its pid, and reports each child's exit status."""
    # What the proxy's other threads held is garbage here: collected now (closing what it held), and the rest
    # frozen, so that children do not copy pages merely by collecting it.
    gc.collect()
    gc.freeze()
    close_all_but(ctl.fileno())

    def reap(*_):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ctl.send(json.dumps({"exit": pid, "status": status}).encode())

    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        msg, fds, _, _ = socket.recv_fds(ctl, 4096, 4)
        if not msg:
            os._exit(0)  # the proxy is gone
        pid = os.fork()
        if pid == 0:
            child(*fds)
        for fd in fds:
            os.close(fd)
        ctl.send(json.dumps({"id": json.loads(msg)["id"], "pid": pid}).encode())


class Zygote:
    """The proxy's side of the zygote: asks it for children, learns their pids and exit statuses."""

    def __init__(self):
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            self.ctl.close()
            zygote(theirs)
        theirs.close()
        self.lock = threading.Condition()
        self.pids = {}  # activation ID -> pid
        self.exits = {}  # pid -> wait status
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        while True:
            try:
                msg = self.ctl.recv(4096)
            except OSError:
                msg = b""
            with self.lock:
                if not msg:
                    # The zygote died (the OOM killer took it, say): no instance can start here any more, and
                    # those running cannot be told apart from it. The container ends, and the platform says so.
                    print("peerless: the zygote ended; the container ends with it", file=sys.stderr, flush=True)
                    os._exit(70)
                m = json.loads(msg)
                if "pid" in m:
                    self.pids[m["id"]] = m["pid"]
                else:
                    self.exits[m["exit"]] = m["status"]
                self.lock.notify_all()

    def spawn(self, aid, fds):
        with self.lock:
            socket.send_fds(self.ctl, [json.dumps({"id": aid}).encode()], fds)

    def pid(self, aid):
        with self.lock:
            while aid not in self.pids:
                self.lock.wait()
            return self.pids.pop(aid, None)

    def status(self, pid):
        with self.lock:
            while pid not in self.exits:
                self.lock.wait()
            return self.exits.pop(pid, None)


zygote_of = None  # set at /init in a shared container


def forward(fd, stream, aid, partial, chunk):
    """Writes a child's complete lines to our stream, tagged; returns the unfinished rest."""
    lines = (partial + chunk).split(b"\n")
    text = "".join("%s%s %s\n" % (TAG, aid, l.decode("utf-8", "replace")) for l in lines[:-1])
    if text:
        with out_lock:
            stream.write(text)
            stream.flush()
    return lines[-1]


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_forked(handler, body):
    """One instance in a shared container: (status, bytes), or None when the platform gave up on it."""
    aid = str(body.get("activation_id") or "unknown")
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    r_res, w_res = os.pipe()
    try:
        zygote_of.spawn(aid, [r_in, w_out, w_err, w_res])
    finally:
        for fd in (r_in, w_out, w_err, w_res):
            os.close(fd)
    try:
        with open(w_in, "wb") as f:
            f.write(json.dumps(body).encode("utf-8"))
    except OSError:
        pass  # it died before it read its activation: its status says how
    pid = zygote_of.pid(aid)
    streams = {r_out: sys.stdout, r_err: sys.stderr}
    partial = {r_out: b"", r_err: b""}
    result = b""
    abandoned = False
    sel = selectors.DefaultSelector()
    for fd in (r_out, r_err, r_res):
        sel.register(fd, selectors.EVENT_READ)
    conn = handler.connection
    sel.register(conn, selectors.EVENT_READ)
    left = 3
    while left > 0:
        for key, _ in sel.select():
            if key.fileobj is conn:
                # The platform sends nothing more on this connection until it has its answer: readable means
                # it closed it (the activation's time ran out, or it was stopped). The instance ends here.
                try:
                    gone = conn.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                sel.unregister(conn)
                if gone:
                    abandoned = True
                    kill(pid)
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                os.close(key.fd)
                left -= 1
            elif key.fd == r_res:
                result += chunk
            else:
                partial[key.fd] = forward(key.fd, streams[key.fd], aid, partial[key.fd], chunk)
    sel.close()
    status = zygote_of.status(pid)
    for fd, stream in streams.items():
        forward(fd, stream, aid, partial[fd], b"\n" if partial[fd] else b"")
        with out_lock:
            stream.write("%s%s %s\n" % (TAG, aid, SENTINEL))
            stream.flush()
    if abandoned:
        return None
    head, _, data = result.partition(b"\n")
    if data:
        return int(head), data
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        why = "The action exhausted its memory and was aborted (its process was killed; it shares its container's memory with the function's other instances)."
    elif os.WIFSIGNALED(status):
        why = "The action did not produce a valid response and exited unexpectedly (signal %d)." % os.WTERMSIG(status)
    else:
        why = "The action did not produce a valid response and exited unexpectedly (exit code %d)." % os.WEXITSTATUS(status)
    return INSTANCE_FAILED, json.dumps({"error": why}).encode("utf-8")


def on_main(fn):
    """Runs fn on the main thread and returns what it returned."""
    box = {"done": threading.Event()}

    def job():
        box["value"] = fn()
        box["done"].set()

    main_jobs.put(job)
    box["done"].wait()
    return box["value"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waits for the daemon's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        self.send_bytes(status, json.dumps(body).encode("utf-8"))

    def send_bytes(self, status, data):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global entry, concurrency
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "the request body is not JSON"})
        if self.path == "/init":
            if entry is not None:
                return self.reply(403, {"error": "Cannot initialize the action more than once."})
            value = body.get("value") or {}

            def init():
                global entry, concurrency, zygote_of
                try:
                    # Parameters marked init reach the code as its environment, before it loads (OpenWhisk's value.env).
                    env = value.get("env")
                    if isinstance(env, dict):
                        os.environ.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in env.items()})
                    entry = load(value)
                    concurrency = max(1, int(value.get("concurrency") or 1))
                    if concurrency > 1:
                        zygote_of = Zygote()
                    return 200, {"ok": True}
                except LookupError as e:
                    end_of_activation()
                    return 502, {"error": str(e)}
                except BaseException as e:
                    traceback.print_exc()
                    end_of_activation()
                    return 502, {"error": "Initialization has failed due to: %s" % e}

            return self.reply(*on_main(init))
        if self.path == "/run":
            if entry is None:
                return self.reply(403, {"error": "The action has not been initialized."})
            if concurrency > 1:
                out = run_forked(self, body)
                if out is None:
                    self.close_connection = True
                    return None
                return self.send_bytes(*out)

            def run():
                status, out = invoke(body)
                end_of_activation()
                return encode(status, out)

            return self.send_bytes(*on_main(run))
        self.reply(404, {"error": "no such route"})


if __name__ == "__main__":
    sys.stdout = open(sys.stdout.fileno(), "w", buffering=1, closefd=False)
    # As PID 1 a TERM would be ignored until the engine's KILL; 143 (128 + 15) tells the daemon it came from outside.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    # The default backlog of 5 drops the connections of a burst of instances: each then waits out a SYN retry (1 s, 3 s).
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        main_jobs.get()()
