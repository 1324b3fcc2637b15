"""The console's HTTPS connections: HTTP/1.1 only, and each one contained.

Why this exists: hypercorn's ``worker_serve`` runs every connection in one
nursery and lets any exception a connection raises climb into it. One
request that trips a bug in hypercorn's protocol code (0.18's HTTP/2 raises
``KeyError`` on a body sent after a 405) then ends the console, and with it
the node, or every console and the mesh under ``mesh console``. Here each
connection runs inside its own ``except*``: whatever it raises ends that
connection alone and is logged in one line (the exception's type, never
request content); cancellation still passes through.

Only HTTP/1.1 is spoken. ALPN offers nothing else (see :mod:`mesh.web.tls`),
and a client that starts HTTP/2 anyway (the prior-knowledge preface, or an
``Upgrade: h2c`` request) has its connection closed instead of being handed
to hypercorn's HTTP/2 code.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState
from hypercorn.utils import parse_socket_addr

__all__ = ["serve_https", "Http11Connection"]

_log = logging.getLogger("mesh.web")


class _NotHttp11(Exception):
    """The client started HTTP/2 on a connection that speaks HTTP/1.1 only."""


class _Http11Only(ProtocolWrapper):
    """hypercorn's protocol wrapper without its switches to HTTP/2."""

    async def handle(self, event: Any) -> None:
        try:
            return await self.protocol.handle(event)
        except (H2ProtocolAssumedError, H2CProtocolRequiredError):
            raise _NotHttp11 from None


class Http11Connection(TCPServer):
    """One accepted TLS connection, served as HTTP/1.1 until it ends.

    ``run`` is hypercorn's ``TCPServer.run`` with the HTTP/1.1-only wrapper,
    inside a containment that nothing but cancellation crosses.
    """

    async def run(self) -> None:
        try:
            await self._serve()
        except* _NotHttp11:
            pass
        except* Exception as group:
            _log.warning("a console connection ended on an error: %s",
                         ", ".join(sorted({type(e).__name__ for e in _leaves(group)})))

    async def _serve(self) -> None:
        try:
            with trio.fail_after(self.config.ssl_handshake_timeout):
                await self.stream.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError):
            await self.stream.aclose()
            return
        sock = self.stream.transport_stream.socket
        try:
            async with TaskGroup() as task_group:
                self._task_group = task_group
                self.protocol = _Http11Only(
                    cast(AppWrapper, _WithTls(self.app, _tls_extension(self.stream))), self.config, self.context, task_group,
                    ConnectionState(self.state), True,
                    parse_socket_addr(sock.family, sock.getpeername()),
                    parse_socket_addr(sock.family, sock.getsockname()),
                    self.protocol_send, "http/1.1",
                )
                await self.protocol.initiate()
                await self.idle_task.restart(self._task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()


def _tls_extension(stream: Any) -> dict[str, Any]:
    """The ASGI TLS extension's ``client_cert_chain`` for this connection (PEM strings).

    hypercorn gives the app nothing of the handshake; the credential check
    (:func:`mesh.web.auth.peer_certificate`) reads the client's certificate
    from here. The stdlib hands out the client's own certificate only, not
    the rest of what it sent: operator certificates come straight from their CA.
    """
    try:
        der = stream.getpeercert(binary_form=True)
    except (ValueError, AttributeError):
        der = None
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {"client_cert_chain": chain, "client_cert_name": None, "client_cert_error": None}


class _WithTls:
    """The app, with the connection's TLS facts in every request's scope."""

    def __init__(self, app: Any, tls: dict[str, Any]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(self, scope: Any, *args: Any) -> None:
        scope = dict(scope)
        scope["extensions"] = {**(scope.get("extensions") or {}), "tls": self._tls}
        await self._app(scope, *args)


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


async def serve_https(
    app: AppWrapper,
    config: Config,
    sock: socket.socket,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept TLS connections on ``sock`` and serve ``app`` on each until cancelled.

    The accept loop is trio's ``serve_listeners``: out of file descriptors it
    waits and tries again instead of stopping.
    """
    ssl_context = config.create_ssl_context()
    if ssl_context is None:
        raise ValueError("serve_https needs a config that makes a TLS context")
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    context = WorkerContext(None)
    host, port = sock.getsockname()[:2]

    async def one(transport: trio.SocketStream) -> None:
        if not await _starts_tls(transport, config.ssl_handshake_timeout):
            await _use_https(transport, host, port)
            return
        stream = trio.SSLStream(transport, ssl_context, server_side=True, https_compatible=True)
        await Http11Connection(app, config, context, {}, stream).run()

    await trio.serve_listeners(one, [listener], task_status=_Started(task_status))


#: The first byte of every TLS connection: a handshake record.
_TLS_HANDSHAKE = 0x16


async def _starts_tls(transport: trio.SocketStream, timeout: float) -> bool:
    """Does the client open with a TLS record? (Peeked: the bytes stay for TLS.)"""
    with trio.move_on_after(timeout):
        try:
            first = await transport.socket.recv(1, socket.MSG_PEEK)
        except OSError:
            return True  # let the TLS layer meet the broken connection
        return not first or first[0] == _TLS_HANDSHAKE
    return True


async def _use_https(transport: trio.SocketStream, host: str, port: int) -> None:
    """Plain HTTP on the HTTPS port: one 400 that says what to type instead."""
    body = f"this port speaks HTTPS: use https://{host}:{port}/\n".encode()
    head = (
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await transport.send_all(head + body)
        await transport.send_eof()
        with trio.move_on_after(1):  # read what the client sent, so no reset hides the answer
            while await transport.receive_some(65536):
                pass
    await transport.aclose()


class _Started:
    """Turns serve_listeners' 'started' (the listeners) into a plain one."""

    def __init__(self, outer: trio.TaskStatus[None]) -> None:
        self._outer = outer

    def started(self, value: object = None) -> None:
        self._outer.started()
