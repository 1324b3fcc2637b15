"""The CRL fetcher: CDP URLs over plain HTTP, one fetch per URL, cached until nextUpdate.

Theory of operation. Every connection start asks for the CRL of each
certificate in the peer's path, and a mesh of thousands of sensors asks for the
same few URLs at once. So:

- **Single flight.** The first task that needs a URL fetches it; every task
  that asks meanwhile waits for that fetch's outcome (success or the same
  error). If the fetching task is cancelled, a waiter takes over: nobody is
  left waiting on an abandoned fetch. This is a
  :class:`~mesh.net.single_flight.SingleFlight` per fetcher, keyed by URL; its
  work is the whole refresh (fetch, signature, the cache rules, the record),
  and its waiters have no deadline of their own: the fetch has one.
- **One HTTP exchange per URL and route across the process**
  (:mod:`mesh.net.crl_http`): fetchers of different appliances that ask for
  the same URL by the same route while an exchange is in flight join it, each
  keeping its own deadline; the same primitive, keyed by URL and route, one
  table per ``trio.run``. Everything else stays per fetcher.
- **Cache until nextUpdate; a good CRL is not given up for a worse one;
  republishing is explicit** (:mod:`mesh.net.crl_cache`).
- **Big CRLs are handled in a worker thread** (:mod:`mesh.net.crl_parse`).
- **Only trusted paths cause fetches.** The fetcher fetches what it is asked
  for; the engine asks for what ``mesh.validation.crl_urls`` names, which is
  nothing for a chain that does not lead to a trust anchor, so a stranger's
  certificate cannot make an appliance fetch URLs of its choosing.

Which URLs are fetched at all is :mod:`mesh.net.crl_url` (plain ``http://``
only); this module re-exports its :func:`check_crl_url`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Callable, Iterable, Mapping

import trio
from attrs import define
from cryptography import x509

from mesh.errors import FailureCode, ValidationFailed
from mesh.net.crl_cache import CrlCache
from mesh.net.crl_http import CrlHttp, Route
from mesh.net.crl_parse import signed_by
from mesh.net.crl_store import CrlStore
from mesh.net.crl_url import check_crl_url, check_proxy
from mesh.net.single_flight import Flight, SingleFlight
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


def _fresh(exc: BaseException) -> ValidationFailed:
    """The same failure without a traceback (whose frames may hold a body)."""
    assert isinstance(exc, ValidationFailed)
    return ValidationFailed(exc.code, exc.detail)


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
        store: CRLs kept on disk (:mod:`mesh.net.crl_store`): the cache starts
            with them, each marked for refresh, and every CRL cached is saved.
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
        store: CrlStore | None = None,
    ) -> None:
        if proxy is not None:
            proxy = check_proxy(proxy)
        if not timeout > 0:
            raise ValueError(f"CRL fetch timeout must be positive, not {timeout!r}")
        if max_bytes < 1:
            raise ValueError(f"CRL size cap must be positive, not {max_bytes!r}")
        self.now = now
        self.on_fetch = on_fetch
        #: HTTP fetches made (not cache hits), our own requests and joined
        #: exchanges alike: what "one fetch per URL" counts per appliance.
        self.fetches = 0
        self._cache = CrlCache(now)
        self._store = store
        if store is not None:
            for url, index in store.load().items():
                self._cache.take(url, index, issuer=None)
            self._cache.invalidate()  # refetched at first use; kept if that fails
        self._http = CrlHttp(
            Route(proxy=proxy, trust_env=trust_env, timeout=float(timeout), max_bytes=int(max_bytes))
        )
        self._flights: SingleFlight[str, CrlIndex] = SingleFlight(
            shares=ValidationFailed, fresh=_fresh
        )

    @property
    def proxy(self) -> str | None:
        return self._http.route.proxy

    @property
    def timeout(self) -> float:
        return self._http.route.timeout

    @property
    def max_bytes(self) -> int:
        return self._http.route.max_bytes

    @property
    def trust_env(self) -> bool:
        return self._http.route.trust_env

    # -- the API --

    async def get(self, url: str, *, issuer: x509.Certificate | None = None) -> CrlIndex:
        """The CRL at ``url``: cached if current, else fetched (once, however many ask).

        Args:
            url: the CRL Distribution Point URL.
            issuer: the certificate that should have signed the CRL, when the
                caller knows it: the signature is then checked off the event
                loop for big CRLs, and guards the cache (see :mod:`mesh.net.crl_cache`).

        Raises:
            ValidationFailed: ``crl_url_unsupported``, ``crl_unreachable``
                (also when it timed out), ``crl_http_error`` or ``crl_invalid``, when no
                current cached CRL can stand in.
        """
        index = self._cache.ready(url)
        if index is None:
            check_crl_url(url)  # only URLs that passed it are ever cached
            index = await self._flights.run(url, functools.partial(self._refresh, url, issuer))
        if issuer is not None:
            await self._cache.check_signature(url, index, issuer)
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
        # Fast path, the common case on the connection path: every URL is
        # cached, current and (given its issuer) already signature-checked.
        # No nursery, no task per URL; one checkpoint keeps this a trio
        # checkpoint like the slow path.
        known = self._cache.ready_all(urls, issuers)
        if known is not None:
            await trio.lowlevel.checkpoint()
            return crl_lookup(known)
        results: dict[str, CrlIndex | ValidationFailed] = {}

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
        return self._cache.ready(url)

    def cached(self, url: str) -> CrlIndex | None:
        """The cached CRL for ``url`` (current or not), without fetching."""
        return self._cache.cached(url)

    def invalidate(self, url: str | None = None) -> None:
        """Ask for a refresh of ``url`` (every URL when None) at the next :meth:`get`.

        The cached CRL stays in use if the refresh fails or brings an older CRL.
        """
        self._cache.invalidate(url)

    def clear(self, url: str | None = None) -> None:
        """Forget cached CRLs outright (``url`` or all)."""
        self._cache.clear(url)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CrlFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- one refresh --

    async def _refresh(
        self, url: str, issuer: x509.Certificate | None, flight: Flight
    ) -> CrlIndex:
        """Fetch ``url`` and apply the cache rules: the work of this fetcher's single flight.

        The tasks of this fetcher that ask meanwhile wait for this outcome, the
        CRL in use or the same error. If this task is cancelled, one of them
        runs this instead.
        """
        index = self._cache.ready(url)
        if index is not None:
            return index  # a waiter taking over asks later than get() did: as get() would now
        self.fetches += 1
        exchanged = await self._http.exchange(url)
        fetched = exchanged.result
        if isinstance(fetched, ValidationFailed):
            kept = self._cache.standing(url)
            self._record(url, code=fetched.code, detail=fetched.detail, status=exchanged.status,
                         size=exchanged.size, kept_cached=kept is not None)
            if kept is None:
                # A fresh exception, without the traceback of the fetch (whose
                # frames held the body); the flight keeps a copy for its waiters.
                raise ValidationFailed(fetched.code, fetched.detail)
            return self._cache.keep(url)  # try again at nextUpdate
        signed = None
        if issuer is not None:
            signed = await signed_by(fetched, issuer)
        now = self.now()
        kept = self._cache.standing(url, fetched, signed=signed, now=now)
        self._record(url, code=None, detail="", status=exchanged.status, size=exchanged.size,
                     kept_cached=kept is not None, crl_number=fetched.number)
        if kept is not None:
            return self._cache.keep(url)
        self._cache.take(url, fetched, issuer=issuer, now=now)
        if self._store is not None and self._cache.cached(url) is fetched:
            self._store.save(url, fetched)
        return fetched

    def _record(
        self, url: str, *, code: FailureCode | None, detail: str, status: int | None, size: int,
        kept_cached: bool, crl_number: int | None = None,
    ) -> None:
        if self.on_fetch is not None:
            self.on_fetch(FetchRecord(
                url=url, at=self.now(), code=code, detail=detail, status=status, size=size,
                kept_cached=kept_cached, crl_number=crl_number,
            ))
