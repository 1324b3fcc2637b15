"""What appliances say to each other once a link is up, by role.

Only after both ends sent ``ACCEPT`` does any of this run, which is what lets
a test prove that nothing crossed a halted link: every application frame is
counted by its receiver in the link record.

* A sensor on its link to a console sends a heartbeat at once and then every
  ``heartbeat_interval`` emulated seconds, and every alert raised on it.
* A management console replicates to the HA console: a snapshot at once, then
  one ``REPLICATE`` per alert it learns.
* Any appliance with a forwarding rule sends each alert as ``FORWARD`` to the
  forwarding target (the server-auth channel).

Alerts sit on an :class:`AlertBoard` per appliance; each link keeps a cursor
into it (in the link record, so it survives a reconnect): an alert raised
while a link is down goes out when the link comes back up.

What arrives goes into the receiver's :class:`Inbox`: counted for the whole
run, and only the last :data:`INBOX_WINDOW` frames kept, so a run of days
does not grow without limit.

This module needs only a :class:`TrafficEnd` of the appliance, not the
appliance itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
from collections import Counter, deque
from functools import partial
from typing import Any, Awaitable, Callable, Iterator, Protocol

import trio

from mesh.appliances.link_state import Link
from mesh.appliances.spec import Role
from mesh.clock import EmulatedClock
from mesh.eventlog import EventLog
from mesh.events import MessageDelivered
from mesh.net.framing import Frame, FrameError, FramedStream, FrameType, LineStream

__all__ = [
    "AlertBoard",
    "INBOX_WINDOW",
    "Inbox",
    "TrafficEnd",
    "Plan",
    "greets",
    "plan_for",
    "voices",
    "listen",
    "LINK_ERRORS",
]

#: How many received frames an :class:`Inbox` keeps. Enough to read what a
#: test or a scenario step sent (a handful of alerts, the heartbeats between);
#: a console of 5,000 sensors hears 14 million heartbeats a day, which it
#: counts but does not keep.
INBOX_WINDOW = 256


#: Alerts an appliance keeps for links to forward. A link forwards each alert
#: once, from its own position in the stream; one that falls further behind
#: than this resumes at the oldest alert still kept (a forwarding target that
#: was away for thousands of alerts does not get them all replayed).
ALERT_WINDOW = 1024


class AlertBoard:
    """An appliance's alerts, in order: the last :data:`ALERT_WINDOW` kept,
    positions counted over the whole run; wakes speakers when one is added."""

    def __init__(self, window: int = ALERT_WINDOW) -> None:
        self.window = window
        #: Made at the first alert (an empty deque is ~0.8 kB a sensor).
        self._recent: deque[dict[str, Any]] | None = None
        #: Alerts posted over the whole run (the next alert's position).
        self.count = 0
        self._changed = trio.Event()
        #: Sleeps that a post ends (:meth:`interrupt_on_post`).
        self._sleeps: set[trio.CancelScope] = set()

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alerts still kept, oldest first."""
        return list(self._recent or ())

    def post(self, alert: dict[str, Any]) -> None:
        if self._recent is None:
            self._recent = deque(maxlen=self.window)
        self._recent.append(dict(alert))
        self.count += 1
        changed, self._changed = self._changed, trio.Event()
        changed.set()
        for scope in self._sleeps:
            scope.cancel()

    @contextlib.contextmanager
    def interrupt_on_post(self) -> Iterator[trio.CancelScope]:
        """A cancel scope the next :meth:`post` cancels: a sleep in it ends with a new alert.

        How one task waits for two things (the next heartbeat on the
        emulated clock, or an alert) without a second task to wait on each.
        """
        with trio.CancelScope() as scope:
            self._sleeps.add(scope)
            try:
                yield scope
            finally:
                self._sleeps.discard(scope)

    async def wait_beyond(self, index: int) -> None:
        while self.count <= index:
            await self._changed.wait()

    def at(self, index: int) -> tuple[int, dict[str, Any]]:
        """The alert at position ``index``, or the oldest kept if that one is gone;
        with its position."""
        recent = self._recent
        assert recent is not None, "no alert posted yet (wait_beyond first)"
        first = self.count - len(recent)
        position = max(index, first)
        return position, recent[position - first]


class Inbox:
    """The application frames an appliance received: every one counted, the last few kept."""

    def __init__(self, window: int = INBOX_WINDOW) -> None:
        self.window = window
        #: Frames received over the whole run, by type.
        self.counts: Counter[FrameType] = Counter()
        # Made on the first frame: most sensors never receive one, and an
        # empty deque is half a kilobyte per appliance.
        self._recent: deque[tuple[str, Frame]] | None = None

    def add(self, peer: str, frame: Frame) -> None:
        if self._recent is None:
            self._recent = deque(maxlen=self.window)
        self._recent.append((peer, frame))
        self.counts[frame.type] += 1

    @property
    def received(self) -> int:
        """Frames received over the whole run (kept or not)."""
        return sum(self.counts.values())

    def __iter__(self) -> Iterator[tuple[str, Frame]]:
        """The kept frames, oldest first, as (sender, frame)."""
        return iter(tuple(self._recent or ()))

    def __len__(self) -> int:
        return len(self._recent or ())


