"""A small HTTP/1.1 server on trio and h11, for the CRL server and the test proxy.

Why h11 and not hypercorn: the CRL server exists to misbehave on cue. It must
stop listening so that connections are *refused* and come back on the same
port (``down``/``up``), hold a request without ever answering (``slow``), and
count requests at the wire. Hypercorn owns its listening sockets and applies its
own keep-alive, read and graceful-shutdown timers, which fight both the faults
and trio's mock clock. h11 is the sans-IO HTTP/1.1 engine hypercorn itself uses;
driving it directly leaves every socket decision here, in about 200 lines.

Theory of operation: :meth:`HttpServer.bind` opens the listening socket
*synchronously* (a stdlib socket handed to trio), so ``up`` returns only once
the kernel accepts connections, and :meth:`HttpServer.unbind` closes it and
cancels every open connection synchronously, so ``down`` holds the moment it
returns. Subclasses answer requests in :meth:`HttpServer.respond`.
"""

from __future__ import annotations

import contextlib
import errno
import http
import logging
import socket as stdlib_socket
import h11
import trio
from attrs import define

from mesh.errors import InputError

__all__ = ["HttpServer", "Request", "Response", "HOLD", "Answer"]

_log = logging.getLogger("mesh.net")

#: Seconds between attempts to accept while accepting fails (out of descriptors).
ACCEPT_BACKOFF = 0.1

#: Seconds for a whole request (head and body), counted from the connection's
#: start or the end of the previous answer: idle and slow clients are closed
#: (408 when part of a request had come), so they cannot hold descriptors.
REQUEST_TIMEOUT = 10.0
#: After a refusal (408, 413, 431, 400): how long and how much is still read.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024

_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


def _accept_failure(exc: OSError) -> tuple[str, str]:
    reason = exc.strerror or str(exc)
    if exc.errno in _CAPACITY_ERRNOS:
        what = "out of memory" if exc.errno in (errno.ENOMEM, errno.ENOBUFS) else "out of file descriptors"
        return f"{what} ({reason})", "waiting for connections to close"
    return f"cannot accept connections ({reason})", f"trying again every {ACCEPT_BACKOFF:g} s"


#: Largest request head plus body we read; CRL clients send a few hundred bytes.
_MAX_REQUEST = 64 * 1024
_RECEIVE_SIZE = 64 * 1024


