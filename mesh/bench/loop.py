"""One handshake loop for every in-process TLS figure, so they differ only in the TLS layer.

A listener on 127.0.0.1 and a client that connects, completes the handshake
and waits for one byte the server writes once *its* side has finished (and,
for mesh, accepted the peer). So a counted handshake is a link both ends
accepted, not just a client that sent its Finished. Connections run one after
another, as ``s_time`` makes them; the server and client share one trio loop,
so one core does both ends.
"""

from __future__ import annotations

import functools
import time
from typing import Awaitable, Callable

import trio
from attrs import define

__all__ = ["Rate", "handshake_rate", "ACK"]

ACK = b"k"

#: serve(stream) handles one accepted TCP stream: handshake, check, send ACK.
Serve = Callable[[trio.SocketStream], Awaitable[None]]
#: connect(port) makes one client handshake and returns once ACK arrived.
Connect = Callable[[int], Awaitable[None]]


@define(frozen=True, kw_only=True)
class Rate:
    handshakes: int
    seconds: float
    cpu_seconds: float
    failures: int

    @property
    def per_second(self) -> float:
        return self.handshakes / self.seconds

    @property
    def cpu_per_handshake(self) -> float:
        return self.cpu_seconds / self.handshakes


async def handshake_rate(serve: Serve, connect: Connect, seconds: float, *, warmup: int = 5) -> Rate:
    """Handshakes per second for ``seconds`` of back-to-back connections."""
    failures = 0

    async def handler(stream: trio.SocketStream) -> None:
        nonlocal failures
        try:
            await serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            failures += 1
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        for _ in range(warmup):
            await connect(port)
        count = 0
        cpu0 = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            await connect(port)
            count += 1
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        nursery.cancel_scope.cancel()
    return Rate(handshakes=count, seconds=wall, cpu_seconds=cpu, failures=failures)
