"""Each console connection is contained: what one raises ends that one alone.

hypercorn's own connection code lets anything but ``OSError`` escape into the
nursery that serves every connection. The fault here is injected through the
server's configuration: the first read of ``read_timeout`` (made inside the
first connection's receive loop) raises ``KeyError``, as hypercorn 0.18's
HTTP/2 code did on a real request.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl

import httpx
import pytest
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config

from mesh.pki.issue import self_signed_leaf
from mesh.web.connection import serve_https
from mesh.web.tls import build_context


async def _app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


class _FaultyConfig(Config):
    """A config whose first ``read_timeout`` raises inside a connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context
        self.faults = 1

    def create_ssl_context(self) -> ssl.SSLContext:  # type: ignore[override]
        return self._context

    @property
    def read_timeout(self) -> None:  # type: ignore[override]
        if self.faults:
            self.faults -= 1
            raise KeyError(1)
        return None

    @read_timeout.setter
    def read_timeout(self, value: object) -> None:
        pass


@pytest.fixture
async def url(nursery, keys):
    issued = self_signed_leaf("probe.contoso.test", key=keys(2048),
                              not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    config = _FaultyConfig(build_context(issued))
    config.accesslog = None
    config.errorlog = logging.getLogger("mesh.web")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    await nursery.start(serve_https, ASGIWrapper(_app), config, sock)
    return f"https://127.0.0.1:{port}"


async def test_a_connection_that_raises_ends_alone(url, caplog):
    async with httpx.AsyncClient(base_url=url, verify=False, timeout=10) as client:
        # Closed mid-request: an EOF or a reset, whichever the kernel reports.
        with pytest.raises(httpx.TransportError):
            await client.get("/first")
    async with httpx.AsyncClient(base_url=url, verify=False, timeout=10) as client:
        for _ in range(3):
            answer = await client.get("/next")
            assert (answer.status_code, answer.text) == (200, "ok")
    ended = [r.getMessage() for r in caplog.records if r.name == "mesh.web"]
    assert ended == ["a console connection ended on an error: KeyError"]
