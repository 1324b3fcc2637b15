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
"""

from __future__ import annotations

import enum
from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio

from mesh.appliances.link_state import Link
from mesh.appliances.spec import Role
from mesh.events import MessageDelivered
from mesh.net.framing import Frame, FrameError, FramedStream, FrameType, LineStream

if TYPE_CHECKING:
    from mesh.appliances.appliance import Appliance

__all__ = ["AlertBoard", "Plan", "plan_for", "speak", "voices", "listen", "LINK_ERRORS"]


class AlertBoard:
    """An appliance's alerts, in order; wakes speakers when one is added."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self._changed = trio.Event()

    def post(self, alert: dict[str, Any]) -> None:
        self.alerts.append(dict(alert))
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_beyond(self, index: int) -> None:
        while len(self.alerts) <= index:
            await self._changed.wait()


class Plan(enum.Enum):
    """What one end sends on one link."""

    NOTHING = "nothing"
    HEARTBEATS_AND_ALERTS = "heartbeats-and-alerts"
    REPLICATE = "replicate"
    FORWARD = "forward"


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
    me: Appliance, link: Link, framed: FramedStream | LineStream, plan: Plan
) -> list[Callable[[], Awaitable[None]]]:
    """What ``plan`` sends, as loops to run side by side; none for ``Plan.NOTHING``.

    The engine runs each as a task of the link's own nursery: no nursery of
    their own, and no task at all on an end that says nothing (a console's
    end of every sensor link). Each loop raises what :func:`speak` does.
    """
    cursor_key = me.name
    if plan is Plan.NOTHING:
        return []
    if plan is Plan.HEARTBEATS_AND_ALERTS:
        return [
            partial(_heartbeats, me, framed),
            partial(_stream_alerts, me, link, framed, FrameType.ALERT, cursor_key),
        ]
    if plan is Plan.REPLICATE:
        return [partial(_replicate, me, link, framed, cursor_key)]
    return [partial(_stream_alerts, me, link, framed, FrameType.FORWARD, cursor_key)]


async def _replicate(
    me: Appliance, link: Link, framed: FramedStream | LineStream, cursor_key: str
) -> None:
    await framed.send(
        Frame(type=FrameType.REPLICATE, body={"snapshot": True, "alerts": len(me.alerts.alerts)})
    )
    await _stream_alerts(me, link, framed, FrameType.REPLICATE, cursor_key)


async def speak(me: Appliance, link: Link, framed: FramedStream | LineStream, plan: Plan) -> None:
    """Send what ``plan`` says until cancelled (the link broke or the appliance stopped).

    Raises:
        trio.BrokenResourceError, trio.ClosedResourceError, FrameError: the
            link went away under a send (never an ExceptionGroup of them).
    """
    if plan is Plan.NOTHING:
        await trio.sleep_forever()
    cursor_key = me.name
    if plan is Plan.HEARTBEATS_AND_ALERTS:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_heartbeats, me, framed)
                await _stream_alerts(me, link, framed, FrameType.ALERT, cursor_key)
        except BaseExceptionGroup as group:
            # The nursery wraps what a send raised; callers handle a broken
            # link as the plain error every other plan raises.
            error = _link_error(group)
            if error is None:
                raise
            raise error from None
    elif plan is Plan.REPLICATE:
        await _replicate(me, link, framed, cursor_key)
    elif plan is Plan.FORWARD:
        await _stream_alerts(me, link, framed, FrameType.FORWARD, cursor_key)


#: What a send on a link that went away raises.
LINK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, FrameError)


def _link_error(group: BaseExceptionGroup) -> BaseException | None:
    """The first link error in ``group`` if that is all it holds, else None."""
    matched, rest = group.split(LINK_ERRORS)
    if matched is None or rest is not None:
        return None
    while isinstance(matched, BaseExceptionGroup):
        matched = matched.exceptions[0]
    return matched


async def _heartbeats(me: Appliance, framed: FramedStream | LineStream) -> None:
    seq = 0
    while True:
        seq += 1
        await framed.send(
            Frame(
                type=FrameType.HEARTBEAT,
                body={"from": me.name, "seq": seq, "at": me.clock.now().isoformat()},
            )
        )
        await me.clock.sleep(me.spec.heartbeat_interval, kickable=False)


async def _stream_alerts(
    me: Appliance, link: Link, framed: FramedStream | LineStream, kind: FrameType, cursor_key: str
) -> None:
    while True:
        index = link.cursors.get(cursor_key, 0)
        await me.alerts.wait_beyond(index)
        alert = me.alerts.alerts[index]
        await framed.send(Frame(type=kind, body=alert))
        link.cursors[cursor_key] = index + 1


async def listen(me: Appliance, link: Link, framed: FramedStream | LineStream, peer: str) -> str:
    """Receive and count application frames until the peer closes; returns why it ended."""
    while True:
        frame = await framed.receive()
        if frame is None:
            return f"{peer} closed the link"
        if not frame.type.is_application:
            raise FrameError(f"{peer} sent a {frame.type.label} frame on a live link")
        link.received[me.name] += 1
        me.inbox.append((peer, frame))
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
