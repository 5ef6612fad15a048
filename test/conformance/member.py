"""A conformance member in Python: the real SDK, outside a container, told what to do by a JSON argument
(see wire.test.ts); prints one JSON line with what it saw. member.mjs is its Node.js twin."""
import array
import asyncio
import faulthandler
import hashlib
import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "sandbox", "runtime", "python"))
import peerless  # noqa: E402
import peerless.aio as aio  # noqa: E402

task = json.loads(sys.argv[1])
# A member that hangs says where, instead of holding the test to its time-out.
faulthandler.dump_traceback_later(task.get("limit", 50), exit=True)


def pattern(size):
    block = bytes((j + size) % 256 for j in range(256))
    return (block * (size // 256 + 1))[:size]


def cat(a, b):
    return a + b


peerless._start()
print("ready", flush=True)
if task["do"] == "send":
    peerless.wait_for([task["to"]], timeout=10)
    # All at once, from threads: frames of concurrent sends to one peer must arrive whole.
    ths = [threading.Thread(target=peerless.send, args=(task["to"], pattern(s))) for s in task["sizes"]]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    out = {"sent": len(task["sizes"])}
elif task["do"] == "recv":
    got = []
    for frm, data in peerless.messages(timeout=60):
        got.append({"from": frm, "size": len(data), "ok": data == pattern(len(data)), "sha": hashlib.sha256(data).hexdigest()[:16]})
        if len(got) == task["count"]:
            break
    out = {"got": sorted(got, key=lambda g: g["size"]), "refused": peerless.refused}
elif task["do"] == "collectives":
    ids = task["ids"]
    me = peerless.instance_id()
    r, n = ids.index(me), len(ids)
    out = {}
    out["sum"] = peerless.allreduce(ids, float(r + 1), "sum")
    out["vec"] = list(peerless.allreduce(ids, array.array("d", [r, 10 - r]), "min"))
    out["big"] = list(peerless.allreduce(ids, array.array("d", [r]) * 20000, "sum"))[:3]
    out["order"] = peerless.allreduce(ids, "%d," % r, cat)
    out["reduced"] = peerless.reduce(ids, "%d|" % r, cat, root=ids[n - 1])
    out["scan"] = peerless.scan(ids, r + 0.5, "sum")
    b = peerless.broadcast(ids, "from the root" if me == ids[1 % n] else "", root=ids[1 % n])
    out["bcast"] = b if isinstance(b, str) else bytes(b).decode()
    out["aio"] = asyncio.run(aio.allreduce(ids, 2.0, "sum"))  # the asyncio variant, same wire
    out["shuffle"] = peerless.alltoall(ids, ["%d->%d" % (r, j) for j in range(n)])
    peerless.barrier(ids)
    if task.get("dieAt") == me:
        os._exit(3)
    try:
        out["after"] = peerless.allreduce(ids, 1.0, "sum")
    except (peerless.PeerGoneError, peerless.PeerRestartedError) as e:
        out["after"] = {"error": type(e).__name__, "instance": e.instance}
print(json.dumps(out), flush=True)
os._exit(0)
