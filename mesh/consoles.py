"""Turning an appliance's REST API and web console on, and announcing where it answers.

The API and the page live in :mod:`mesh.web`; this module is the small piece
``mesh node`` and the scenario runner share to switch them on: which roles
have a console at all, and the ``api-listening`` event that tells a person (or
the process that started a node) the URL, as one JSON line among the
appliance's other events, and the console's token file.

Every console makes its own random token when it opens and writes it to
``token_file`` (0600, atomically), or uses the token already there (a mounted
secret, say): whoever can read that file may change the appliance through the
console (:mod:`mesh.web.auth`). Operator client certificates (``operator_ca``)
and an admin password (``admin_password_hash``) are the other credentials.
The event names the file, never the token; a refused request becomes an
``api-denied`` event in the same stream.

Sensors and consoles serve an API, as the source document's appliances do.
Forwarding targets are third-party servers (a SIEM, a syslog receiver) that
only take forwarded alerts: they have none.

:mod:`mesh.web` (hypercorn, starlette) is imported only when a console is
actually opened, so an appliance without one does not pay for it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import trio

from mesh.eventlog import EventLog
from mesh.events import ApiListening
from mesh.roles import Role

if TYPE_CHECKING:  # mesh.web is imported only when a console opens
    from cryptography import x509

    from mesh.password_hash import PasswordHash
    from mesh.web.backend import ConsoleBackend

__all__ = ["CONSOLE_ROLES", "ApiListening", "has_console", "open_console", "private_folder"]

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
    token_file: Path,
    operator_cas: tuple[x509.Certificate, ...] = (),
    admin_password: PasswordHash | None = None,
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
        token_file: where the console's new token is written (0600); its
            folder must exist and should be private to this user. When it
            already holds a token (0600 or 0400), that token is used.
        operator_cas: the CAs whose client certificates may change the appliance.
        admin_password: the admin password's hash, for the page's sign-in.
        host, port: where to listen; port 0 picks a free one.
        where: names the setting in the one-line error when the port is taken.

    Returns:
        The event recorded, whose ``url`` is where the console answers.

    Raises:
        InputError: the port is in use, the address is not this machine's, or
            the token file cannot be written.
    """
    from mesh.web.auth import ConsoleAuth, console_token
    from mesh.web.server import serve_console

    auth = ConsoleAuth(token=console_token(token_file), token_file=token_file,
                       record=events.append, operator_cas=operator_cas,
                       admin_password=admin_password)
    address = await nursery.start(
        partial(serve_console, backend, auth=auth, host=host, port=port, where=where)
    )
    event = ApiListening(at=now(), appliance=backend.name, role=backend.role, url=address.url,
                         token_file=str(token_file))
    events.append(event)
    return event


def private_folder(nursery: trio.Nursery) -> Path:
    """A new folder only this user can enter (0700), removed when ``nursery`` ends.

    For the token files of consoles that have no folder of their own (an
    in-process scenario run): they live as long as the run.
    """
    folder = Path(tempfile.mkdtemp(prefix="mesh-consoles-"))

    async def remove_at_end() -> None:
        try:
            await trio.sleep_forever()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    nursery.start_soon(remove_at_end)
    return folder
