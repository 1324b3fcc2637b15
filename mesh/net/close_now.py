"""``close_now(stream)``: ``trio.aclose_forcefully``, cheaper for a socket.

For a ``trio.SocketStream``, ``trio.aclose_forcefully`` comes to closing the
socket and a checkpoint that its cancelled scope swallows. The scope's
``cancel()`` formats the current task's repr for its reason, and every link
that ends and every connection a listener served closes this way: in the
handshake loop that was 2 % of the CPU a handshake costs. The fast path keeps
the promise (closed at once, a schedule point, never raising the
cancellation); any other stream goes to trio's.
"""

from __future__ import annotations

import trio

__all__ = ["close_now"]


async def close_now(stream: trio.abc.AsyncResource) -> None:
    """Close ``stream`` at once, without any graceful cleanup; never blocks."""
    if type(stream) is trio.SocketStream:
        stream.socket.close()
        await trio.lowlevel.cancel_shielded_checkpoint()
    else:
        await trio.aclose_forcefully(stream)
