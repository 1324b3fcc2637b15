"""What a ``mesh node`` process lets its console change: the emulated clock, and stop/start.

Why: a scenario driver that reaches running nodes through their REST API
(``mesh run`` over a fleet, :mod:`mesh.scenario.fleet`) plays ``advance``,
``stop`` and ``start`` steps without restarting a process, so the nodes keep
their CRL caches, their ports and their consoles' tokens across steps, as
real appliances do. These are the :class:`mesh.web.backend.NodeControl` of
the two kinds of node process:

* :class:`LoneControl`: ``mesh node`` running one appliance. The appliance
  runs in a cancel scope of its own, so stopping it leaves the console (and
  the process) up, and starting it runs the same appliance again on its old
  port.
* :class:`ShardControl`: one appliance of a shard (``[[appliance]]`` tables,
  a :class:`~mesh.appliances.Mesh` in one process): ``Mesh.stop``/``start``;
  the clock is the shard's, shared by all its appliances, so moving it
  through one console moves it for every appliance of the shard.

In a shard, the appliances also share one retry gate: a refresh through one
console makes every dialer of the shard redial. So a shard's refreshes are
whole-shard ones (:class:`ShardRefresh`): every appliance refetches its CRLs
and judges the links it accepted, then every link of the shard is judged
afresh once; refreshes asked while one runs are served together by the
next, so a driver asking each of a shard's thousand consoles costs two
whole-shard refreshes, not a thousand (each of which would redial them all).

Moving the clock records ``clock-advanced`` and has every running appliance
say whether its certificate is now in its expiry window, as
``Mesh.advance`` does in a scenario run; it does not republish CRLs (the
CRL server is another process).
"""

from __future__ import annotations

import datetime as dt

import trio

from mesh.appliances.appliance import REFRESH_TIMEOUT, Appliance
from mesh.appliances.mesh import Mesh
from mesh.appliances.settle import MeshNotSettled
from mesh.clock import EmulatedClock
from mesh.eventlog import EventLog
from mesh.events import ClockAdvanced

__all__ = ["LoneControl", "ShardControl", "ShardRefresh"]


async def _move(clock: EmulatedClock, to: dt.datetime, events: EventLog,
                running: list[Appliance]) -> dt.datetime:
    previous = clock.now()
    if to <= previous:
        await trio.lowlevel.checkpoint()
        return previous
    clock.jump(to - previous)
    events.append(ClockAdvanced(at=clock.now(), delta=to - previous, previous=previous))
    for appliance in running:
        if appliance.running:
            appliance.check_expiry()
    await trio.lowlevel.checkpoint()
    return clock.now()


class LoneControl:
    """The appliance of a one-appliance ``mesh node``, run so that it can stop and start."""

    def __init__(self, appliance: Appliance, *, clock: EmulatedClock, events: EventLog,
                 nursery: trio.Nursery) -> None:
        self._appliance = appliance
        self._clock = clock
        self._events = events
        self._nursery = nursery
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._lock = trio.Lock()

    def running(self) -> bool:
        return self._appliance.running

    async def move_clock(self, to: dt.datetime) -> dt.datetime:
        return await _move(self._clock, to, self._events, [self._appliance])

    async def start(self) -> None:
        """Run the appliance in the node's nursery; returns once it listens.

        Raises:
            InputError: it cannot listen on its address (its old port is taken).
        """
        async with self._lock:
            if self._scope is not None and not self._done.is_set():
                return
            scope = self._scope = trio.CancelScope()
            done = self._done = trio.Event()
            appliance = self._appliance

            async def one(task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    with scope:
                        await appliance.run(task_status=task_status)
                finally:
                    done.set()

            await self._nursery.start(one)

    async def stop(self) -> None:
        async with self._lock:
            if self._scope is None or self._done.is_set():
                return
            self._scope.cancel()
            await self._done.wait()


class ShardControl:
    """Appliance ``name`` of a shard's :class:`~mesh.appliances.Mesh`."""

    def __init__(self, mesh: Mesh, name: str) -> None:
        self._mesh = mesh
        self._name = name

    def running(self) -> bool:
        return self._mesh.appliance(self._name).running

    async def move_clock(self, to: dt.datetime) -> dt.datetime:
        mesh = self._mesh
        return await _move(mesh.clock, to, mesh.events,
                           [mesh.appliance(name) for name in mesh.names])

    async def start(self) -> None:
        await self._mesh.start(self._name)

    async def stop(self) -> None:
        await self._mesh.stop(self._name)


class _Round:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.pending: tuple[str, ...] = ()
        #: The stall timeout of the round: the longest its callers asked for.
        self.timeout: float | None = None


class ShardRefresh:
    """A shard's CRL refreshes, whole-shard and coalesced (see the module docstring)."""

    def __init__(self, mesh: Mesh, *, timeout: float = REFRESH_TIMEOUT) -> None:
        self._mesh = mesh
        self._timeout = timeout
        #: The round callers join: it starts after the one running now.
        self._waiting: _Round | None = None
        self._busy = False

    async def refresh(self, timeout: float | None = None) -> tuple[str, ...]:
        """Once a whole-shard refresh that started after this call has ended:
        the links still without an outcome (() when all have one).

        ``timeout``: how long the refresh may go without any link getting
        its outcome (None: the shard's own limit); a round serving several
        callers waits the longest any of them asked for.
        """
        if self._waiting is None:
            self._waiting = _Round()
        joined = self._waiting
        if timeout is not None:
            joined.timeout = max(timeout, joined.timeout or 0.0)
        if not self._busy:
            self._busy = True
            current: _Round | None = None
            try:
                while self._waiting is not None:
                    current, self._waiting = self._waiting, None
                    current.pending = await self._refresh_all(
                        self._timeout if current.timeout is None else current.timeout)
                    current.done.set()
            finally:
                self._busy = False
                # Cancelled mid-way (the asking client went away): nobody is
                # left waiting on a round that will not run.
                for left in (current, self._waiting):
                    if left is not None and not left.done.is_set():
                        left.pending = ("the refresh was interrupted",)
                        left.done.set()
                self._waiting = None
        await joined.done.wait()
        return joined.pending

    async def _refresh_all(self, timeout: float) -> tuple[str, ...]:
        mesh = self._mesh

        async def no_wait(seconds: float) -> None:
            await trio.lowlevel.checkpoint()

        for name in mesh.names:
            appliance = mesh.appliance(name)
            if appliance.running:
                # Its CRLs refetched at the next check and the links it accepted
                # from other processes judged again; the waiting is the shard's.
                await appliance.refresh_crls(timeout=timeout, settle=no_wait)
        try:
            await mesh.settle(timeout=timeout, quiet=0.0, fresh=True, idle=False)
        except MeshNotSettled as exc:
            return exc.pending
        return ()
