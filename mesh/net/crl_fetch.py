"""The CRL fetcher: CDP URLs over plain HTTP, one fetch per URL, cached until nextUpdate.

Theory of operation. Every connection start asks for the CRL of each
certificate in the peer's path, and a mesh of thousands of sensors asks for the
same few URLs at once. So:

- **Single flight.** The first task that needs a URL fetches it; every task
  that asks meanwhile waits for that fetch's outcome (success or the same
  error). If the fetching task is cancelled, a waiter takes over: nobody is
  left waiting on an abandoned fetch.
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
  stays per fetcher: the cache and its rules below, the signature memo, and a
  :class:`FetchRecord` per fetch (each appliance logs its own event). The
  table of exchanges lives in a ``trio.lowlevel.RunVar``: one per ``trio.run``.
  At 1,000 sensors this cut the requests at the CRL server from 1,001 to about
  300 per URL and bring-up time by about a quarter.
- **Cache until nextUpdate**, judged by the emulated clock (``now``), never the
  wall clock. Past nextUpdate the next :meth:`CrlFetcher.get` refetches. A CRL
  without nextUpdate stays until invalidated.
- **A good CRL is not given up for a worse one.** While the cached CRL is
  current, a failed refetch (server down, garbage, HTML, HTTP error) keeps it
  in use, and so does a refetch that brings an *older or stale* CRL (lower CRL
  number, else earlier thisUpdate) or, when the caller named the issuer, one
  the issuer did not sign. Without the issuer a newer forged CRL does replace
  it; the core then refuses it with ``crl_signature_invalid`` (fail closed).
  With nothing current cached, whatever was fetched goes to the core, which
  reports ``crl_stale`` or ``crl_signature_invalid`` as its own code.
- **Republishing is explicit.** A real appliance does not see a new CRL before
  the cached one's nextUpdate; a scenario that revokes a certificate and wants
  the next connection attempt to notice calls :meth:`CrlFetcher.invalidate`.
  We chose this over revalidating on every ``get`` (a conditional GET, or
  comparing CRL numbers) because that costs an HTTP round trip per connection
  start and defeats "one fetch per URL" when 1,000 sensors connect.
  ``invalidate`` marks the entry for one refresh at the next ``get``; the rules
  above decide whether the refreshed CRL replaces it, and if the refresh fails
  the current CRL stays in use until its nextUpdate (or the next invalidate).
  :meth:`CrlFetcher.clear` drops entries outright (an appliance restart).
- **Big CRLs are handled in a worker thread** (``trio.to_thread``): joining
  the body, parsing and indexing it, and, given the issuer (``get(url,
  issuer=)``, ``prefetch(urls, issuers=)``), checking its signature once per CRL
  version and issuer key, so the core's ``CrlIndex.signed_by`` answers from
  memory on the connection path. Small CRLs are handled inline. Measured at
  1,000,000 entries (37 MiB): the loop's longest pause while a fetch parses is
  about 90 ms, spent in ``cryptography``'s DER parser, which holds the GIL even
  in a thread; its ``is_signature_valid`` holds it for about 0.9 s. Hashing
  the DER's TBS bytes with ``hashlib`` (which drops the GIL) and verifying the
  prehashed digest would remove that pause; it belongs in ``CrlIndex.signed_by``.
- **Only trusted paths cause fetches.** The fetcher fetches what it is asked
  for; the engine asks for what ``mesh.validation.crl_urls`` names, which is
  nothing for a chain that does not lead to a trust anchor, so a stranger's
  certificate cannot make an appliance fetch URLs of its choosing.

The HTTP side is httpx on trio (through anyio): plain ``http://`` only (the
source document's certificate requirements name an http:// CDP, so ``https://``
is refused with that reason), no redirects (a 3xx is an HTTP error, as
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
import datetime as dt
import functools
import hashlib
import ssl
import weakref
from typing import Callable, Iterable, Mapping

import httpx
import trio
from attrs import define
from cryptography import x509

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.net.content_coding import BodyDecoder, DecodeError, TooLarge
from mesh.printable import printable
from mesh.validation.chain import public_key_der
from mesh.validation.revocation import CrlIndex, CrlLookup, crl_lookup

__all__ = [
    "CrlFetcher",
    "FetchRecord",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "check_crl_url",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 5.0
#: Bodies above this parse in a worker thread. A 1,000-entry CRL is about
#: 40 kB and parses in about a millisecond; a thread hop would cost more.
_THREAD_PARSE_BYTES = 256 * 1024
#: CRLs with more entries than this have their signature checked in a worker
#: thread (hashing a 37 MiB CRL takes tens of milliseconds).
_THREAD_SIGNATURE_ENTRIES = 20_000
_ACCEPT = "application/pkix-crl, application/x-pkcs7-crl;q=0.9, */*;q=0.1"
#: Exactly what :mod:`mesh.net.content_coding` decodes (httpx would also offer
#: br and zstd when their packages happen to be installed).
_ACCEPT_ENCODING = "gzip, deflate"


@define(frozen=True, kw_only=True)
class FetchRecord:
    """What one HTTP fetch did; handed to ``on_fetch`` (the engine turns it into an event).

    ``code`` is None when a CRL was fetched and parsed. ``kept_cached`` says the
    cached CRL stayed in use (the fetch failed, or brought an older CRL).
    """

    url: str
    at: dt.datetime
    code: FailureCode | None
    detail: str
    status: int | None
    size: int
    kept_cached: bool
    crl_number: int | None = None


def check_crl_url(url: str) -> httpx.URL:
    """Parse a CDP URL; anything but ``http://host[:port]/...`` is ``crl_url_unsupported``.

    Every handshake asks about the same few URLs: the answer (a URL or the
    refusal) is remembered per string; parsing one is ~8 us.
    """
    answer = _checked_url(url)
    if isinstance(answer, tuple):
        raise ValidationFailed(*answer) from None
    return answer


@functools.lru_cache(maxsize=256)
def _checked_url(url: str) -> httpx.URL | tuple[FailureCode, str]:
    try:
        return _parse_crl_url(url)
    except ValidationFailed as exc:
        return exc.code, exc.detail


def _parse_crl_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValidationFailed(
            FailureCode.CRL_URL_UNSUPPORTED, f"{url!r} is not a valid URL ({exc})"
        ) from None
    scheme = parsed.scheme.lower()
    if scheme == "https":
        raise ValidationFailed(
            FailureCode.CRL_URL_UNSUPPORTED,
            f"{url}: https:// CRL locations are not fetched; the certificate requirements "
            "ask for an http:// CRL Distribution Point (a CRL is signed, so it needs no TLS)",
        )
    if scheme != "http":
        raise ValidationFailed(
            FailureCode.CRL_URL_UNSUPPORTED,
            f"{url}: {scheme or 'no'} scheme; only http:// CRL locations are fetched",
        )
    if not parsed.host:
        raise ValidationFailed(FailureCode.CRL_URL_UNSUPPORTED, f"{url}: the URL names no host")
    return parsed


class _Entry:
    __slots__ = ("index", "refresh", "checked")

    def __init__(self, index: CrlIndex) -> None:
        self.index = index
        self.refresh = False
        #: Issuer keys (SPKI DER) this CRL's signature has been checked against.
        self.checked: set[bytes] = set()


class _Flight:
    """One fetch in progress; ``result`` stays None if its task was cancelled."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: CrlIndex | ValidationFailed | None = None


