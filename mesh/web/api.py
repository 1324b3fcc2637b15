"""The REST API and the web page of one appliance, as a Starlette ASGI app.

Routes (the API's contract; see ``mesh.web.status`` for the status shape):

``GET /api/v1/status``
    200, the status document.
``POST /api/v1/certificate``
    multipart form: ``crt`` and ``key`` files, optional ``chain`` file and
    ``passphrase`` field. 200 ``{"accepted": true, "certificate": {...}}``
    once the new certificate is in use; 422 ``{"code", "message", "detail"}``
    with the exact operator message when the upload-time check refuses it;
    400 ``{"code": "bad_request", "message"}`` for a malformed request or
    files that are not certificates/keys at all.
``PUT /api/v1/validation``
    JSON ``{"enabled": true|false}``; 200 ``{"enabled": ...}``; 400 otherwise.
``POST /api/v1/crls/refresh``
    no body. The appliance refetches its cached CRLs (which it otherwise
    keeps until their nextUpdate, as real appliances do) and judges every
    live link afresh: links it dials are closed cleanly and redialed, links
    dialed from another process are judged again in place. 200
    ``{"refreshed": true, "pending": [...], "links": [...]}`` once every link
    has its new outcome; ``links`` as in the status document, ``pending``
    the ``"dialer -> listener"`` names still without one when it stopped
    waiting: when no link had had a new outcome for ``?timeout=S``
    seconds (up to 3,600; default
    :data:`mesh.appliances.appliance.REFRESH_TIMEOUT`), so a refresh that
    keeps making progress takes as long as its handshakes need.
    ``process_links``: the same for every appliance of this process: in a
    shard (several appliances in one ``mesh node``, one console each) a
    refresh through any console refreshes the whole shard, which shares one
    retry gate (:class:`mesh.node_control.ShardRefresh`; refreshes asked
    while one runs are answered together by the next), so one request per
    shard and this list tell a driver every link of it.
``POST /api/v1/clock``
    JSON ``{"advance_seconds": N}`` (N >= 0) or ``{"now": "2028-01-15T09:00:00Z"}``
    (an ISO 8601 instant with its offset): the emulated clock moves forward
    by N seconds, or to that instant (not at all when it is already past it:
    the clock never runs backwards). 200 ``{"now": ...}``, the new instant,
    once certificates the jump carried into their expiry window have said
    so; 400 otherwise. Cached CRLs are judged by the new time at their next
    use; ``crls/refresh`` makes that now. In a shard process (several
    appliances, one console each) the appliances share one clock: moving it
    through any console moves it for all, so a driver asks each console for
    the same ``now`` and the clock moves once.
``PUT /api/v1/running``
    JSON ``{"running": false}``: the appliance stops (what a scenario's
    ``stop`` step does: its listener and links close, its peers see them go
    down) while this console keeps answering; ``{"running": true}`` starts it
    again on its old address. 200 ``{"running": ...}`` once it has stopped or
    listens again; 400 otherwise.

Both answer 404 ``{"code": "no_control"}`` on a console served inside a
scenario run (``mesh run``, ``mesh console``), whose own steps do this;
``mesh node`` processes (one appliance or a shard) serve them.
``GET /api/v1/events?since=N``
    200 ``{"since": N, "next": M, "dropped": D, "events": [...]}``: the events
    among N+D..M-1 of the stream that concern this appliance (they name it,
    or no appliance: see :mod:`mesh.web.feed`), oldest first, at most
    ``limit`` of them (default and maximum :data:`MAX_EVENTS`); poll again
    with ``since=M``. Positions count in the whole stream, other appliances'
    events included, so M may move on with no event listed; an appliance
    keeps only its recent events in memory, so ``dropped`` says how many
    positions after N are no longer there (0 while nothing was missed).
``POST /api/v1/session``
    JSON ``{"token": "..."}`` or ``{"user": "admin", "password": "..."}``
    (with ``admin_password_hash`` configured): the page signs in. 200
    ``{"signed_in": true, "csrf_token": "..."}`` and a session cookie
    (``Secure; HttpOnly; SameSite=Strict; Path=/``); 403 ``forbidden`` for a
    wrong token or password. ``DELETE`` signs out (200, the cookie cleared);
    ``GET`` says ``{"signed_in": ..., "reads_open": ...}`` (and the
    ``csrf_token`` of a live session).
``GET /`` (the console page), ``/console.js``, ``/console.css``, and
``GET /graph.svg`` (the topology drawn by :func:`mesh.graph.render_svg`).

Passphrases and keys are read into memory, handed to the backend and never
logged or echoed: an error names the field, never its content.

Credentials (:mod:`mesh.web.auth`, whose :meth:`~mesh.web.auth.ConsoleAuth.check`
decides for every route): every request that changes something (any method
but GET) needs ``Authorization: Bearer <token>``, an operator client
certificate, or the page's session cookie with its ``X-CSRF-Token``: without
any (or with an unknown session) 401 ``{"code": "unauthorized"}`` and
``WWW-Authenticate: Bearer``; a wrong token 403 ``{"code": "forbidden"}``, a
bad operator certificate 403 ``operator_cert_*``, a cookie without its CSRF
token 403 ``forbidden_csrf``, a browser's ``Sec-Fetch-Site: cross-site`` or
``same-site`` 403 ``forbidden_cross_site``; nothing changes and an
``api-denied`` event is recorded. Reads need the credential too when the console does not listen on
loopback (the page and its script and style stay open, to sign in).

Requests that change something (upload, switch, CRL refresh, clock, running) from a browser must come from
the console's own page: a cross-site page could otherwise make a browser post
a multipart form here. A request whose ``Origin`` header names another origin
is refused with 403 ``{"code": "forbidden_origin"}``; clients that send no
``Origin`` (curl, scripts) are not affected. "Another origin" is judged
against the console itself (https, its port, its address, ``localhost`` and
the names in its certificate), never against the Host header, which a page
on a rebound DNS name controls; several ``Origin`` headers are refused too.

Bounds: an upload body is read no further than :data:`MAX_UPLOAD_BYTES` and
a switch body than :data:`MAX_SWITCH_BYTES` (413 ``too_large``, before the
rest is read); ``since``/``limit`` are plain ASCII digits; a path with a
trailing slash is 404, not a redirect built from the Host header. Every
answer forbids framing and MIME sniffing (:data:`CONTENT_SECURITY_POLICY`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from importlib import resources
from typing import Any, Awaitable, Callable, Literal, overload

from cryptography import x509
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mesh.errors import InputError, ValidationFailed
from mesh.events import ApiDenied
from mesh.graph import Graph, render_svg
from mesh.printable import printable
from mesh.validation.expiry import DEFAULT_EXPIRY_WINDOW
from mesh.web.auth import ConsoleAuth, Denial
from mesh.web.backend import ConsoleBackend, NodeControl
from mesh.web.certificate import certificate_summary
from mesh.web.feed import event_page
from mesh.web.status import link_document, status_document

__all__ = ["build_app", "MAX_FILE_BYTES", "MAX_EVENTS"]

#: Largest certificate, key or chain file the upload form accepts.
MAX_FILE_BYTES = 256 * 1024

#: Most events one ``GET /api/v1/events`` returns; a dashboard catches up in pages.
MAX_EVENTS = 1000

#: Largest upload request body: three files and the passphrase, with room for
#: the multipart framing. Read no further than this.
MAX_UPLOAD_BYTES = 4 * MAX_FILE_BYTES

#: Largest ``PUT /api/v1/validation`` body.
MAX_SWITCH_BYTES = 1024

#: Largest ``POST /api/v1/clock`` or ``PUT /api/v1/running`` body.
MAX_CONTROL_BYTES = 1024

#: The longest ``crls/refresh?timeout=`` may ask a refresh to wait without progress.
MAX_REFRESH_TIMEOUT = 3600.0

#: Largest ``POST /api/v1/session`` body.
MAX_SIGN_IN_BYTES = 1024

#: The page loads only its own script, style and graph, and may not be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)

_ASSETS = {
    "/": ("console.html", "text/html; charset=utf-8"),
    "/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console.css": ("console.css", "text/css; charset=utf-8"),
}

_NO_STORE = {"Cache-Control": "no-store"}


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"code": "bad_request", "message": message}, status_code=400)


_SIGN_IN_SHAPE = '{"token": "..."} or {"user": "admin", "password": "..."}'


def _sign_in_credential(body: Any) -> dict[str, str] | None:
    """The sign-in's one credential: ``token``, or ``user`` and ``password``; else None."""
    if not isinstance(body, dict):
        return None
    if set(body) == {"token"} and isinstance(body["token"], str) and body["token"].strip():
        return {"token": body["token"].strip()}
    if (set(body) == {"user", "password"} and isinstance(body["user"], str)
            and isinstance(body["password"], str) and body["password"]):
        return {"user": body["user"], "password": body["password"]}
    return None


