"""Accepting connections with one task per listener: ``trio.serve_listeners``, slimmer.

``trio.serve_listeners`` runs a task of its own plus one per listener, in a
nursery of its own, and wraps every handler in a further function. A mesh
runs one listener per appliance, thousands of them, most of which (sensors)
are never dialed: each of those tasks and nurseries is memory and
scheduling for nothing. :func:`serve_listener` is the same loop as trio's
per-listener one, run as the only task of its listener, starting each
handler in a nursery the caller already has.
"""

from __future__ import annotations

import errno
from typing import Awaitable, Callable, NoReturn

import trio

from mesh.net.close_now import close_now

__all__ = ["ACCEPT_CAPACITY_ERRNOS", "serve_listener"]

#: What accept(2) returns when the process or system is out of room for a
#: connection (trio's list): wait and accept again rather than stop listening.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: How long to wait after such an error before accepting again (trio's figure).
CAPACITY_PAUSE = 0.1


async def serve_listener(
    listener: trio.abc.Listener[trio.SocketStream],
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    nursery: trio.Nursery,
    out_of_room: Callable[[OSError], None] | None = None,
) -> NoReturn:
    """Accept on ``listener`` until cancelled, running ``handler(stream)`` in ``nursery``.

    The stream is closed once the handler returns. ``out_of_room`` hears
    about every accept that failed for lack of descriptors or memory (the
    listener goes on after :data:`CAPACITY_PAUSE`); any other accept error
    ends the loop with that error. The listener is closed on the way out.
    """
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                if out_of_room is not None:
                    out_of_room(exc)
                await trio.sleep(CAPACITY_PAUSE)
            else:
                nursery.start_soon(_handle, stream, handler)


async def _handle(
    stream: trio.SocketStream, handler: Callable[[trio.SocketStream], Awaitable[object]]
) -> None:
    try:
        await handler(stream)
    finally:
        await close_now(stream)