class _Exchange:
    """One HTTP exchange in progress, joined by every fetcher that asks the same meanwhile.

    ``progress`` is the leading fetch's, live (a joiner whose own deadline
    passes reports how far the exchange had got). ``answered`` turns true once
    the whole body is in: what follows is parsing, which no deadline covers.
    ``result`` stays None if the leading task was cancelled (or crashed);
    ``timed_out`` says the result is the leader's own deadline passing.
    """

    __slots__ = ("done", "progress", "answered", "result", "timed_out")

    def __init__(self, progress: _Progress) -> None:
        self.done = trio.Event()
        self.progress = progress
        self.answered = False
        self.result: CrlIndex | ValidationFailed | None = None
        self.timed_out = False


#: The exchanges in flight in this ``trio.run``, by route: (URL, proxy,
#: trust_env, timeout, size cap). Per run, so an Event of another run (tests
#: make many) is never awaited, and nothing outlives the run.
_EXCHANGES: trio.lowlevel.RunVar[dict[tuple[object, ...], _Exchange]] = trio.lowlevel.RunVar(
    "mesh.crl_fetch.exchanges"
)


def _exchanges() -> dict[tuple[object, ...], _Exchange]:
    try:
        return _EXCHANGES.get()
    except LookupError:
        table: dict[tuple[object, ...], _Exchange] = {}
        _EXCHANGES.set(table)
        return table


