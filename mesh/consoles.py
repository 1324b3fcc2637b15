"""Turning an appliance's REST API and web console on, and announcing where it answers.

The API and the page live in :mod:`mesh.web`; this module is the small piece
``mesh node`` and the scenario runner share to switch them on: which roles
have a console at all, and the ``api-listening`` event that tells a person (or
the process that started a node) the URL, as one JSON line among the
appliance's other events.

Sensors and consoles serve an API, as the source document's appliances do.
Forwarding targets are third-party servers (a SIEM, a syslog receiver) that
only take forwarded alerts: they have none.

:mod:`mesh.web` (hypercorn, starlette) is imported only when a console is
actually opened, so an appliance without one does not pay for it.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import TYPE_CHECKING, Callable

import trio

from mesh.eventlog import EventLog
from mesh.events import ApiListening
from mesh.roles import Role

if TYPE_CHECKING:  # mesh.web is imported only when a console opens
    from mesh.web.backend import ConsoleBackend

__all__ = ["CONSOLE_ROLES", "ApiListening", "has_console", "open_console"]

#: Roles whose appliances serve a REST API and web console.
CONSOLE_ROLES = ("sensor", "management-console", "ha-console")


def has_console(role: Role | str) -> bool:
    """True for sensors and (HA) management consoles; ``role`` is a Role or its value."""
    return (role.value if isinstance(role, Role) else role) in CONSOLE_ROLES


async def open_console(
    nursery: trio.Nursery,
    backend: ConsoleBackend,
    *,
    events: EventLog,
    now: Callable[[], dt.datetime],
    host: str = "127.0.0.1",
    port: int = 0,
    where: str = "api port",
) -> ApiListening:
    """Serve ``backend``'s console in ``nursery`` and record an ``api-listening`` event.

    Args:
        backend: a :class:`mesh.web.ConsoleBackend` (``ApplianceConsole``,
            ``MeshConsole``); its appliance must have started (it presents the
            appliance's certificate, which a first start may only now have made).
        events: where the ``api-listening`` event goes.
        now: the emulated clock, for the event's instant.
        host, port: where to listen; port 0 picks a free one.
        where: names the setting in the one-line error when the port is taken.

    Returns:
        The event recorded, whose ``url`` is where the console answers.

    Raises:
        InputError: the port is in use or the address is not this machine's.
    """
    from mesh.web.server import serve_console

    address = await nursery.start(
        partial(serve_console, backend, host=host, port=port, where=where)
    )
    event = ApiListening(at=now(), appliance=backend.name, role=backend.role, url=address.url)
    events.append(event)
    return event
