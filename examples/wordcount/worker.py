# A word-count worker: receives one block from its master, answers with the counts.
import json
import re

import peerless


def main(p):
    _, data = peerless.recv(p["master"])
    counts = {}
    for w in re.findall(r"[a-z0-9']+", bytes(data).decode().lower()):
        counts[w] = counts.get(w, 0) + 1
    peerless.send(p["master"], json.dumps(counts))
    return {"words": sum(counts.values())}
