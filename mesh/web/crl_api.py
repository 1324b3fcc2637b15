"""The control API of ``mesh crl serve``: publish CRLs and switch faults over HTTPS.

Why: a scenario driver reaching a fleet it did not start (``mesh run
--inventory``) must still revoke (publish the CA's new CRL) and take the CRL
server down and up. It does so here, with the same credential rules as an
appliance's console (:mod:`mesh.web.auth`: a token from a 0600 file; reads
open on loopback only), on the same server stack (:func:`mesh.web.server.serve_api`).

Routes:

``GET /api/v1/crls``
    200 ``{"fault": "ok", "documents": [{"path", "bytes", "sha256"}]}``:
    what is served now (the fault in force for the whole server).
``POST /api/v1/crls``
    JSON ``{"documents": {"/contoso-root-ca.crl": "<base64 of the DER or PEM
    CRL>", ...}}``: those paths serve these CRLs from now on (other paths keep
    theirs). Every document must be a CRL: otherwise 400 naming the path, and
    nothing is published. 200 ``{"published": [paths]}``.
``PUT /api/v1/crls/<path>``
    The body is one CRL file (DER or PEM; ``curl --data-binary @x.crl``): the
    same for one path. 200 ``{"published": ["/<path>"]}``.
``PUT /api/v1/fault``
    JSON ``{"fault": "down"}``: the CRL port stops listening (connections
    refused; this API keeps answering); ``"up"`` (or ``"ok"``) serves again;
    ``"slow"`` never answers, ``"garbage"`` answers random bytes,
    ``"http-404"``, ``"http-500"``, ``"html"`` as named
    (:class:`mesh.net.crl_server.Fault`). 200 ``{"fault": ...}``; 400 for
    another name or a fault that needs documents the server does not have.

Every change needs ``Authorization: Bearer <token>`` or an operator client
certificate (``mesh crl serve --operator-ca``), judged by
:meth:`mesh.web.auth.ConsoleAuth.check` as on a console: without one 401
``unauthorized``, with a wrong one 403 ``forbidden``; nothing changes and an
``api-denied`` event (``appliance`` = ``crl-server``) is recorded. A request
naming another ``Origin`` is refused (403 ``forbidden_origin``): browsers
have no business here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from typing import Awaitable, Callable

from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mesh.net.crl_server import CrlServer, Fault
from mesh.printable import printable
from mesh.web.auth import ConsoleAuth

__all__ = ["CRL_SERVER_NAME", "MAX_CRL_BYTES", "build_crl_app"]

#: What ``api-denied`` events of the CRL server name as the appliance.
CRL_SERVER_NAME = "crl-server"

#: Largest CRL one request may publish (a CA with a million revocations: ~40 MB).
MAX_CRL_BYTES = 64 * 1024 * 1024

#: Largest ``PUT /api/v1/fault`` body.
MAX_FAULT_BYTES = 1024

_ALIASES = {"up": Fault.OK.value}

_Handler = Callable[[Request], Awaitable[Response]]


def _bad(message: str, status: int = 400, code: str = "bad_request") -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


async def _body(request: Request, cap: int) -> bytes | None:
    """The body, or None when it is larger than ``cap`` (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        return None
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > cap:
            return None
    return bytes(data)


def _crl_der(data: bytes, where: str) -> bytes | str:
    """The DER bytes of a CRL given as DER or PEM, or the message refusing it."""
    try:
        crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN")
               else x509.load_der_x509_crl(data))
    except ValueError:
        return f"{where} is not a CRL (DER or PEM); publish the file `mesh pki crl` writes"
    from cryptography.hazmat.primitives.serialization import Encoding

    return crl.public_bytes(Encoding.DER)