def _denied(denial: Denial) -> JSONResponse:
    """The answer to a refused request: its status, stable code and message, nothing presented."""
    headers = {"WWW-Authenticate": "Bearer"} if denial.status == 401 else {}
    return JSONResponse({"code": denial.code, "message": denial.message},
                        status_code=denial.status, headers=headers)


def _own_origins(request: Request, backend: ConsoleBackend) -> set[str]:
    """The origins of this console's own page: https, its port, and a name it answers to.

    Judged from the socket and the certificate, never from the Host header:
    a page whose name was rebound to this address sends a matching Host and
    Origin of its own.
    """
    server = request.scope.get("server") or ("127.0.0.1", 0)
    host, port = server[0], server[1]
    names = {host, "localhost", backend.name}
    try:
        names.update(backend.identity().cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except (x509.ExtensionNotFound, ValueError):
        pass
    if host in ("127.0.0.1", "::1"):
        names.update({"127.0.0.1", "[::1]"})
    return {f"https://{f'[{n}]' if ':' in n and not n.startswith('[') else n}:{port}".lower()
            for n in names}


async def _foreign_origin(request: Request, backend: ConsoleBackend) -> JSONResponse | None:
    """403 when a browser sends this request from a page of another origin."""
    origins = request.headers.getlist("origin")
    if not origins:
        return None
    origin = origins[0]
    if len(origins) == 1 and origin.lower() in _own_origins(request, backend):
        return None
    await _drain(request)
    shown = printable(origin, 100) if len(origins) == 1 else "several origins at once"
    return JSONResponse(
        {"code": "forbidden_origin",
         "message": f"requests from {shown} may not change this appliance; use its own console page"},
        status_code=403,
    )


class _TooLarge(Exception):
    """A request body went over its cap while it was being read."""


def _capped(request: Request, cap: int) -> Request:
    """``request`` whose body is counted as it arrives; over ``cap`` raises :class:`_TooLarge`.

    Starlette's form parser spools every file part (to disk past 1 MB) before
    anything can look at its size; this stops reading at the cap instead.
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise _TooLarge
    seen = 0
    receive = request.receive

    async def counted() -> Any:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > cap:
            raise _TooLarge
        return message

    return Request(request.scope, counted)


def _too_large(cap: int, fix: str) -> JSONResponse:
    return JSONResponse(
        {"code": "too_large", "message": f"the body is larger than {cap // 1024} KiB; {fix}"},
        status_code=413,
    )


def _position(raw: str, *, most: int | None = None) -> int | None:
    """A non-negative decimal number in plain ASCII digits, else None."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        return None
    number = int(raw)
    return number if most is None or number <= most else None


class _SecurityHeaders:
    """Adds to every answer: no framing (clickjacking), no MIME sniffing, same-origin only."""

    _HEADERS = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    ]

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *self._HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _asset(name: str) -> bytes:
    return resources.files("mesh.web").joinpath(name).read_bytes()


