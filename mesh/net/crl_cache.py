"""One fetcher's CRLs by URL, and the rules for what a refresh may replace.

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

Each entry also remembers which issuer keys its CRL's signature was checked
against, so the connection path asks ``CrlIndex.signed_by`` only what it
already knows (:mod:`mesh.net.crl_parse` checks it, off the loop when big).

A refresh is settled in three steps, so that the fetcher can record what was
decided before the cache changes: :meth:`CrlCache.standing` decides, the
fetcher records, then :meth:`CrlCache.keep` or :meth:`CrlCache.take` applies.
(``CrlFetcher`` here is :class:`mesh.net.crl_fetch.CrlFetcher`.)
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable, Mapping

from cryptography import x509

from mesh.net.crl_parse import signed_by
from mesh.validation.chain import public_key_der
from mesh.validation.revocation import CrlIndex

__all__ = ["CrlCache"]


class _Entry:
    __slots__ = ("index", "refresh", "checked")

    def __init__(self, index: CrlIndex) -> None:
        self.index = index
        self.refresh = False
        #: Issuer keys (SPKI DER) this CRL's signature has been checked against.
        self.checked: set[bytes] = set()


class CrlCache:
    """CRLs by URL for one fetcher, current by the emulated clock ``now``."""

    def __init__(self, now: Callable[[], dt.datetime]) -> None:
        self.now = now
        self._entries: dict[str, _Entry] = {}

    # -- what is known --

    def ready(self, url: str) -> CrlIndex | None:
        """The CRL for ``url`` if cached, current and not marked for refresh, else None."""
        entry = self._entries.get(url)
        if entry is None or entry.refresh or not self._current(entry.index):
            return None
        return entry.index

    def ready_all(
        self, urls: Iterable[str], issuers: Mapping[str, x509.Certificate]
    ) -> dict[str, CrlIndex] | None:
        """Every URL's CRL from memory, each ready and checked against its issuer; else None."""
        results: dict[str, CrlIndex] = {}
        now = self.now()
        for url in urls:
            entry = self._entries.get(url)
            if entry is None or entry.refresh or not self._current(entry.index, now):
                return None
            issuer = issuers.get(url)
            if issuer is not None and _key_id(issuer) not in entry.checked:
                return None
            results[url] = entry.index
        return results

    def cached(self, url: str) -> CrlIndex | None:
        """The cached CRL for ``url`` (current or not)."""
        entry = self._entries.get(url)
        return entry.index if entry is not None else None

    # -- what changes it --

    def invalidate(self, url: str | None = None) -> None:
        """Mark ``url`` (every URL when None) for one refresh."""
        entries = self._entries.values() if url is None else filter(None, [self._entries.get(url)])
        for entry in entries:
            entry.refresh = True

    def clear(self, url: str | None = None) -> None:
        """Forget cached CRLs outright (``url`` or all)."""
        if url is None:
            self._entries.clear()
        else:
            self._entries.pop(url, None)

    def standing(
        self,
        url: str,
        fetched: CrlIndex | None = None,
        *,
        signed: bool | None = None,
        now: dt.datetime | None = None,
    ) -> CrlIndex | None:
        """The cached CRL that stays in use against a refresh, or None if it gives way.

        ``fetched``: what the refresh brought (None: it failed); ``signed``: by
        the issuer the caller named (None: unknown).
        """
        now = self.now() if now is None else now
        entry = self._entries.get(url)
        if entry is None or not self._current(entry.index, now):
            return None
        if fetched is None:
            return entry.index
        if fetched.is_stale(now) or not _newer(fetched, entry.index) or signed is False:
            return entry.index
        return None

    def keep(self, url: str) -> CrlIndex:
        """The standing CRL answered a refresh: no other until nextUpdate or an invalidate."""
        entry = self._entries[url]
        entry.refresh = False
        return entry.index

    def take(
        self,
        url: str,
        index: CrlIndex,
        *,
        issuer: x509.Certificate | None,
        now: dt.datetime | None = None,
    ) -> None:
        """``index`` replaces what was cached; ``issuer`` (if any) is known to have signed it."""
        if self._current(index, now):
            fresh = self._entries[url] = _Entry(index)
            if issuer is not None:
                fresh.checked.add(_key_id(issuer))
        else:
            # Stale on arrival: handed to the core (which reports crl_stale)
            # but not cached, so the next get asks again.
            self._entries.pop(url, None)

    async def check_signature(self, url: str, index: CrlIndex, issuer: x509.Certificate) -> None:
        """Make sure ``index.signed_by(issuer)`` is answered from memory from now on."""
        entry = self._entries.get(url)
        if entry is None or entry.index is not index:
            await signed_by(index, issuer)  # not cached (stale on arrival): no memo to keep
            return
        key = _key_id(issuer)
        if key not in entry.checked:
            await signed_by(index, issuer)
            entry.checked.add(key)

    def _current(self, index: CrlIndex, now: dt.datetime | None = None) -> bool:
        return not index.is_stale(self.now() if now is None else now)


def _key_id(cert: x509.Certificate) -> bytes:
    return public_key_der(cert.public_key())


def _newer(new: CrlIndex, old: CrlIndex) -> bool:
    """Is ``new`` a later version than ``old``? CRL number first, thisUpdate second."""
    if new.number is not None and old.number is not None and new.number != old.number:
        return new.number > old.number
    return new.this_update > old.this_update
