"""The HTTP side of CRL fetching: one exchange per URL and route across the process.

- **One HTTP exchange per URL and route across the process.** Each emulated
  appliance has its own fetcher, and a thousand of them ask for the same URL
  within milliseconds. A fetcher that asks while another fetcher's exchange for
  the same URL by the same route (proxy, ``trust_env``, timeout, size cap) is
  in flight joins it, as if its own request had reached the server at that
  moment: the same bytes, or the same failure. It keeps its own deadline: if
  that passes first it times out as its own request would, and if the exchange
  timed out at an earlier deadline it waits out its own before failing the
  same way. If the leading task is cancelled, a joiner makes the request
  itself within what is left of its deadline. Only exchanges in flight are
  shared, never a finished result: a fetcher asking afterwards makes its own
  request (so "the CRL server went down" means what it says). Everything else
  stays per fetcher: the cache and its rules (:mod:`mesh.net.crl_cache`), the
  signature memo, and a ``FetchRecord`` per fetch (each appliance logs its own
  event). The table of exchanges is a
  :class:`~mesh.net.single_flight.SingleFlight` keyed by URL and
  :class:`Route`, each joiner with its own deadline; it lives in a
  ``trio.lowlevel.RunVar``: one per ``trio.run``. At 1,000 sensors this cut
  the requests at the CRL server from 1,001 to about 300 per URL and bring-up
  time by about a quarter.

The HTTP side is httpx on trio (through anyio): plain ``http://`` only
(:mod:`mesh.net.crl_url`), no redirects (a 3xx is an HTTP error, as
OpenSSL's own CRL loader treats it), an optional proxy per fetcher plus the
standard ``HTTP_PROXY``/``NO_PROXY`` variables when ``trust_env``, one overall
deadline per fetch and a size cap on the body. The body is read raw and its
Content-Encoding undone here (:mod:`mesh.net.content_coding`), so the cap
bounds what is *decoded*, as it is decoded: a 1,827-byte ``gzip, gzip`` body
holding 1 GiB of zeros is refused at the cap instead of being inflated first.
A failed fetch keeps nothing of the body: the failures that are stored and
raised again are fresh exceptions, without the traceback whose frames held it.
"""

from __future__ import annotations

import contextlib
import functools
import ssl

import httpx
import trio
from attrs import define

from mesh.errors import FailureCode, ValidationFailed
from mesh.net.content_coding import BodyDecoder, DecodeError, TooLarge
from mesh.net.crl_parse import parse_crl
from mesh.net.single_flight import Flight, SingleFlight
from mesh.printable import printable
from mesh.validation.revocation import CrlIndex

__all__ = ["CrlHttp", "Exchanged", "Route"]

_ACCEPT = "application/pkix-crl, application/x-pkcs7-crl;q=0.9, */*;q=0.1"
#: Exactly what :mod:`mesh.net.content_coding` decodes (httpx would also offer
#: br and zstd when their packages happen to be installed).
_ACCEPT_ENCODING = "gzip, deflate"


@define(frozen=True, kw_only=True)
class Route:
    """How a fetcher reaches CRL servers; fetchers on the same route share exchanges.

    ``timeout``: seconds one fetch may take from connect to the last body
    byte. ``max_bytes``: a body larger than this is refused as ``crl_invalid``.
    """

    proxy: str | None
    trust_env: bool
    timeout: float
    max_bytes: int


@define(frozen=True)
class Exchanged:
    """What one HTTP exchange came to, as every fetcher that shared it sees it."""

    result: CrlIndex | ValidationFailed
    status: int | None
    size: int


class _Progress:
    """How far one exchange got (live: a joiner whose deadline passes reads it)."""

    __slots__ = ("status", "size")

    def __init__(self) -> None:
        self.status: int | None = None
        self.size = 0


#: The exchanges in flight in this ``trio.run``, by URL and route. Per run, so
#: an Event of another run (tests make many) is never awaited, and nothing
#: outlives the run.
_EXCHANGES: trio.lowlevel.RunVar[SingleFlight[tuple[str, Route], Exchanged]] = (
    trio.lowlevel.RunVar("mesh.crl_fetch.exchanges")
)


