# Word count, scatter-gather, in Python: see master.js (restart and crash work the same). Invoke with an instance ID:
#   peerless fn create wordcount-py examples/wordcount/master.py
#   peerless fn create wordcount-worker-py examples/wordcount/worker.py
#   peerless fn invoke wordcount-py --instance wcpy -P examples/wordcount/input-300.json -p worker wordcount-worker-py --result
import json
import os
import time

import peerless


def split(text, block):
    blocks, start = [], 0
    while start < len(text):
        end = min(start + block, len(text))
        if end < len(text):
            space = text.rfind(" ", start, end + 1)
            if space > start:
                end = space + 1
        blocks.append(text[start:end])
        start = end
    return blocks


def split_words(text, n):
    """Exactly n blocks, splitting between words: for runs that ask for a worker count."""
    words = text.split(" ")
    return [" ".join(words[i * len(words) // n:(i + 1) * len(words) // n]) for i in range(n)]


def left():
    return max(1.0, float(os.environ.get("__OW_DEADLINE", "0")) / 1000 - time.time() - 1)


def hand(wid, block):
    """Sends a worker its block; if its job restarted it meanwhile, waits for the new one and sends again."""
    while True:
        try:
            return peerless.send(wid, block)
        except peerless.PeerRestartedError:
            peerless.wait_for([wid], timeout=left())


def counts_of(wid, block):
    """A worker's counts; a worker restarted before it answered lost its block: it gets it again."""
    while True:
        try:
            return json.loads(bytes(peerless.recv(wid)[1]))
        except peerless.PeerRestartedError:
            peerless.wait_for([wid], timeout=left())
            hand(wid, block)


def main(p):
    me = peerless.instance_id()
    if not me:
        return {"error": "invoke the master with --instance ID"}
    t0 = time.time()
    if p.get("workers"):
        blocks = split_words(str(p.get("text", "")), int(p["workers"]))
    else:
        blocks = split(str(p.get("text", "")), int(p.get("block", 300)))
    ids = ["%s-w%d" % (me, i) for i in range(len(blocks))]
    peerless.spawn(p.get("worker", "wordcount-worker-py"), instances=ids, params={"master": me, "crash": p.get("crash")}, restart=p.get("restart"))
    peerless.wait_for(ids, timeout=left())
    for wid, block in zip(ids, blocks):
        hand(wid, block)
    counts = {}
    for wid, block in zip(ids, blocks):
        for w, n in counts_of(wid, block).items():
            counts[w] = counts.get(w, 0) + n
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {"workers": len(ids), "words": sum(counts.values()), "distinct": len(counts), "top": top, "ms": int((time.time() - t0) * 1000), "job": peerless.last_job}
