"""The dialing side of an appliance: when to try again, and how a caller cuts the wait short.

A dialer that fails (the listener is down, refused us, or broke off) tries
again after a capped exponential :class:`Backoff` on the *emulated* clock, so
a clock jump ends a long wait as it ends every other emulated sleep. That is
engine policy, not networking, which is why it lives here and not in
``mesh.net``.

:class:`RetryGate` is how ``Mesh.settle``/``Mesh.refresh`` wait without
sleeping: one gate per mesh (or per ``mesh node``), shared by every dialer.
"""

from __future__ import annotations

from typing import Callable

import trio
from attrs import define, field

from mesh.clock import EmulatedClock

__all__ = ["Backoff", "RetryGate"]


@define(kw_only=True)
class Backoff:
    """Capped exponential backoff in emulated seconds: 1, 2, 4, ... up to ``cap``."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    _next: float = field(default=0.0, alias="_next")

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        self._next = self.initial if self._next == 0.0 else min(self.cap, self._next * self.factor)
        return self._next



class RetryGate:
    """Lets a caller cut every dialer's backoff short and know which attempts are fresh.

    Each attempt records the gate's generation when it started; after
    :meth:`request` returns generation ``g``, an attempt with generation
    ``>= g`` started after the request. :meth:`recheck` goes further: every
    live link whose attempt started before it is closed by its dialer, which
    redials at once (``Mesh.refresh``).
    """

    def __init__(self, clock: EmulatedClock) -> None:
        self.clock = clock
        self.generation = 0
        #: The generation of the latest :meth:`recheck` (0: none yet).
        self.recheck_generation = 0
        #: What :meth:`recheck` calls: live links, by the attempt they came from.
        self._watchers: dict[object, tuple[int, Callable[[], None]]] = {}

    def request(self) -> int:
        self.generation += 1
        self.clock.kick()
        return self.generation

    def recheck(self) -> int:
        """:meth:`request`, and ask every live link dialed before it to redial."""
        generation = self.request()
        self.recheck_generation = generation
        watchers, self._watchers = self._watchers, {}
        for _since, callback in watchers.values():
            callback()
        return generation

    def watch_recheck(self, since: int, callback: Callable[[], None]) -> object:
        """Call ``callback`` at the first :meth:`recheck` after an attempt of generation ``since``.

        At once if one already came. A callback, not a task waiting on an
        event: every live dialed link has one, and thousands of parked tasks
        are memory and scheduling for something that rarely happens. Returns
        a handle for :meth:`unwatch`.
        """
        handle = object()
        if self.recheck_generation > since:
            callback()
        else:
            self._watchers[handle] = (since, callback)
        return handle

    def unwatch(self, handle: object) -> None:
        self._watchers.pop(handle, None)

    async def pause(self, seconds: float, since: int) -> None:
        """Back off ``seconds`` (emulated) unless a request came since ``since``."""
        if self.generation != since:
            await trio.lowlevel.checkpoint()
            return
        await self.clock.sleep(seconds)