def build_crl_app(server: CrlServer, *, auth: ConsoleAuth, now: Callable[[], dt.datetime],
                  reads_open: bool = True) -> Starlette:
    """The ASGI app of ``server``'s control API (see the module docstring).

    ``now``: the instant ``api-denied`` events carry (the wall clock: a CRL
    server has no emulated one).
    """

    def guarded(handler: _Handler, *, changes: bool) -> _Handler:
        if not changes and reads_open:
            return handler

        async def check(request: Request) -> Response:
            origins = request.headers.getlist("origin")
            if changes and origins:
                shown = printable(origins[0], 100)
                return _bad(f"requests from {shown} may not change the CRL server",
                            403, "forbidden_origin")
            # The consoles' one judgement: a bearer token or an operator certificate.
            denial = auth.check(request, appliance=CRL_SERVER_NAME, at=now(), changes=changes,
                                cookie="mesh-crl-session")
            if denial is not None:
                headers = {"WWW-Authenticate": "Bearer"} if denial.status == 401 else {}
                return JSONResponse({"code": denial.code, "message": denial.message},
                                    status_code=denial.status, headers=headers)
            return await handler(request)

        return check

    async def listing(request: Request) -> Response:
        documents = server.documents()
        return JSONResponse({
            "fault": server.fault().value,
            "documents": [{"path": path, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}
                          for path, data in sorted(documents.items())],
        }, headers={"Cache-Control": "no-store"})

    async def publish_many(request: Request) -> Response:
        usage = 'send {"documents": {"/path.crl": "<base64 CRL>"}}'
        raw = await _body(request, MAX_CRL_BYTES * 2)
        if raw is None:
            return _bad(f"the body is larger than {MAX_CRL_BYTES * 2 // 2**20} MiB; "
                        "publish fewer CRLs per request", 413, "too_large")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return _bad(f"the body is not JSON; {usage}")
        documents = body.get("documents") if isinstance(body, dict) else None
        if not isinstance(documents, dict) or not documents:
            return _bad(usage)
        ready: dict[str, bytes] = {}
        for path, encoded in documents.items():
            where = f"documents[{printable(str(path), 100)!r}]"
            if not path.startswith("/") or not isinstance(encoded, str):
                return _bad(f"{where}: give a path starting with / and a base64 string; {usage}")
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return _bad(f"{where} is not base64; {usage}")
            der = _crl_der(data, where)
            if isinstance(der, str):
                return _bad(der)
            ready[path] = der
        server.set_documents(ready)
        return JSONResponse({"published": sorted(ready)})

    async def publish_one(request: Request) -> Response:
        path = "/" + request.path_params["path"]
        data = await _body(request, MAX_CRL_BYTES)
        if data is None:
            return _bad(f"the body is larger than {MAX_CRL_BYTES // 2**20} MiB", 413, "too_large")
        der = _crl_der(data, f"the body for {printable(path, 100)}")
        if isinstance(der, str):
            return _bad(der)
        server.set_documents({path: der})
        return JSONResponse({"published": [path]})

    async def fault(request: Request) -> Response:
        known = ", ".join(["up", *(f.value for f in Fault)])
        usage = f'send {{"fault": NAME}} with NAME one of {known}'
        raw = await _body(request, MAX_FAULT_BYTES)
        if raw is None:
            return _bad(f"the body is larger than {MAX_FAULT_BYTES} bytes; {usage}", 413, "too_large")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return _bad(f"the body is not JSON; {usage}")
        name = body.get("fault") if isinstance(body, dict) and set(body) == {"fault"} else None
        if not isinstance(name, str):
            return _bad(usage)
        try:
            server.set_fault(_ALIASES.get(name, name))
        except ValueError as exc:
            return _bad(f"{exc}; {usage}" if "unknown" in str(exc) else str(exc))
        return JSONResponse({"fault": server.fault().value})

    routes = [
        Route("/api/v1/crls", guarded(listing, changes=False), methods=["GET"]),
        Route("/api/v1/crls", guarded(publish_many, changes=True), methods=["POST"]),
        Route("/api/v1/crls/{path:path}", guarded(publish_one, changes=True), methods=["PUT"]),
        Route("/api/v1/fault", guarded(fault, changes=True), methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    return app