def _exchanges() -> SingleFlight[tuple[str, Route], Exchanged]:
    try:
        return _EXCHANGES.get()
    except LookupError:
        table: SingleFlight[tuple[str, Route], Exchanged] = SingleFlight()
        _EXCHANGES.set(table)
        return table


#: One httpx client per route in this ``trio.run`` (routes that ignore the
#: environment: an appliance's). It pools no connections (see
#: :func:`_new_client`), so sharing it shares no socket, only the client
#: object: making one per appliance took ~1 % of a fleet's bring-up and
#: ~0.8 kB a sensor. A route that reads the proxy variables gets a client of
#: its own, made when it first fetches, so it sees the environment of then.
_CLIENTS: trio.lowlevel.RunVar[dict[Route, httpx.AsyncClient]] = trio.lowlevel.RunVar(
    "mesh.crl_http.clients"
)


def _shared_client(route: Route) -> httpx.AsyncClient:
    try:
        clients = _CLIENTS.get()
    except LookupError:
        clients = {}
        _CLIENTS.set(clients)
    client = clients.get(route)
    if client is None:
        client = clients[route] = _new_client(route)
    return client


def _new_client(route: Route) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        proxy=route.proxy,
        trust_env=route.trust_env,
        timeout=httpx.Timeout(route.timeout),
        follow_redirects=False,
        # No pooled connections: fetches are rare, and a CRL server that
        # went down and came back must not meet a dead kept-alive socket.
        # No cap on connections either: the client serves every appliance
        # of the process on this route (httpx's default is 100).
        limits=httpx.Limits(max_keepalive_connections=0, max_connections=None),
        # Only used if the proxy itself is https://; sharing one context
        # saves ~20 ms per client (httpx would load the CA bundle again).
        verify=_tls_context(),
    )