class TrafficEnd(Protocol):
    """What traffic needs of the appliance at one end of a link."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def heartbeat_interval(self) -> float: ...

    @property
    def clock(self) -> EmulatedClock: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def alerts(self) -> AlertBoard: ...

    @property
    def inbox(self) -> Inbox: ...


class Plan(enum.Enum):
    """What one end sends on one link."""

    NOTHING = "nothing"
    HEARTBEATS_AND_ALERTS = "heartbeats-and-alerts"
    REPLICATE = "replicate"
    FORWARD = "forward"


def greets(dialer: Role | None, listener: Role | None, *, mutual: bool) -> bool:
    """Does an end of this link send a frame as soon as it is up (a heartbeat, a snapshot)?"""
    speaking = (
        plan_for(dialer, listener, as_dialer=True, mutual=mutual) if dialer else Plan.NOTHING,
        plan_for(listener, dialer, as_dialer=False, mutual=mutual) if listener else Plan.NOTHING,
    )
    return any(p in (Plan.HEARTBEATS_AND_ALERTS, Plan.REPLICATE) for p in speaking)


def plan_for(me: Role, peer: Role | None, *, as_dialer: bool, mutual: bool) -> Plan:
    if not mutual:
        return Plan.FORWARD if as_dialer else Plan.NOTHING
    if me is Role.SENSOR:
        return Plan.HEARTBEATS_AND_ALERTS
    if me is Role.MANAGEMENT_CONSOLE and (
        peer is Role.HA_CONSOLE or (peer is None and as_dialer)
    ):
        return Plan.REPLICATE
    return Plan.NOTHING


def voices(
    me: TrafficEnd, link: Link, framed: FramedStream | LineStream, plan: Plan
) -> list[Callable[[], Awaitable[None]]]:
    """What ``plan`` sends, as loops to run side by side; none for ``Plan.NOTHING``.

    The engine runs each as a task of the link's own nursery: no nursery of
    their own, and no task at all on an end that says nothing (a console's
    end of every sensor link). Each loop sends until cancelled.

    Raises (from each loop):
        trio.BrokenResourceError, trio.ClosedResourceError, FrameError: the
            link went away under a send (:data:`LINK_ERRORS`; never an
            ExceptionGroup of them).
    """
    cursor_key = me.name
    if plan is Plan.NOTHING:
        return []
    if plan is Plan.HEARTBEATS_AND_ALERTS:
        return [partial(_heartbeats_and_alerts, me, link, framed, cursor_key)]
    if plan is Plan.REPLICATE:
        return [partial(_replicate, me, link, framed, cursor_key)]
    return [partial(_stream_alerts, me, link, framed, FrameType.FORWARD, cursor_key)]


async def _replicate(
    me: TrafficEnd, link: Link, framed: FramedStream | LineStream, cursor_key: str
) -> None:
    await framed.send(
        Frame(type=FrameType.REPLICATE, body={"snapshot": True, "alerts": me.alerts.count})
    )
    await _stream_alerts(me, link, framed, FrameType.REPLICATE, cursor_key)


#: What a send on a link that went away raises.
LINK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, FrameError)


async def _heartbeats_and_alerts(
    me: TrafficEnd, link: Link, framed: FramedStream | LineStream, cursor_key: str
) -> None:
    """A sensor's voice: a heartbeat at once and every interval, each alert as it is posted.

    One task for both, not one each: a sensor link is most of a big mesh,
    and a task is memory and scheduling. A new alert ends the wait for the
    next heartbeat (:meth:`AlertBoard.interrupt_on_post`).
    """
    seq = 0
    due = me.clock.now()
    while True:
        if me.clock.now() >= due:
            seq += 1
            await framed.send(
                Frame(
                    type=FrameType.HEARTBEAT,
                    body={"from": me.name, "seq": seq, "at": me.clock.now().isoformat()},
                )
            )
            due = me.clock.now() + dt.timedelta(seconds=me.heartbeat_interval)
        index = link.cursors.get(cursor_key, 0)
        if me.alerts.count > index:
            position, alert = me.alerts.at(index)
            await framed.send(Frame(type=FrameType.ALERT, body=alert))
            link.cursors[cursor_key] = position + 1
            continue
        with me.alerts.interrupt_on_post():
            await me.clock.sleep_until(due)


async def _stream_alerts(
    me: TrafficEnd, link: Link, framed: FramedStream | LineStream, kind: FrameType, cursor_key: str
) -> None:
    while True:
        index = link.cursors.get(cursor_key, 0)
        await me.alerts.wait_beyond(index)
        position, alert = me.alerts.at(index)
        await framed.send(Frame(type=kind, body=alert))
        link.cursors[cursor_key] = position + 1


async def listen(
    me: TrafficEnd,
    link: Link,
    framed: FramedStream | LineStream,
    peer: str,
    greeted: Callable[[], None] | None = None,
) -> str:
    """Receive and count application frames until the peer closes; returns why it ended.

    ``greeted`` is called once the link's awaited first frame (``Link.greeting``) came.
    """
    while True:
        await framed.wait_readable()  # idle links wait here, shallowly
        frame = await framed.receive()
        if frame is None:
            return f"{peer} closed the link"
        if not frame.type.is_application:
            raise FrameError(f"{peer} sent a {frame.type.label} frame on a live link")
        if link.greeting:
            link.greeting = False
            if greeted is not None:
                greeted()
        link.received[me.name] += 1
        me.inbox.add(peer, frame)
        me.events.append(
            MessageDelivered(
                at=me.clock.now(),
                dialer=link.dialer,
                listener=link.listener,
                sender=peer,
                receiver=me.name,
                message=frame.type.label,
                delivered=link.delivered,
            )
        )
        if frame.type is FrameType.ALERT and me.role in (
            Role.MANAGEMENT_CONSOLE,
            Role.HA_CONSOLE,
        ):
            me.alerts.post({**frame.body, "via": peer})
