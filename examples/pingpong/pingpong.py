# The seed paper's message-passing test in Python: `ping` sends N messages of
# S bytes straight to `pong`, which answers once it has them all.
#   peerless fn create pingpong-py examples/pingpong/pingpong.py
#   peerless fn invoke pingpong-py --instances ping,pong -p n 1000 -p size 1024 --result
import time

import peerless


def main(p):
    n = int(p.get("n", 100))
    size = int(p.get("size", 1024))
    me = peerless.instance_id()
    peerless.wait_for(["ping", "pong"], timeout=30)
    # Connections are opened before the clock starts, as a Redis client's would be.
    peerless.connect("pong" if me == "ping" else "ping")
    peerless.barrier(["ping", "pong"])
    if me == "ping":
        msg = b"\x07" * size
        t0 = time.perf_counter()
        for _ in range(n):
            peerless.send("pong", msg)
        _, reply = peerless.recv("pong")
        ms = (time.perf_counter() - t0) * 1000
        return {"role": "ping", "sent": n, "size": size, "ms": ms, "MBps": n * size / ms / 1000, "reply": bytes(reply).decode()}
    total = 0
    for _ in range(n):
        total += len(peerless.recv("ping")[1])
    peerless.send("ping", "got %d messages, %d bytes" % (n, total))
    return {"role": "pong", "received": n, "bytes": total}