class CrlHttp:
    """One fetcher's HTTP side: its route; its client and exchanges shared by route."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self._own: httpx.AsyncClient | None = None  # a trust_env route's

    async def exchange(self, url: str) -> Exchanged:
        """One HTTP exchange for ``url``: our own, or one in flight by the same route.

        Joining is "as if our own request had reached the server now": the
        same bytes or the same failure, within our own deadline. If our
        deadline passes first we time out as our own request would; if the
        exchange timed out at its (earlier) deadline, ours would still be
        waiting, so we wait out our own before failing the same way; if its
        task was cancelled, we make the request ourselves, within what is
        left of our deadline.
        """
        deadline = trio.current_time() + self.route.timeout
        return await _exchanges().run(
            (url, self.route),
            functools.partial(self._lead, url, deadline),
            deadline=deadline,
            late=functools.partial(self._late, url),
        )

    async def aclose(self) -> None:
        """Close this fetcher's own client; a shared one keeps no connection open."""
        if self._own is not None:
            own, self._own = self._own, None
            await own.aclose()
        else:
            await trio.lowlevel.checkpoint()

    def _client(self) -> httpx.AsyncClient:
        if not self.route.trust_env:
            return _shared_client(self.route)
        if self._own is None:
            self._own = _new_client(self.route)
        return self._own

    async def _lead(self, url: str, deadline: float, flight: Flight) -> Exchanged:
        """Our own request, the exchange the others join; its progress is theirs to read."""
        progress = flight.progress = _Progress()
        try:
            index = await self._exchange(url, progress, deadline, flight)
        except ValidationFailed as exc:
            # A fresh failure, without the traceback whose frames held the body.
            failure = ValidationFailed(exc.code, exc.detail)
            return Exchanged(failure, progress.status, progress.size)
        return Exchanged(index, progress.status, progress.size)

    def _late(self, url: str, flight: Flight) -> Exchanged:
        """Our deadline passed while the exchange we joined went on: how far it had got."""
        progress = flight.progress
        assert isinstance(progress, _Progress)
        failure = self._timed_out(url, complete=progress.status is not None)
        return Exchanged(failure, progress.status, progress.size)

    async def _exchange(
        self, url: str, progress: _Progress, deadline: float, flight: Flight
    ) -> CrlIndex:
        via = f" via proxy {self.route.proxy}" if self.route.proxy else ""
        chunks: list[bytes] = []
        try:
            with trio.move_on_at(deadline) as scope:
                async with self._client().stream(
                    "GET", url, headers={"Accept": _ACCEPT, "Accept-Encoding": _ACCEPT_ENCODING}
                ) as response:
                    status = progress.status = response.status_code
                    if status != 200:
                        raise ValidationFailed(
                            FailureCode.CRL_HTTP_ERROR,
                            f"HTTP {status} {printable(response.reason_phrase, 80)} from {url}{via}",
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.route.max_bytes:
                        raise self._too_big(url, int(declared))
                    await self._read_body(url, response, progress, chunks)
        except httpx.TimeoutException as exc:
            chunks.clear()
            flight.expired = True
            # A server that never answers is, to the operator, a CRL location
            # that is not reachable: the source document's message; the detail
            # says it timed out.
            raise ValidationFailed(
                FailureCode.CRL_UNREACHABLE,
                f"{url}{via}: timed out, no answer within {self.route.timeout:g} s ({_why(exc)})",
            ) from None
        except httpx.TransportError as exc:
            chunks.clear()
            raise ValidationFailed(
                FailureCode.CRL_UNREACHABLE, f"{url}{via}: {_why(exc)}"
            ) from None
        except BaseException:
            # A failure's traceback keeps this frame, and with it ``chunks``:
            # empty it, or a node holding its last error holds the body too.
            chunks.clear()
            raise
        if scope.cancelled_caught:
            chunks.clear()
            flight.expired = True
            raise self._timed_out(url, complete=True)
        flight.untimed = True  # the body is in; parsing is not timed
        return await parse_crl(chunks, progress.size, url)

    async def _read_body(
        self, url: str, response: httpx.Response, progress: _Progress, chunks: list[bytes]
    ) -> None:
        """Read the raw body into ``chunks``, decoded here under the size cap.

        The cap bounds the bytes on the wire and every decoding layer's output
        as it is produced (see :mod:`mesh.net.content_coding`): a compression
        bomb stops at the cap, not after inflating.
        """
        max_bytes = self.route.max_bytes
        try:
            decoder = BodyDecoder(
                response.headers.get_list("content-encoding", split_commas=True), max_bytes
            )
            raw_size = 0
            # httpx types aiter_raw as an AsyncIterator; it returns an async
            # generator, which aclosing needs (and gets).
            async with contextlib.aclosing(response.aiter_raw()) as received:  # type: ignore[type-var]
                async for raw in received:
                    raw_size += len(raw)
                    if raw_size > max_bytes:
                        raise self._too_big(url, raw_size)
                    chunks.extend(decoder.feed(raw))
                    progress.size = decoder.size
            chunks.extend(decoder.finish())
            progress.size = decoder.size
            return
        except TooLarge as exc:
            progress.size = exc.size
            failure = self._too_big(url, exc.size)
        except DecodeError as exc:
            failure = ValidationFailed(FailureCode.CRL_INVALID, f"{url}: {exc}")
        # Raised outside the handler, so no __context__ keeps the decoder's frames.
        raise failure

    def _timed_out(self, url: str, *, complete: bool) -> ValidationFailed:
        via = f" via proxy {self.route.proxy}" if self.route.proxy else ""
        return ValidationFailed(
            FailureCode.CRL_UNREACHABLE,
            f"{url}{via}: timed out, no {'complete ' if complete else ''}answer "
            f"within {self.route.timeout:g} s",
        )

    def _too_big(self, url: str, size: int) -> ValidationFailed:
        return ValidationFailed(
            FailureCode.CRL_INVALID,
            f"{url}: body of {size} bytes or more exceeds the "
            f"{self.route.max_bytes}-byte CRL size cap",
        )


def _why(exc: BaseException) -> str:
    """One line saying what went wrong, with the OS's reason when there is one.

    trio reports a failed connect as "all attempts to connect to H:P failed"
    with the real errors (refused, unreachable) in an exception group behind it.
    """
    text = (str(exc) or type(exc).__name__).splitlines()[0]
    reasons: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            if current.strerror not in reasons:
                reasons.append(current.strerror)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    if reasons and not any(r in text for r in reasons):
        text += f": {'; '.join(reasons)}"
    return printable(text, 300)  # may quote what a server sent


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()
