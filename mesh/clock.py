"""One emulated clock per mesh: scenario time over trio time.

Theory of operation: a scenario starts at a chosen instant (``start``) and the
clock reads ``start + jumps + trio time elapsed since the clock was anchored``.
Two things move it:

* trio's own clock, so ordinary elapsed time still passes (heartbeats, a link
  that stays up for a while); and
* :meth:`EmulatedClock.jump` / :meth:`EmulatedClock.advance`, which move
  validation time, CRL freshness and backoff *together*: "a year later" costs
  nothing, certificates expire on cue, cached CRLs go stale, and every task
  sleeping in :meth:`EmulatedClock.sleep` wakes at once and re-reads the time.

Emulated sleeps are measured on this clock, not on trio's: a backoff of 30 s
ends either when 30 s of trio time have passed or as soon as a jump carries
the emulated time past its deadline, whichever comes first. A sleeper can also
be woken early on purpose (:meth:`EmulatedClock.kick`); the mesh runtime does
that so ``settle()`` never waits out a backoff.

How tests combine it with trio's testing clocks: real socket I/O keeps working
under trio's default clock, and a test moves scenario time only through
``jump``/``advance``, so it never really waits. Trio's ``autojump_clock`` is
safe for code that only sleeps; with real sockets it is safe only while every
peer lives in the same trio run (loopback bytes are in the kernel before the
next poll). Anything that waits on another OS process or a worker thread
(``openssl s_client``, ``trio.to_thread``) looks idle to the autojumper, which
then fires handshake and fetch timeouts early: do not combine the two there.

The clock anchors itself to trio time the first time it is read inside a trio
run; read outside one, it returns ``start + jumps`` plus whatever trio time it
had seen pass (one clock is meant for one trio run).
"""

from __future__ import annotations

import datetime as dt
import math

import trio

__all__ = ["EmulatedClock"]


def _trio_now() -> float | None:
    try:
        return trio.current_time()
    except RuntimeError:  # not inside a trio run
        return None


class EmulatedClock:
    """Scenario time: ``start`` + jumps + trio time elapsed since anchoring.

    Args:
        start: the scenario's first instant; must be timezone-aware, since
            certificate validity and CRL dates are UTC instants.
    """

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(
                f"EmulatedClock start {start!r} has no timezone; pass an aware datetime "
                "(for example datetime(2027, 1, 15, tzinfo=timezone.utc))"
            )
        self._start = start.astimezone(dt.timezone.utc)
        self._jumped = dt.timedelta(0)
        self._anchor: float | None = None
        self._last_elapsed = dt.timedelta(0)
        self._wakeup = trio.Event()

    @property
    def start(self) -> dt.datetime:
        return self._start

    def _elapsed(self) -> dt.timedelta:
        now = _trio_now()
        if now is None:  # outside a run: time stands where the last run left it
            return self._last_elapsed
        if self._anchor is None:
            self._anchor = now - self._last_elapsed.total_seconds()
        self._last_elapsed = dt.timedelta(seconds=now - self._anchor)
        return self._last_elapsed

    def now(self) -> dt.datetime:
        """The emulated instant (UTC, aware). Use this, never ``datetime.now()``."""
        return self._start + self._jumped + self._elapsed()

    __call__ = now  # a clock is also a ``now`` callable (CrlFetcher(now=clock))

    def jump(self, delta: dt.timedelta, *, wake: bool = True) -> dt.datetime:
        """Move emulated time forward by ``delta`` and wake every emulated sleeper.

        Returns the new emulated instant. Time never runs backwards: a negative
        delta is a ValueError. ``wake=False`` leaves the sleepers asleep until
        the next :meth:`kick`, for a caller that kicks right after changing
        more of the world (a scenario step: jump, act, then judge every link
        once, at the new instant; woken at the jump, halted dialers would
        retry against the world before the step's action).
        """
        if delta < dt.timedelta(0):
            raise ValueError(f"the clock only moves forward; got a jump of {delta}")
        self._elapsed()  # anchor before the jump so elapsed time is not lost
        self._jumped += delta
        if wake:
            self.kick()
        return self.now()

    async def advance(self, delta: dt.timedelta) -> dt.datetime:
        """:meth:`jump`, then yield so woken sleepers run before the caller goes on."""
        at = self.jump(delta)
        await trio.lowlevel.checkpoint()
        return at

    def kick(self) -> None:
        """Wake every task in :meth:`sleep` so it re-reads the time (or gives up)."""
        wakeup, self._wakeup = self._wakeup, trio.Event()
        wakeup.set()

    async def sleep(self, seconds: float, *, kickable: bool = True) -> bool:
        """Sleep ``seconds`` of emulated time.

        Ends when trio time has covered the rest of the interval or a jump has
        carried emulated time past the deadline. Returns True when the full
        interval passed and False when a :meth:`kick` (without enough time
        passing) ended it early; with ``kickable=False`` a kick only makes the
        sleeper re-read the time.
        """
        if seconds <= 0 or math.isnan(seconds):
            await trio.lowlevel.checkpoint()
            return True
        deadline = self.now() + dt.timedelta(seconds=seconds)
        while True:
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                await trio.lowlevel.checkpoint()
                return True
            wakeup = self._wakeup
            with trio.move_on_after(remaining):
                await wakeup.wait()
                if kickable and self.now() < deadline:
                    return False

    async def sleep_until(self, when: dt.datetime) -> None:
        """Sleep until the emulated clock reads ``when`` (jumps count)."""
        while True:
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                await trio.lowlevel.checkpoint()
                return
            await self.sleep(remaining, kickable=False)

    def __repr__(self) -> str:
        return f"EmulatedClock(start={self._start.isoformat()}, now={self.now().isoformat()})"