@overload
async def _file_field(form: FormData, name: str, *, required: Literal[True]) -> bytes: ...
@overload
async def _file_field(form: FormData, name: str, *, required: bool) -> bytes | None: ...
async def _file_field(form: FormData, name: str, *, required: bool) -> bytes | None:
    value = form.get(name)
    if value is None or (isinstance(value, UploadFile) and not value.filename and value.size == 0):
        if required:
            raise InputError(f"form field {name!r}", "is missing", f"attach the .{_EXT[name]} file as {name!r}")
        return None
    if isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = await value.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"form field {name!r}", f"is larger than {MAX_FILE_BYTES // 1024} KiB",
                         "upload a single certificate, key or chain file")
    if not data.strip():
        if required:
            raise InputError(f"form field {name!r}", "is empty", f"attach the .{_EXT[name]} file")
        return None
    return data


_EXT = {"crt": "crt", "key": "key", "chain": "pem"}


async def _drain(request: Request) -> None:
    """Read (a bounded amount of) the body unread, so the client reads the
    answer instead of a connection reset mid-upload. A body announced larger
    than any upload is not read at all: refusing it must not cost the time
    of reading it."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        return
    drained = 0
    async for chunk in request.stream():
        drained += len(chunk)
        if drained > 4 * MAX_FILE_BYTES:
            break


def _session_cookie(request: Request) -> str:
    """The cookie's name: one per console port, as browsers share cookies across
    the ports of one host and two consoles must not overwrite each other's."""
    server = request.scope.get("server") or ("", 0)
    return f"mesh-session-{server[1]}"


