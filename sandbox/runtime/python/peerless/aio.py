"""The peerless SDK for asyncio: the same calls as `peerless`, as coroutines.

    import peerless.aio as peerless
    await peerless.wait_for(["worker-1"], timeout=5)
    await peerless.send("worker-1", b"hi")
    total = await peerless.allreduce(ids, 1.0, "sum")
    async for sender, data in peerless.messages(): ...

Each call runs the blocking one in a worker thread (asyncio.to_thread), so the
event loop is never blocked; the wire, the connections and the inbox are the
blocking SDK's, so both may be used in one function.
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, List, Optional, Sequence, Tuple

import peerless as _p
from peerless import OPS, ApiError, PeerGoneError, PeerlessError, PeerRestartedError, instance_id  # noqa: F401  (re-exported)


def _wrap(name: str):
    f = getattr(_p, name)

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(f, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = f.__doc__
    return call


self = _wrap("self")
instances = _wrap("instances")
lookup = _wrap("lookup")
wait_for = _wrap("wait_for")
set_status = _wrap("set_status")
spawn = _wrap("spawn")
connect = _wrap("connect")
send = _wrap("send")
recv = _wrap("recv")
broadcast = _wrap("broadcast")
reduce = _wrap("reduce")
allreduce = _wrap("allreduce")
scan = _wrap("scan")
alltoall = _wrap("alltoall")
barrier = _wrap("barrier")
scatter = _wrap("scatter")
gather = _wrap("gather")


async def messages(sender: Optional[str] = None, timeout: Optional[float] = None) -> AsyncIterator[Tuple[str, bytearray]]:
    """Messages as they come: `async for sender, data in peerless.aio.messages(): ...` (see peerless.messages)."""
    while True:
        try:
            yield await recv(sender, timeout)
        except (TimeoutError, RuntimeError):
            return


__all__: List[str] = [n for n in dir() if not n.startswith("_") and n not in ("annotations", "asyncio", "Any", "AsyncIterator", "List", "Optional", "Sequence", "Tuple")]
