"""Single flight: one call per key at a time; whoever asks meanwhile shares its outcome.

Theory of operation. A thousand tasks ask for the same thing within
milliseconds (the CRL at a URL, an HTTP exchange with the CRL server); doing
it once is the point. :meth:`SingleFlight.run` takes a key and the work that
answers it:

- **The first call leads.** With no call for the key in flight, the caller
  runs its own work; its outcome is its own (the value, or its exception with
  its traceback).
- **Calls meanwhile join.** A call for a key in flight waits for the leader's
  outcome: the same value, or the same failure, raised afresh for each joiner
  (a copy without the leader's traceback, whose frames may hold what the work
  read: a joiner keeping its failure keeps none of that). Only exceptions of
  the types the flight ``shares`` are outcomes; anything else (``Cancelled``,
  a crash) leaves the flight abandoned.
- **Take-over.** If the leading call is cancelled (or crashes), nobody is left
  waiting on an abandoned flight: the joiners start over, and the first to
  run leads with its own work while the rest join it.
- **Only flights are shared, never a finished outcome.** A call after the
  flight landed leads a new one: a cache is the caller's business.
- **Each caller keeps its own deadline.** ``deadline`` (trio time) bounds how
  long a joiner waits for someone else's work; the leader's work bounds itself
  (it knows what a deadline covers and how to say it passed), and a joiner
  that takes over brings its deadline into the work it runs. If a joiner's
  deadline passes first, it gets ``late(flight)`` (by default
  ``trio.TooSlowError``), as if its own work had timed out, and the flight goes
  on for the others. The leading work can say two things that keep this
  honest: :attr:`Flight.untimed` once what a deadline covers is done (an HTTP
  body is in, only parsing is left: a joiner whose deadline passes now waits
  for the outcome, as its own work would have), and :attr:`Flight.expired`
  when its failure is its own deadline passing (a joiner with a later
  deadline would still be waiting, so it gets that failure at its own
  deadline, not earlier; one without a deadline gets it at once). :attr:`Flight.progress` is whatever the leader
  reports meanwhile, for ``late`` to say how far the flight had got.

A table of flights is a plain dict: one :class:`SingleFlight` per scope of
sharing (per fetcher, or per ``trio.run`` in a ``trio.lowlevel.RunVar``). Its
events belong to the ``trio.run`` that made them.
"""

from __future__ import annotations

import math
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

import trio

__all__ = ["Flight", "SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flight:
    """One call in flight, as those waiting on it see it and as its work reports to them.

    The leading work gets it and may set ``progress`` (anything; ``late`` reads
    it), ``untimed`` and ``expired`` (see the module notes).
    """

    __slots__ = ("done", "progress", "untimed", "expired", "_landed", "_value", "_failure")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.progress: object = None
        #: What a deadline covers is over: joiners wait for the outcome whatever their deadline.
        self.untimed = False
        #: The outcome is the leader's own deadline passing: joiners get it at theirs.
        self.expired = False
        self._landed = False
        self._value: object = None
        self._failure: BaseException | None = None


def _too_slow(flight: Flight) -> object:
    raise trio.TooSlowError


class SingleFlight(Generic[K, V]):
    """Calls for the same key while one is in flight share its outcome.

    Args:
        shares: the exception types that are an outcome, shared with joiners
            (others abandon the flight, and a joiner takes over).
        fresh: makes the copy of a shared exception that each joiner raises
            (and the one the flight keeps): same meaning, no traceback.
    """

    def __init__(
        self,
        *,
        shares: type[BaseException] | tuple[type[BaseException], ...] = (),
        fresh: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        if shares and fresh is None:
            raise TypeError("a SingleFlight that shares exceptions needs fresh= to copy them")
        self._shares = shares
        self._fresh = fresh
        self._flights: dict[K, Flight] = {}

    def __contains__(self, key: K) -> bool:
        """Is a call for ``key`` in flight?"""
        return key in self._flights

    async def run(
        self,
        key: K,
        work: Callable[[Flight], Awaitable[V]],
        *,
        deadline: float = math.inf,
        late: Callable[[Flight], V] = _too_slow,  # type: ignore[assignment]
    ) -> V:
        """``work``'s outcome for ``key``: our own if we lead, else the flight's we join.

        Args:
            key: what is asked for; calls with equal keys share.
            work: what answers it when this call leads, given the :class:`Flight`.
            deadline: when this call stops waiting for another's work.
            late: what this call returns (or raises) when its deadline passes
                while the flight it joined still runs.
        """
        while (flight := self._flights.get(key)) is not None:
            with trio.move_on_at(deadline):
                await flight.done.wait()
            if not flight.done.is_set():
                if not flight.untimed:
                    return late(flight)
                await flight.done.wait()
            if not flight._landed:
                continue  # the leader was cancelled (or crashed): start over
            if flight.expired and deadline < math.inf:
                await trio.sleep_until(deadline)
            if flight._failure is not None:
                assert self._fresh is not None
                raise self._fresh(flight._failure)
            return flight._value  # type: ignore[return-value]
        return await self._lead(key, work)

    async def _lead(self, key: K, work: Callable[[Flight], Awaitable[V]]) -> V:
        flight = self._flights[key] = Flight()
        try:
            value = await work(flight)
        except self._shares as exc:
            assert self._fresh is not None
            flight._failure = self._fresh(exc)
            flight._landed = True
            raise
        else:
            flight._value = value
            flight._landed = True
            return value
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()
