"""Serving one appliance's console over HTTPS (hypercorn's HTTP/1.1, our connections).

``await nursery.start(serve_console, backend)`` binds 127.0.0.1 (port 0 picks
a free one), starts answering, and reports the bound port; cancelling the
nursery stops it. Nothing changes state without the console's credential
(:class:`mesh.web.auth.ConsoleAuth`, given by the caller, which also says
where its token file is). The certificate follows the appliance's identity at every
new connection (see :mod:`mesh.web.tls`): no restart after an upload.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import socket
import ssl

import trio
from attrs import define
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config

from mesh.errors import InputError
from mesh.validation.expiry import DEFAULT_EXPIRY_WINDOW
from mesh.web.api import build_app
from mesh.web.auth import ConsoleAuth, is_loopback
from mesh.web.backend import ConsoleBackend
from mesh.web.connection import serve_https
from mesh.web.tls import IdentityContexts

__all__ = ["ConsoleAddress", "serve_console"]


@define(frozen=True, kw_only=True)
class ConsoleAddress:
    """Where a console answers."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class _ConsoleConfig(Config):
    """hypercorn's Config with our own, swapping, TLS context."""

    def __init__(self, contexts: IdentityContexts) -> None:
        super().__init__()
        self._contexts = contexts

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._contexts.context()

    @property
    def ssl_enabled(self) -> bool:
        return True


def _bind(host: str, port: int, where: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(where, f"port {port} on {host} is already in use",
                             "choose another port, or 0 to pick a free one") from None
        raise InputError(where, f"cannot listen on {host}:{port} ({exc.strerror})",
                         "use an address of this machine, such as 127.0.0.1") from None
    return sock


async def serve_console(
    backend: ConsoleBackend,
    *,
    auth: ConsoleAuth,
    host: str = "127.0.0.1",
    port: int = 0,
    expiry_window: dt.timedelta = DEFAULT_EXPIRY_WINDOW,
    where: str = "console port",
    task_status: trio.TaskStatus[ConsoleAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``backend``'s REST API and web console over HTTPS until cancelled.

    Args:
        auth: the console's token and sessions; state changes need them.
        host, port: where to listen; port 0 picks a free port.
        expiry_window: certificates this close to their end are flagged.
        where: names the setting in the one-line error when the port is taken.
        task_status: started with the :class:`ConsoleAddress` once listening.

    Raises:
        InputError: the port is in use or the address is not this machine's.
    """
    contexts = IdentityContexts(
        backend.identity, lambda: (*backend.trust_roots(), *auth.operator_cas))
    contexts.context()  # fail here, not at the first handshake, if the identity is unusable
    config = _ConsoleConfig(contexts)
    config.accesslog = None
    # Failures inside a request reach the "mesh.web" logger (never bodies:
    # uploads carry keys and passphrases, and nothing here logs a request).
    config.errorlog = logging.getLogger("mesh.web")
    config.graceful_timeout = 1.0
    sock = _bind(host, port, where)
    bound = sock.getsockname()
    # Off loopback, other machines reach the console: reads need the credential too.
    app = build_app(backend, auth=auth, reads_open=is_loopback(bound[0]),
                    expiry_window=expiry_window)
    await serve_https(
        # starlette types ASGI messages as MutableMappings, hypercorn as TypedDicts
        ASGIWrapper(app),  # type: ignore[arg-type]
        config, sock,
        task_status=_Relay(task_status, ConsoleAddress(host=bound[0], port=bound[1])),
    )


class _Relay:
    """Passes the server's 'started' on as our :class:`ConsoleAddress`."""

    def __init__(self, outer: trio.TaskStatus[ConsoleAddress], address: ConsoleAddress) -> None:
        self._outer = outer
        self._address = address

    def started(self, value: object = None) -> None:
        self._outer.started(self._address)