class _Progress:
    """How far one fetch got, for its :class:`FetchRecord`."""

    __slots__ = ("status", "size")

    def __init__(self) -> None:
        self.status: int | None = None
        self.size = 0


class CrlFetcher:
    """Fetch, parse and cache CRLs by URL for one appliance (or one process).

    Args:
        now: the emulated clock; freshness is judged by it.
        proxy: an ``http://host:port`` forwarding proxy for every fetch.
        timeout: seconds one fetch may take from connect to the last body byte.
        max_bytes: a body larger than this is refused as ``crl_invalid``.
        trust_env: honour ``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` when no
            ``proxy`` is given (read when the first fetch is made).
        on_fetch: called with a :class:`FetchRecord` after every HTTP fetch.
    """

    def __init__(
        self,
        *,
        now: Callable[[], dt.datetime],
        proxy: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        trust_env: bool = True,
        on_fetch: Callable[[FetchRecord], None] | None = None,
    ) -> None:
        if proxy is not None:
            proxy = _check_proxy(proxy)
        if not timeout > 0:
            raise ValueError(f"CRL fetch timeout must be positive, not {timeout!r}")
        if max_bytes < 1:
            raise ValueError(f"CRL size cap must be positive, not {max_bytes!r}")
        self.now = now
        self.proxy = proxy
        self.timeout = float(timeout)
        self.max_bytes = int(max_bytes)
        self.trust_env = trust_env
        self.on_fetch = on_fetch
        #: HTTP fetches made (not cache hits), our own requests and joined
        #: exchanges alike: what "one fetch per URL" counts per appliance.
        self.fetches = 0
        self._cache: dict[str, _Entry] = {}
        self._flights: dict[str, _Flight] = {}
        self._http: httpx.AsyncClient | None = None

    # -- the API --

    async def get(self, url: str, *, issuer: x509.Certificate | None = None) -> CrlIndex:
        """The CRL at ``url``: cached if current, else fetched (once, however many ask).

        Args:
            url: the CRL Distribution Point URL.
            issuer: the certificate that should have signed the CRL, when the
                caller knows it: the signature is then checked off the event
                loop for big CRLs, and guards the cache (see the module notes).

        Raises:
            ValidationFailed: ``crl_url_unsupported``, ``crl_unreachable``
                (also when it timed out), ``crl_http_error`` or ``crl_invalid``, when no
                current cached CRL can stand in.
        """
        entry = self._cache.get(url)
        if entry is None or entry.refresh or not self._current(entry.index):
            check_crl_url(url)  # only URLs that passed it are ever cached
        while True:
            entry = self._cache.get(url)
            if entry is not None and not entry.refresh and self._current(entry.index):
                index = entry.index
                break
            flight = self._flights.get(url)
            if flight is None:
                index = await self._lead(url, issuer)
                break
            await flight.done.wait()
            result = flight.result
            if result is None:
                continue  # the fetching task was cancelled: fetch it ourselves
            if isinstance(result, ValidationFailed):
                raise ValidationFailed(result.code, result.detail)
            index = result
            break
        if issuer is not None:
            await self._check_signature(url, index, issuer)
        return index

    async def prefetch(
        self,
        urls: Iterable[str],
        *,
        issuers: Mapping[str, x509.Certificate] | None = None,
    ) -> CrlLookup:
        """Fetch every URL concurrently; the outcomes as a lookup for the sans-IO core.

        The lookup (``mesh.validation.revocation.crl_lookup``) answers a URL
        that was not prefetched with ``crl_unreachable``: it fails closed.
        ``issuers`` maps a URL to the certificate that should sign its CRL.
        """
        issuers = issuers or {}
        urls = list(dict.fromkeys(urls))
        results: dict[str, CrlIndex | ValidationFailed] = {}
        # Fast path, the common case on the connection path: every URL is
        # cached, current and (given its issuer) already signature-checked.
        # No nursery, no task per URL; one checkpoint keeps this a trio
        # checkpoint like the slow path.
        now = self.now()
        for url in urls:
            entry = self._cache.get(url)
            if entry is None or entry.refresh or not self._current(entry.index, now):
                break
            issuer = issuers.get(url)
            if issuer is not None and _key_id(issuer) not in entry.checked:
                break
            results[url] = entry.index
        else:
            await trio.lowlevel.checkpoint()
            return crl_lookup(results)
        results.clear()

        async def one(url: str) -> None:
            try:
                results[url] = await self.get(url, issuer=issuers.get(url))
            except ValidationFailed as exc:
                results[url] = exc

        async with trio.open_nursery() as nursery:
            for url in urls:
                nursery.start_soon(one, url)
        return crl_lookup(results)

    def ready(self, url: str) -> CrlIndex | None:
        """The CRL :meth:`get` would answer for ``url`` without fetching, else None.

        Cached, current by the emulated clock and not marked for refresh: a
        caller can judge from memory and fall back to :meth:`prefetch` only
        when this is None (the engine's connection path, see ``PeerChecker``).
        """
        entry = self._cache.get(url)
        if entry is None or entry.refresh or not self._current(entry.index):
            return None
        return entry.index

    def cached(self, url: str) -> CrlIndex | None:
        """The cached CRL for ``url`` (current or not), without fetching."""
        entry = self._cache.get(url)
        return entry.index if entry is not None else None

    def invalidate(self, url: str | None = None) -> None:
        """Ask for a refresh of ``url`` (every URL when None) at the next :meth:`get`.

        The cached CRL stays in use if the refresh fails or brings an older CRL.
        """
        entries = self._cache.values() if url is None else filter(None, [self._cache.get(url)])
        for entry in entries:
            entry.refresh = True

    def clear(self, url: str | None = None) -> None:
        """Forget cached CRLs outright (``url`` or all)."""
        if url is None:
            self._cache.clear()
        else:
            self._cache.pop(url, None)

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def __aenter__(self) -> CrlFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- single flight and cache rules --

    def _current(self, index: CrlIndex, now: dt.datetime | None = None) -> bool:
        return not index.is_stale(self.now() if now is None else now)

    async def _lead(self, url: str, issuer: x509.Certificate | None) -> CrlIndex:
        flight = _Flight()
        self._flights[url] = flight
        try:
            progress = _Progress()
            try:
                fetched = await self._fetch(url, progress)
                signed = None
                if issuer is not None:
                    signed = await _signed_by(fetched, issuer)
            except ValidationFailed as exc:
                result: CrlIndex | ValidationFailed = self._failed(url, exc, progress)
            else:
                result = self._fetched(url, fetched, progress, issuer=issuer, signed=signed)
            flight.result = result
        finally:
            del self._flights[url]
            flight.done.set()
        if isinstance(result, ValidationFailed):
            raise result
        return result

    def _failed(
        self, url: str, exc: ValidationFailed, progress: _Progress
    ) -> CrlIndex | ValidationFailed:
        entry = self._cache.get(url)
        keep = entry is not None and self._current(entry.index)
        self._record(url, code=exc.code, detail=exc.detail, status=progress.status,
                     size=progress.size, kept_cached=keep)
        if keep:
            assert entry is not None
            entry.refresh = False  # one refresh was asked for; try again at nextUpdate
            return entry.index
        # A fresh exception, without the traceback of the fetch (whose frames
        # held the body): this one is kept by the flight and its waiters.
        return ValidationFailed(exc.code, exc.detail)

    def _fetched(
        self,
        url: str,
        index: CrlIndex,
        progress: _Progress,
        *,
        issuer: x509.Certificate | None,
        signed: bool | None,
    ) -> CrlIndex:
        """Decide what a fetched CRL replaces. ``signed``: by ``issuer`` (None: unknown)."""
        now = self.now()
        entry = self._cache.get(url)
        keep = (
            entry is not None
            and self._current(entry.index, now)
            and (index.is_stale(now) or not _newer(index, entry.index) or signed is False)
        )
        self._record(url, code=None, detail="", status=progress.status, size=progress.size,
                     kept_cached=keep, crl_number=index.number)
        if keep:
            assert entry is not None
            entry.refresh = False
            return entry.index
        if self._current(index, now):
            fresh = self._cache[url] = _Entry(index)
            if issuer is not None:
                fresh.checked.add(_key_id(issuer))
        else:
            # Stale on arrival: hand it to the core (which reports crl_stale)
            # but do not cache it, so the next get asks again.
            self._cache.pop(url, None)
        return index

    async def _check_signature(
        self, url: str, index: CrlIndex, issuer: x509.Certificate
    ) -> None:
        """Make sure ``index.signed_by(issuer)`` is answered from memory from now on."""
        entry = self._cache.get(url)
        if entry is None or entry.index is not index:
            await _signed_by(index, issuer)  # not cached (stale on arrival): no memo to keep
            return
        key = _key_id(issuer)
        if key not in entry.checked:
            await _signed_by(index, issuer)
            entry.checked.add(key)

    def _record(
        self, url: str, *, code: FailureCode | None, detail: str, status: int | None, size: int,
        kept_cached: bool, crl_number: int | None = None,
    ) -> None:
        if self.on_fetch is not None:
            self.on_fetch(FetchRecord(
                url=url, at=self.now(), code=code, detail=detail, status=status, size=size,
                kept_cached=kept_cached, crl_number=crl_number,
            ))

    # -- HTTP --

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                proxy=self.proxy,
                trust_env=self.trust_env,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                # No pooled connections: fetches are rare, and a CRL server that
                # went down and came back must not meet a dead kept-alive socket.
                limits=httpx.Limits(max_keepalive_connections=0),
                # Only used if the proxy itself is https://; sharing one context
                # saves ~20 ms per fetcher (httpx would load the CA bundle again).
                verify=_tls_context(),
            )
        return self._http

    async def _fetch(self, url: str, progress: _Progress) -> CrlIndex:
        """One HTTP exchange for ``url``: our own, or one in flight by the same route.

        Joining is "as if our own request had reached the server now": the
        same bytes or the same failure, within our own deadline. If our
        deadline passes first we time out as our own request would; if the
        exchange timed out at its (earlier) deadline, ours would still be
        waiting, so we wait out our own before failing the same way; if its
        task was cancelled, we make the request ourselves, within what is
        left of our deadline.
        """
        self.fetches += 1
        deadline = trio.current_time() + self.timeout
        key = (url, self.proxy, self.trust_env, self.timeout, self.max_bytes)
        exchanges = _exchanges()
        while (shared := exchanges.get(key)) is not None:
            with trio.move_on_at(deadline):
                await shared.done.wait()
            if not shared.done.is_set() and shared.answered:
                await shared.done.wait()  # the body is in; parsing is not timed
            if not shared.done.is_set():
                progress.status, progress.size = shared.progress.status, shared.progress.size
                raise self._timed_out(url, complete=progress.status is not None)
            result = shared.result
            if result is None:
                continue  # its task was cancelled: make the request ourselves
            progress.status, progress.size = shared.progress.status, shared.progress.size
            if isinstance(result, ValidationFailed):
                if shared.timed_out:
                    await trio.sleep_until(deadline)
                raise ValidationFailed(result.code, result.detail)
            return result
        shared = exchanges[key] = _Exchange(progress)
        try:
            try:
                index = await self._exchange(url, progress, deadline, shared)
            except ValidationFailed as exc:
                shared.result = ValidationFailed(exc.code, exc.detail)  # no traceback kept
                raise
            shared.result = index
            return index
        finally:
            if exchanges.get(key) is shared:
                del exchanges[key]
            shared.done.set()

    async def _exchange(
        self, url: str, progress: _Progress, deadline: float, shared: _Exchange
    ) -> CrlIndex:
        via = f" via proxy {self.proxy}" if self.proxy else ""
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
                    if declared.isdigit() and int(declared) > self.max_bytes:
                        raise self._too_big(url, int(declared))
                    await self._read_body(url, response, progress, chunks)
        except httpx.TimeoutException as exc:
            chunks.clear()
            shared.timed_out = True
            # A server that never answers is, to the operator, a CRL location
            # that is not reachable: the source document's message; the detail
            # says it timed out.
            raise ValidationFailed(
                FailureCode.CRL_UNREACHABLE,
                f"{url}{via}: timed out, no answer within {self.timeout:g} s ({_why(exc)})",
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
            shared.timed_out = True
            raise self._timed_out(url, complete=True)
        shared.answered = True
        parse = functools.partial(_parse, chunks, url)
        if progress.size > _THREAD_PARSE_BYTES:
            return await trio.to_thread.run_sync(parse)
        return parse()

    async def _read_body(
        self, url: str, response: httpx.Response, progress: _Progress, chunks: list[bytes]
    ) -> None:
        """Read the raw body into ``chunks``, decoded here under the size cap.

        The cap bounds the bytes on the wire and every decoding layer's output
        as it is produced (see :mod:`mesh.net.content_coding`): a compression
        bomb stops at the cap, not after inflating.
        """
        try:
            decoder = BodyDecoder(
                response.headers.get_list("content-encoding", split_commas=True), self.max_bytes
            )
            raw_size = 0
            # httpx annotates aiter_raw as an AsyncIterator; it is an async generator (aclose).
            async with contextlib.aclosing(response.aiter_raw()) as received:  # type: ignore[type-var]
                async for raw in received:
                    raw_size += len(raw)
                    if raw_size > self.max_bytes:
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
        via = f" via proxy {self.proxy}" if self.proxy else ""
        return ValidationFailed(
            FailureCode.CRL_UNREACHABLE,
            f"{url}{via}: timed out, no {'complete ' if complete else ''}answer "
            f"within {self.timeout:g} s",
        )

    def _too_big(self, url: str, size: int) -> ValidationFailed:
        return ValidationFailed(
            FailureCode.CRL_INVALID,
            f"{url}: body of {size} bytes or more exceeds the {self.max_bytes}-byte CRL size cap",
        )


#: Parsed CRLs by (URL, SHA-256 of the body), shared by every fetcher in the
#: process while any of them holds one: a thousand sensors fetching the same
#: CRL keep one parsed copy, not a thousand. Each fetcher still fetches and
#: decides for itself; a CrlIndex is immutable (its signature memo is keyed
#: by the issuer), so sharing it changes no verdict.
_PARSED: weakref.WeakValueDictionary[tuple[str, bytes], CrlIndex] = weakref.WeakValueDictionary()


def _parse(chunks: list[bytes], url: str) -> CrlIndex:
    # The join happens here, in the worker thread for big bodies: CPython
    # drops the GIL while joining large bytes, so a 37 MiB copy (about 70 ms
    # of page faults) does not stall the event loop.
    body = b"".join(chunks)
    chunks.clear()
    key = (url, hashlib.sha256(body).digest())
    index = _PARSED.get(key)
    if index is None:
        try:
            index = _PARSED[key] = CrlIndex.from_bytes(body, source=url)
        except ValidationFailed as exc:
            failure = ValidationFailed(exc.code, exc.detail)
        else:
            return index
        # Raised afresh, with the body dropped: the parser's traceback (kept
        # by whoever holds the failure) would keep the whole body alive.
        del body
        raise failure
    return index


async def _signed_by(index: CrlIndex, issuer: x509.Certificate) -> bool:
    """``index.signed_by(issuer)`` (memoised by the index), big CRLs in a worker thread."""
    if len(index) > _THREAD_SIGNATURE_ENTRIES:
        return await trio.to_thread.run_sync(index.signed_by, issuer)
    return index.signed_by(issuer)


def _key_id(cert: x509.Certificate) -> bytes:
    return public_key_der(cert.public_key())


def _newer(new: CrlIndex, old: CrlIndex) -> bool:
    """Is ``new`` a later version than ``old``? CRL number first, thisUpdate second."""
    if new.number is not None and old.number is not None and new.number != old.number:
        return new.number > old.number
    return new.this_update > old.this_update


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


def _check_proxy(proxy: str) -> str:
    try:
        parsed = httpx.URL(proxy)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(
            f"CRL proxy {proxy!r}",
            "is not an http:// proxy URL",
            "give it as http://HOST:PORT",
        )
    return proxy


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()
