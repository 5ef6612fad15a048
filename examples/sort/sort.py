"""Sample sort with alltoall, in Python: no master, no store. Invoke as a group;
every member makes its own share of random numbers, the members agree on
splitters from a sample of everyone's (one allreduce), send each number to the
member whose range holds it (one alltoall: the shuffle), sort what they got,
and learn where their part starts in the whole (one scan).

    peerless fn create sort examples/sort/sort.py --memory 256
    peerless fn invoke sort --instances 'sort-{0..3}' -p members 4 -p n 100000 --result
"""
import array
import bisect
import json
import random

import peerless


def main(p):
    n = int(p.get("n", 100000))
    me = peerless.instance_id()
    # The group is sort-0 ... sort-(members-1): this member's ID without its number, and the count.
    prefix = me.rstrip("0123456789")
    ids = ["%s%d" % (prefix, i) for i in range(int(p.get("members", 4)))]
    if me not in ids:
        return {"error": "%s is not one of %s: invoke with --instances '%s{0..%d}'" % (me, ", ".join(ids), prefix, len(ids) - 1)}
    rank, size = ids.index(me), len(ids)

    rnd = random.Random(rank)
    mine = array.array("q", (rnd.randrange(10 ** 12) for _ in range(n)))

    # Splitters from everyone's sample: concatenation of JSON lists, in rank order, in one allreduce.
    sample = sorted(rnd.sample(list(mine), min(n, 32 * size)))
    everyone = sorted(json.loads(peerless.allreduce(ids, json.dumps(sample), lambda a, b: a[:-1] + ("," if a != "[]" and b != "[]" else "") + b[1:])))
    splitters = [everyone[(i * len(everyone)) // size] for i in range(1, size)]

    # The shuffle: bucket i goes to member i.
    buckets = [array.array("q") for _ in range(size)]
    for x in mine:
        buckets[bisect.bisect_right(splitters, x)].append(x)
    got = peerless.alltoall(ids, buckets)
    part = sorted(x for b in got for x in b)

    # Where this member's part starts in the whole: an inclusive scan of the counts, minus its own.
    end = peerless.scan(ids, len(part), "sum")
    total = peerless.allreduce(ids, len(part), "sum")
    return {"member": me, "count": len(part), "offset": end - len(part), "total": total,
            "first": part[0] if part else None, "last": part[-1] if part else None,
            "sorted": all(part[i] <= part[i + 1] for i in range(len(part) - 1))}
