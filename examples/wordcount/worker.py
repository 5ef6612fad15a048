# A word-count worker: receives one block from its master, answers with the counts.
# `crash: ID` makes that worker die after it got its block, the first time only.
import json
import os
import re

import peerless


def main(p):
    _, data = peerless.recv(p["master"])
    if p.get("crash") == peerless.instance_id() and not (peerless.self().get("entry") or {}).get("epoch"):
        os._exit(1)
    counts = {}
    for w in re.findall(r"[a-z0-9']+", bytes(data).decode().lower()):
        counts[w] = counts.get(w, 0) + 1
    peerless.send(p["master"], json.dumps(counts))
    return {"words": sum(counts.values())}