def _clock_target(body: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    """The instant a clock request asks for, or None when it is not one of the two shapes."""
    if set(body) == {"advance_seconds"}:
        seconds = body["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            return None
        if not 0 <= seconds <= _MAX_ADVANCE_SECONDS:  # NaN fails too
            return None
        return now + dt.timedelta(seconds=seconds)
    if set(body) == {"now"} and isinstance(body["now"], str) and len(body["now"]) <= 64:
        try:
            at = dt.datetime.fromisoformat(body["now"])
        except ValueError:
            return None
        return at if at.tzinfo is not None and at.utcoffset() is not None else None
    return None


#: A clock moves at most a thousand years in one request (timedelta's own bound is near).
_MAX_ADVANCE_SECONDS = 1000 * 366 * 86400


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


_Handler = Callable[[Request], Awaitable[Response]]


def build_app(
    backend: ConsoleBackend,
    *,
    auth: ConsoleAuth,
    reads_open: bool = True,
    expiry_window: dt.timedelta = DEFAULT_EXPIRY_WINDOW,
    control: NodeControl | None = None,
) -> Starlette:
    """The ASGI app serving ``backend``'s API and console page; ``auth`` guards it.

    ``reads_open``: GETs need no credential (a console on loopback only).
    ``control``: the node process's clock and stop/start (``mesh node``);
    without it those routes answer 404 ``no_control``.
    """

    async def refused(request: Request, changes: bool = True) -> Response | None:
        """None when the request carries a credential, else the 401/403 answer (and the event)."""
        denial = auth.check(request, appliance=backend.name, at=backend.now(), changes=changes,
                            cookie=_session_cookie(request))
        if denial is None:
            return None
        await _drain(request)
        return _denied(denial)

    def guarded(handler: _Handler, *, changes: bool) -> _Handler:
        """``handler`` behind the credential check: always when it ``changes``
        state, for reads only when the console is not on loopback."""
        if not changes and reads_open:
            return handler

        async def check(request: Request) -> Response:
            if changes and (foreign := await _foreign_origin(request, backend)) is not None:
                return foreign
            if (denied := await refused(request, changes)) is not None:
                return denied
            return await handler(request)

        return check

    async def session_state(request: Request) -> Response:
        session = request.cookies.get(_session_cookie(request))
        state: dict[str, Any] = {"signed_in": auth.signed_in(session), "reads_open": reads_open}
        if session is not None and state["signed_in"]:
            state["csrf_token"] = auth.csrf_token(session)
        return JSONResponse(state, headers=_NO_STORE)

    async def sign_in(request: Request) -> Response:
        if (foreign := await _foreign_origin(request, backend)) is not None:
            return foreign
        if (cross := auth.cross_site(request, appliance=backend.name, at=backend.now())) is not None:
            await _drain(request)
            return _denied(cross)
        try:
            body = json.loads(await _capped(request, MAX_SIGN_IN_BYTES).body())
        except _TooLarge:
            return _too_large(MAX_SIGN_IN_BYTES, _SIGN_IN_SHAPE)
        except (ValueError, RecursionError):
            return _bad_request(f"the body is not JSON; send {_SIGN_IN_SHAPE}")
        credential = _sign_in_credential(body)
        if credential is None:
            return _bad_request(f"send {_SIGN_IN_SHAPE}, with the token from the console's "
                                "token file or the admin user's password")
        denial = await auth.sign_in_with(**credential)
        if denial is not None:
            auth.deny(ApiDenied(at=backend.now(), appliance=backend.name, method=request.method,
                                path=request.url.path, reason=denial.reason),
                      source=request.client.host if request.client else "")
            return _denied(denial)
        session = auth.sign_in()
        answer = JSONResponse({"signed_in": True, "csrf_token": auth.csrf_token(session)},
                              headers=_NO_STORE)
        answer.set_cookie(_session_cookie(request), session, path="/", secure=True,
                          httponly=True, samesite="strict")
        return answer

    async def sign_out(request: Request) -> Response:
        if (foreign := await _foreign_origin(request, backend)) is not None:
            return foreign
        name = _session_cookie(request)
        auth.sign_out(request.cookies.get(name))
        answer = JSONResponse({"signed_in": False}, headers=_NO_STORE)
        answer.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")
        return answer

    async def status(request: Request) -> Response:
        return JSONResponse(status_document(backend, window=expiry_window), headers=_NO_STORE)

    async def upload(request: Request) -> Response:
        try:
            async with _capped(request, MAX_UPLOAD_BYTES).form(max_files=3, max_fields=8) as form:
                crt = await _file_field(form, "crt", required=True)
                key = await _file_field(form, "key", required=True)
                chain = await _file_field(form, "chain", required=False)
                passphrase = form.get("passphrase")
                if passphrase is not None and not isinstance(passphrase, str):
                    raise InputError("form field 'passphrase'", "is a file", "send the passphrase as text")
        except HTTPException as exc:
            return _bad_request(f"malformed multipart form: {exc.detail}")
        except InputError as exc:
            return _bad_request(exc.line())
        except _TooLarge:
            return _too_large(MAX_UPLOAD_BYTES, "upload a single certificate, key and chain")
        try:
            await backend.upload(crt=crt, key=key, chain=chain, passphrase=passphrase or None)
        except ValidationFailed as exc:
            return JSONResponse(
                {"code": exc.code.code, "message": exc.code.message, "detail": exc.detail},
                status_code=422,
            )
        except InputError as exc:
            return _bad_request(exc.line())
        identity = backend.identity()
        return JSONResponse(
            {
                "accepted": True,
                "certificate": certificate_summary(
                    identity.cert, at=backend.now(), window=expiry_window, chain=tuple(identity.chain)
                ),
            }
        )

    async def validation(request: Request) -> Response:
        try:
            body = json.loads(await _capped(request, MAX_SWITCH_BYTES).body())
        except _TooLarge:
            return _too_large(MAX_SWITCH_BYTES, 'send {"enabled": true} or {"enabled": false}')
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            return _bad_request('the body is not JSON; send {"enabled": true} or {"enabled": false}')
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            return _bad_request('send {"enabled": true} or {"enabled": false}')
        backend.set_validation(body["enabled"])
        return JSONResponse({"enabled": bool(backend.validation_enabled())})

    async def refresh_crls(request: Request) -> Response:
        raw = request.query_params.get("timeout")
        timeout = None
        if raw is not None:
            try:
                timeout = float(raw)
            except ValueError:
                timeout = math.nan
            if not 0 < timeout <= MAX_REFRESH_TIMEOUT:
                return _bad_request(f"timeout={raw!r} is not a number of seconds above 0 "
                                    f"and up to {MAX_REFRESH_TIMEOUT:g}")
        pending = await backend.refresh_crls(timeout)
        return JSONResponse(
            {"refreshed": True, "pending": list(pending),
             "links": [link_document(link) for link in backend.links()],
             "process_links": [link_document(link) for link in backend.process_links()]},
            headers=_NO_STORE,
        )

    async def control_body(request: Request, usage: str) -> dict[str, Any] | Response:
        """The JSON object of a control request, or the answer refusing it."""
        if control is None:
            await _drain(request)
            return JSONResponse(
                {"code": "no_control",
                 "message": "this console is served inside a scenario run, whose steps move "
                            "its clock and stop its appliance; a mesh node process serves this"},
                status_code=404)
        try:
            body = json.loads(await _capped(request, MAX_CONTROL_BYTES).body())
        except _TooLarge:
            return _too_large(MAX_CONTROL_BYTES, f"send {usage}")
        except (ValueError, RecursionError):
            return _bad_request(f"the body is not JSON; send {usage}")
        if not isinstance(body, dict):
            return _bad_request(f"send {usage}")
        return body

    async def clock(request: Request) -> Response:
        usage = '{"advance_seconds": N} or {"now": "2028-01-15T09:00:00Z"}'
        body = await control_body(request, usage)
        if isinstance(body, Response):
            return body
        assert control is not None
        to = _clock_target(body, backend.now())
        if to is None:
            return _bad_request(f"send {usage} (seconds a number from 0 on; an instant with its offset)")
        now = await control.move_clock(to)
        return JSONResponse({"now": _instant(now)}, headers=_NO_STORE)

    async def running(request: Request) -> Response:
        usage = '{"running": true} or {"running": false}'
        body = await control_body(request, usage)
        if isinstance(body, Response):
            return body
        assert control is not None
        if set(body) != {"running"} or not isinstance(body["running"], bool):
            return _bad_request(f"send {usage}")
        try:
            if body["running"]:
                await control.start()
            else:
                await control.stop()
        except InputError as exc:  # its old port is taken meanwhile
            return JSONResponse({"code": "cannot_start", "message": exc.line()}, status_code=409)
        return JSONResponse({"running": control.running()}, headers=_NO_STORE)

    async def events(request: Request) -> Response:
        raw = request.query_params.get("since", "0")
        since = _position(raw)
        if since is None:
            return _bad_request(
                f"since={raw!r} is not a position in the stream; "
                "use since=0 or the 'next' of the last answer"
            )
        raw_limit = request.query_params.get("limit", str(MAX_EVENTS))
        limit = _position(raw_limit, most=MAX_EVENTS)
        if not limit:
            return _bad_request(f"limit={raw_limit!r} is not a number from 1 to {MAX_EVENTS}")
        return JSONResponse(event_page(backend, since=since, limit=limit), headers=_NO_STORE)

    async def graph(request: Request) -> Response:
        document = status_document(backend, window=expiry_window)
        svg = render_svg(Graph.from_status(document), highlight=backend.name)
        return Response(svg, media_type="image/svg+xml", headers=_NO_STORE)

    def asset(path: str) -> Any:
        name, media_type = _ASSETS[path]

        async def serve(request: Request) -> Response:
            return Response(_asset(name), media_type=media_type, headers=_NO_STORE)

        return serve

    routes = [
        Route("/api/v1/status", guarded(status, changes=False), methods=["GET"]),
        Route("/api/v1/certificate", guarded(upload, changes=True), methods=["POST"]),
        Route("/api/v1/validation", guarded(validation, changes=True), methods=["PUT"]),
        Route("/api/v1/crls/refresh", guarded(refresh_crls, changes=True), methods=["POST"]),
        Route("/api/v1/clock", guarded(clock, changes=True), methods=["POST"]),
        Route("/api/v1/running", guarded(running, changes=True), methods=["PUT"]),
        Route("/api/v1/events", guarded(events, changes=False), methods=["GET"]),
        Route("/graph.svg", guarded(graph, changes=False), methods=["GET"]),
        # Signing in is the credential check itself; the page and its assets
        # stay open so that a person can reach the sign-in form.
        Route("/api/v1/session", session_state, methods=["GET"]),
        Route("/api/v1/session", sign_in, methods=["POST"]),
        Route("/api/v1/session", sign_out, methods=["DELETE"]),
    ] + [Route(path, asset(path), methods=["GET"]) for path in _ASSETS]
    app = Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders)])
    # Starlette redirects "/x/" to "/x" with a Location built from the Host
    # header: an open redirect. Unknown paths are 404, as they are.
    app.router.redirect_slashes = False
    return app

