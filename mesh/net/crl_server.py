"""The CRL server: a PKI's CRLs over real HTTP on 127.0.0.1, with faults on cue.

Scenarios ask "what happens when the issuing CA's CRL server is down / slow /
answering nonsense?", so every fault switches at runtime with
:meth:`CrlServer.set_fault` and takes effect before the call returns:

- ``ok``: serve the published documents (unknown paths get 404);
- ``down``: stop listening, connections are refused; ``ok`` (or any other
  fault) binds again on the same port;
- ``slow``: accept and read the request, never answer;
- ``garbage``: 200 with random bytes; ``html``: 200 with an HTML page;
- ``http-404`` / ``http-500``: that status;
- ``stale`` / ``wrong-key``: serve *another version* of each document, one the
  owner supplied with ``set_documents(..., variant=Fault.STALE)``. The server
  never makes CRLs itself (it holds no CA keys and no clock); whoever builds the
  PKI builds a CRL whose nextUpdate has passed, or one signed by another key,
  and stores it here. Switching to such a fault without a variant for a served
  path is a programming error (``ValueError``), not a silent 404.

A fault applies to every path, or to one path with ``set_fault(fault, path=)``
(``down`` is always whole-server; a whole-server fault, ``ok`` included,
clears the per-path ones). Requests are counted per path at the wire,
whatever the fault, which is what the single-flight test and the benchmarks read.
"""

from __future__ import annotations

import enum
import os
from collections import Counter
from typing import Mapping

import trio

from mesh.net.http_server import HOLD, Answer, HttpServer, Request, Response

__all__ = ["CrlServer", "Fault"]

_CRL_TYPE = "application/pkix-crl"
_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
    b"<body><h1>Sign in to continue</h1><form method=post><input name=user></form>"
    b"</body></html>\n"
)


class Fault(enum.Enum):
    """How the server misbehaves; values are the names scenarios use."""

    OK = "ok"
    DOWN = "down"
    SLOW = "slow"
    GARBAGE = "garbage"
    HTTP_404 = "http-404"
    HTTP_500 = "http-500"
    HTML = "html"
    STALE = "stale"
    WRONG_KEY = "wrong-key"

    @classmethod
    def parse(cls, value: Fault | str) -> Fault:
        if isinstance(value, Fault):
            return value
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(f.value for f in cls)
            raise ValueError(f"unknown CRL server fault {value!r}; known faults: {known}") from None


#: Faults that serve an owner-supplied version of each document.
_VARIANTS = frozenset({Fault.STALE, Fault.WRONG_KEY})


class CrlServer(HttpServer):
    """Serves ``{path: bytes}`` documents; ``await nursery.start(server.serve)`` -> port."""

    description = "CRL server"

    def __init__(
        self,
        documents: Mapping[str, bytes] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        garbage_size: int = 2048,
    ) -> None:
        super().__init__(host=host, port=port)
        self._documents: dict[str, bytes] = {}
        self._variants: dict[Fault, dict[str, bytes]] = {f: {} for f in _VARIANTS}
        self._faults: dict[str | None, Fault] = {None: Fault.OK}
        self._garbage_size = garbage_size
        self._counts: Counter[str] = Counter()
        self._changed = trio.Event()
        for path, data in (documents or {}).items():
            self.publish(path, data)

    # -- documents --

    def publish(self, path: str, data: bytes) -> None:
        """Serve ``data`` at ``path`` from now on (replacing what was there)."""
        self._documents[_norm(path)] = bytes(data)

    def set_documents(
        self, documents: Mapping[str, bytes], *, variant: Fault | str = Fault.OK
    ) -> None:
        """Publish several documents, or store the versions a ``stale``/``wrong-key`` fault serves."""
        fault = Fault.parse(variant)
        if fault is Fault.OK:
            for path, data in documents.items():
                self.publish(path, data)
            return
        if fault not in _VARIANTS:
            raise ValueError(f"fault {fault.value!r} serves no documents of its own")
        for path, data in documents.items():
            self._variants[fault][_norm(path)] = bytes(data)

    def documents(self) -> dict[str, bytes]:
        """{path: bytes} of what ``ok`` serves now (a copy)."""
        return dict(self._documents)

    @property
    def paths(self) -> list[str]:
        return sorted(self._documents)

    def url(self, path: str) -> str:
        return f"{self.base_url}{_norm(path)}"

    # -- faults --

    def set_fault(self, fault: Fault | str, *, path: str | None = None) -> None:
        """Switch a fault on (``ok`` switches back); effective when this returns."""
        fault = Fault.parse(fault)
        if fault is Fault.DOWN and path is not None:
            raise ValueError("the 'down' fault stops the whole server; it takes no path")
        if fault in _VARIANTS:
            paths = [_norm(path)] if path is not None else self.paths
            missing = [p for p in paths if p not in self._variants[fault]]
            if missing:
                raise ValueError(
                    f"fault {fault.value!r} has no document for {', '.join(missing)}; "
                    f"store one with set_documents(..., variant={fault.value!r}) first"
                )
        if path is not None:
            self._faults[_norm(path)] = fault
        else:
            self._faults = {None: fault}  # a whole-server fault replaces per-path ones
        if self._faults[None] is Fault.DOWN:
            self.unbind()
        elif not self.listening and self._nursery is not None:
            self.bind()

    def serving(self) -> None:
        # Started while ``down``: the port is picked (so URLs can be made) but
        # nothing listens until the fault is lifted.
        if self._faults[None] is Fault.DOWN:
            self.unbind()

    def fault(self, path: str | None = None) -> Fault:
        if path is not None and _norm(path) in self._faults:
            return self._faults[_norm(path)]
        return self._faults[None]

    # -- counting --

    def requests(self, path: str | None = None) -> int:
        """Requests received for ``path`` (all paths when None), whatever was answered."""
        if path is None:
            return sum(self._counts.values())
        return self._counts[_norm(path)]

    def reset_counts(self) -> None:
        self._counts.clear()

    async def wait_requests(self, count: int, path: str | None = None) -> None:
        """Return once at least ``count`` requests have arrived (readiness without sleeps)."""
        while self.requests(path) < count:
            await self._changed.wait()

    # -- answering --

    async def respond(self, request: Request) -> Answer:
        path = _norm(request.path)
        self._counts[path] += 1
        self._changed.set()
        self._changed = trio.Event()
        if request.method not in ("GET", "HEAD"):
            return Response(status=405, body=b"method not allowed\n", content_type="text/plain",
                            headers=(("Allow", "GET, HEAD"),))
        fault = self.fault(path)
        if fault is Fault.SLOW:
            return HOLD
        if fault is Fault.HTTP_404:
            return _not_found()
        if fault is Fault.HTTP_500:
            return Response(status=500, body=b"internal server error\n", content_type="text/plain")
        if fault is Fault.GARBAGE:
            return Response(status=200, body=os.urandom(self._garbage_size), content_type=_CRL_TYPE)
        if fault is Fault.HTML:
            return Response(status=200, body=_HTML, content_type="text/html; charset=utf-8")
        documents = self._variants[fault] if fault in _VARIANTS else self._documents
        data = documents.get(path)
        if data is None:
            return _not_found()
        return Response(status=200, body=data, content_type=_CRL_TYPE)


def _norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _not_found() -> Response:
    return Response(status=404, body=b"not found\n", content_type="text/plain")
