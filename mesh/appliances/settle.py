"""Waiting for a mesh without sleeping: every link has a fresh outcome and the mesh is idle.

What ``Mesh.settle`` and ``Mesh.refresh`` do, and what a caller awaits
instead of a sleep. A request on the ``RetryGate`` cuts every dialer's backoff
short and numbers the moment (its generation); a link has settled once its
dialer is not running, or its record holds an outcome from an attempt of
that generation or later (``Link.done_generation``). A link that is up stays
up (validation happens at connection start), unless a re-check was asked
for (``fresh``): then it too must have been judged afresh. Once every link
has settled, the mesh must also go idle (trio's ``wait_all_tasks_blocked``),
so the first messages of new links have been delivered. Work in a worker
thread, such as parsing a very large CRL, does not count as busy.

The waiting itself is woken by the ``LinkBook``, never by a timer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import trio

from mesh.appliances.book import LinkBook
from mesh.appliances.dialer import RetryGate
from mesh.appliances.spec import LinkPair

__all__ = ["MeshNotSettled", "Settler"]


class MeshNotSettled(trio.TooSlowError):
    """Some links had no outcome within the settle timeout.

    A ``trio.TooSlowError``, so callers that caught that keep working; the
    message names the links still waiting, for a one-line report.
    """

    def __init__(self, timeout: float, pending: tuple[str, ...]) -> None:
        self.timeout = timeout
        self.pending = pending
        shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
        super().__init__(
            f"the mesh did not settle within {timeout:g} s: "
            + (f"no outcome yet for {shown}" if pending else "it never went idle")
        )


class Settler:
    """Waits for every link of a mesh to settle.

    Args:
        pairs: every link of the topology, as it is now.
        running: whether an appliance of this mesh runs (a link whose
            dialer does not run has nothing to wait for).
    """

    def __init__(
        self,
        *,
        book: LinkBook,
        gate: RetryGate,
        pairs: Callable[[], Sequence[LinkPair]],
        running: Callable[[str], bool],
    ) -> None:
        self.book = book
        self.gate = gate
        self._pairs = pairs
        self._running = running
        #: The RetryGate generation of the latest re-check: a live link must
        #: have an outcome from at least this generation to count as settled.
        self._fresh = 0

    async def settle(
        self, *, timeout: float, quiet: float, fresh: bool, idle: bool = True
    ) -> None:
        """Ask every dialer for a fresh attempt (``fresh``: re-check live links too), then wait.

        ``idle=False`` returns once every link has its outcome, without waiting
        for the process to go idle: what a ``mesh node`` answering an API call
        waits for (its web server is never idle, and ``trio.testing`` needs
        pytest, which a node need not have).

        ``timeout`` bounds a stall, not the whole wait: it runs again each
        time a link settles. A re-check of thousands of links takes as long
        as their handshakes take (minutes, in a big shard), and only a wait
        in which nothing moves for ``timeout`` seconds is a failure.

        Raises:
            MeshNotSettled: some link had no outcome, and no link a new one,
                for ``timeout`` trio seconds.
        """
        if fresh:
            generation = self.gate.recheck()
            self._fresh = generation
        else:
            generation = self.gate.request()
        with trio.move_on_after(timeout) as waiting:
            # Re-check only the links still waiting after each change (a
            # full pass per change is O(n²) for n links coming up), then
            # confirm with one full pass, as a settled link can drop again.
            pending = list(self._pairs())
            while True:
                before = len(pending)
                pending = [p for p in pending if not self.settled(p, generation)]
                if len(pending) < before:  # progress: the stall timeout starts again
                    waiting.deadline = trio.current_time() + timeout
                if not pending:
                    pending = [p for p in self._pairs() if not self.settled(p, generation)]
                    if not pending:
                        break
                # Each pending link needs a change of its own to settle: look
                # again after a sixteenth of them could have (a pass per
                # change made a step of 1,000 links pass over them ~600 times).
                seen = self.book.touches
                await self.book.wait_changed()
                while self.book.touches - seen < len(pending) // 16:
                    await self.book.wait_changed()
            if idle:
                # trio has no public equivalent; trio.testing imports pytest, so
                # only a settle pays for it, never a CLI start.
                from trio.testing import wait_all_tasks_blocked

                await wait_all_tasks_blocked(cushion=quiet)
        if waiting.cancelled_caught:
            unsettled = [
                f"{p.dialer} -> {p.listener}"
                for p in self._pairs()
                if not self.settled(p, generation)
            ]
            raise MeshNotSettled(timeout, tuple(unsettled))

    def settled(self, pair: LinkPair, generation: int) -> bool:
        """Has ``pair`` an outcome from an attempt of ``generation`` or later (or no dialer)?"""
        if not self._running(pair.dialer):
            return True
        link = self.book.find(pair.dialer, pair.listener)
        if link is None:
            return False
        if link.state.is_up and link.greeting:
            return False  # up, but its first frame has not arrived yet
        if link.state.is_up and link.done_generation >= self._fresh:
            return True
        return link.done_generation >= generation