@define(frozen=True, kw_only=True)
class Request:
    """What a handler sees of one HTTP request."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        """The target without a query string (absolute-form targets keep their URL)."""
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


@define(frozen=True, kw_only=True)
class Response:
    """A whole response; bodies here are small enough to send in one piece."""

    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: tuple[tuple[str, str], ...] = ()


class _TooLarge:
    """What :meth:`HttpServer._read_request` returns for a body over the limit."""


_TOO_LARGE = _TooLarge()
#: A request head over the limit that arrived whole: h11 bounds only an
#: *incomplete* head, so a head read in one large chunk is measured here.
_HEAD_TOO_LARGE = _TooLarge()


class _Hold:
    """Sentinel: accept the request and never answer it (the ``slow`` fault)."""

    def __repr__(self) -> str:
        return "HOLD"


#: Return this from :meth:`HttpServer.respond` to keep the client waiting until
#: it gives up (the connection is held open and drained, never answered).
HOLD = _Hold()

#: What :meth:`HttpServer.respond` returns.
Answer = Response | _Hold

class HttpServer:
    """An HTTP/1.1 server on one address whose listening socket can come and go.

    Run it with ``port = await nursery.start(server.serve)``. ``port=0`` picks
    a free port; a later :meth:`bind` (after :meth:`unbind`) reuses the one
    picked, so URLs stay valid across ``down``/``up``.
    """

    #: Names the server in what it logs.
    description = "HTTP server"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._nursery: trio.Nursery | None = None
        self._listen_scope: trio.CancelScope | None = None
        self._listener: trio.SocketListener | None = None
        self._open = 0
        self._open_changed = trio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and answer until cancelled; reports the bound port to ``nursery.start``."""
        # The socket is opened before the nursery so that a port in use is a
        # plain InputError for the caller, not one wrapped in an ExceptionGroup.
        sock = self._open_socket()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                self._listen_on(sock)
                self.serving()
                task_status.started(self.port)
                await trio.sleep_forever()
            finally:
                self.unbind()
                self._nursery = None

    def serving(self) -> None:
        """Called once the port is known, before readiness is reported; subclasses hook in."""

    # -- the listening socket --

    def bind(self) -> None:
        """Start listening (again) on ``host:port``; returns once connections are accepted."""
        if self._nursery is None:
            raise RuntimeError("HttpServer.bind() needs a running serve()")
        if self._listener is not None:
            return
        self._listen_on(self._open_socket())

    def _open_socket(self) -> stdlib_socket.socket:
        sock = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR so coming back ``up`` on the same port is not
            # blocked by connections of the previous life in TIME_WAIT.
            sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise InputError(
                f"{self.host}:{self.port}",
                f"cannot listen ({exc.strerror or exc})",
                "choose another port or stop what holds this one",
            ) from None
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    def _listen_on(self, sock: stdlib_socket.socket) -> None:
        assert self._nursery is not None
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        scope = trio.CancelScope()
        self._listener = listener
        self._listen_scope = scope
        self._nursery.start_soon(self._accept_loop, listener, scope)

    def unbind(self) -> None:
        """Stop listening and drop every open connection; new connections are refused."""
        listener, scope = self._listener, self._listen_scope
        self._listener = self._listen_scope = None
        if scope is not None:
            scope.cancel()
        if listener is not None:
            # A trio socket's close() is synchronous and wakes the task blocked
            # in accept(), so the port is closed when this returns.
            listener.socket.close()

    async def _accept_loop(self, listener: trio.SocketListener, scope: trio.CancelScope) -> None:
        """Accept until unbound. Failing to accept is never the end of serving.

        Out of file descriptors (or kernel memory), ``accept`` fails until
        some connection closes; returning then left the port listening but
        never answered again. So it waits :data:`ACCEPT_BACKOFF` and tries
        again, and says so once per spell (not once per attempt).
        """
        with scope:
            async with trio.open_nursery() as connections:
                failing = False
                while True:
                    try:
                        stream = await listener.accept()
                    except trio.ClosedResourceError:
                        return  # unbound
                    except OSError as exc:
                        if not failing:
                            failing = True
                            _log.warning("%s on %s:%s: %s; %s", self.description, self.host,
                                         self.port, *_accept_failure(exc))
                        await trio.sleep(ACCEPT_BACKOFF)
                        continue
                    failing = False
                    connections.start_soon(self._connection, stream)

    # -- open connections --

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed."""
        return self._open

    async def wait_connections(self, count: int, *, at_most: bool = False) -> None:
        """Return once ``count`` connections (or, ``at_most``, no more than that) are open."""
        while (self._open > count) if at_most else (self._open < count):
            await self._open_changed.wait()

    def _count_open(self, delta: int) -> None:
        self._open += delta
        self._open_changed.set()
        self._open_changed = trio.Event()

    # -- one connection --

    async def _connection(self, stream: trio.SocketStream) -> None:
        self._count_open(+1)
        try:
            await self._serve_connection(stream)
        except Exception as exc:  # one connection's failure ends that connection alone
            _log.warning("%s on %s:%s: a connection ended on an error: %s",
                         self.description, self.host, self.port, type(exc).__name__)
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            self._count_open(-1)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            while True:
                # Each request, and the wait before it, has REQUEST_TIMEOUT.
                with trio.move_on_after(REQUEST_TIMEOUT) as timer:
                    request = await self._read_request(conn, stream)
                if timer.cancelled_caught:
                    if conn.their_state is not h11.IDLE or conn.trailing_data[0]:
                        await _refuse(stream, 408, b"request timeout\n")
                    return
                if request is _TOO_LARGE:
                    await _refuse(stream, 413, b"request body too large\n")
                    return
                if request is _HEAD_TOO_LARGE:
                    await _refuse(stream, 431, b"request head too large\n")
                    return
                if request is None:
                    return
                assert isinstance(request, Request)
                answer = await self.respond(request)
                if isinstance(answer, _Hold):
                    await _drain(stream)
                    return
                await _send(conn, stream, answer, head_only=request.method == "HEAD")
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            # Not HTTP, or a head over the limit: say so (h11 knows the status).
            status = exc.error_status_hint
            await _refuse(stream, status, b"request head too large\n" if status == 431
                          else b"bad request\n")
        except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _read_request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> Request | _TooLarge | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(_RECEIVE_SIZE)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
                size = len(event.method) + len(event.target) + sum(
                    len(name) + len(value) + 4 for name, value in event.headers
                )
                if size > _MAX_REQUEST:
                    return _HEAD_TOO_LARGE
                declared = dict(event.headers).get(b"content-length", b"")
                if declared.isdigit() and int(declared) > _MAX_REQUEST:
                    return _TOO_LARGE
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_REQUEST:
                    return _TOO_LARGE
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return Request(
                    method=head.method.decode("ascii", "replace"),
                    target=head.target.decode("ascii", "replace"),
                    headers=tuple(
                        (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers
                    ),
                    body=bytes(body),
                )
            else:  # ConnectionClosed, PAUSED
                return None

    async def respond(self, request: Request) -> Answer:
        """Answer one request; subclasses override."""
        return Response(status=404, body=b"not found\n", content_type="text/plain")


#: Bodies up to this size are sent in the same write as the head.
_JOIN_LIMIT = 256 * 1024


async def _send(
    conn: h11.Connection, stream: trio.SocketStream, response: Response, *, head_only: bool
) -> None:
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        *response.headers,
    ]
    try:
        reason = http.HTTPStatus(response.status).phrase.encode("ascii")
    except ValueError:
        reason = b""
    head = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    if not head_only and response.body:
        body = conn.send(h11.Data(data=response.body))
        if len(body) > _JOIN_LIMIT:
            # Sent apart from the head: joining them would copy a 37 MiB CRL on
            # the event loop (about 70 ms of page faults and memcpy here).
            await stream.send_all(head)
            await stream.send_all(body)
            head = b""
        else:
            # A small answer goes out in one write: one system call and one
            # trio checkpoint instead of three, per request, which adds up
            # when thousands of appliances fetch at once.
            head += body
    await stream.send_all(head + conn.send(h11.EndOfMessage()))


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
            431: "Request Header Fields Too Large"}


async def _refuse(stream: trio.SocketStream, status: int, text: bytes) -> None:
    """Answer ``status`` and close, reading on a while so the answer is not lost.

    Closing a socket with unread input makes the kernel send a reset, and a
    reset can discard the answer before the client reads it: a client still
    sending a head or body over the limit saw "connection reset" instead of
    431/413. So: answer, shut our side, then read and discard what the client
    still sends, for at most :data:`LINGER_SECONDS` and :data:`LINGER_BYTES`.
    """
    reason = _REASONS.get(status) or http.HTTPStatus(status).phrase
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n").encode("ascii")
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(head + text)
        await stream.send_eof()
        with trio.move_on_after(LINGER_SECONDS):
            drained = 0
            while drained < LINGER_BYTES:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                drained += len(data)


async def _drain(stream: trio.SocketStream) -> None:
    """Read and discard until the peer closes: holds a request without answering."""
    while True:
        try:
            if not await stream.receive_some(_RECEIVE_SIZE):
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
