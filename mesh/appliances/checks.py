"""How one appliance judges a certificate: fetch the CRLs it names, then validate.

The I/O half of validation for one appliance: its own :class:`CrlFetcher`
(with its own proxy and cache, as each real appliance has), the events that
fetching produces, and the call into the pure core, ``validate_peer``, at the
emulated clock's instant. The same path serves a peer at connection start and
a certificate at upload.
"""

from __future__ import annotations

from typing import Sequence

import trio
from cryptography import x509

from mesh.clock import EmulatedClock
from mesh.errors import FailureCode, ValidationFailed
from mesh.eventlog import EventLog
from mesh.events import CrlFetched, CrlFetchFailed
from mesh.net.crl_fetch import CrlFetcher, FetchRecord
from mesh.net.crl_store import CrlStore
from mesh.validation.finding import Finding
from mesh.validation.policy import ValidationPolicy
from mesh.upload import UploadMaterial, judge_upload
from mesh.validation.revocation import CrlIndex, CrlLookup, crl_lookup
from mesh.validation.verdict import verifier_for
from mesh.validation.verdict import Verdict, crl_urls, validate_peer

__all__ = ["PeerChecker"]


class _NotCached(Exception):
    """A CRL the cache cannot answer: the judgement from memory stops here.

    Raised by the lookup :meth:`PeerChecker.check` hands the core; the core
    catches only ``ValidationFailed`` from a lookup, so this ends the call.
    """


class PeerChecker:
    """Validates chains for one appliance, at the emulated time, with its CRL cache."""

    def __init__(
        self,
        name: str,
        *,
        clock: EmulatedClock,
        events: EventLog,
        proxy: str | None = None,
        crl_timeout: float = 5.0,
        crl_store: CrlStore | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.events = events
        self.fetcher = CrlFetcher(
            now=clock.now,
            proxy=proxy,
            timeout=crl_timeout,
            trust_env=False,
            on_fetch=self._on_fetch,
            store=crl_store,
        )
        #: Has a prefetch run yet? Until then, judging from memory only misses.
        self._fetched = False

    def _on_fetch(self, record: FetchRecord) -> None:
        at = self.clock.now()
        if record.code is None:
            self.events.append(
                CrlFetched(
                    at=at,
                    appliance=self.name,
                    url=record.url,
                    number=record.crl_number,
                    size=record.size,
                    kept_cached=record.kept_cached,
                )
            )
        else:
            self.events.append(
                CrlFetchFailed(
                    at=at, appliance=self.name, url=record.url, code=record.code, detail=record.detail
                )
            )

    async def check(
        self,
        chain: Sequence[x509.Certificate],
        *,
        trust: Sequence[x509.Certificate],
        policy: ValidationPolicy,
        crl_files: Sequence[CrlIndex] = (),
    ) -> Verdict:
        """Fetch what the chain's CDPs name, then judge it at the emulated instant.

        ``crl_files``: the appliance's configured CRLs; their issuers'
        certificates are judged against them and nothing is fetched for them.

        With validation off (``policy.enabled`` False) the checks still run so
        the verdict lists what would have failed; the CRLs are fetched too.
        """
        if not chain:
            finding = Finding(
                code=FailureCode.CHAIN_UNTRUSTED, detail="the peer presented no certificate"
            )
            return Verdict.judge([finding], enabled=policy.enabled)
        # First from memory: validate_peer asks for exactly the CRLs of the
        # trusted path, so if the cache answers every one of them the verdict
        # is the one a prefetch would have led to. The first URL it cannot
        # answer (nothing cached, stale, or marked for refresh) ends that
        # pass at once, before any finding about it is built (a step that
        # republishes CRLs would otherwise judge every link twice); the URLs
        # are then gathered and fetched, and the chain judged with the fresh
        # lookup. This saves a second path build and a task per URL on every
        # connection. Before the first fetch the memory cannot answer: go
        # straight to it (a sensor's first link would otherwise be judged twice).
        if not self._fetched:
            return await self._fetch_and_judge(chain, trust=trust, policy=policy, crl_files=crl_files)
        ready = self.fetcher.ready

        def from_memory(url: str) -> CrlIndex:
            index = ready(url)
            if index is None:
                raise _NotCached(url)
            return index

        try:
            verdict = validate_peer(
                chain, trust=trust, at=self.clock.now(), crls=from_memory, policy=policy,
                crl_files=crl_files,
            )
        except _NotCached:
            return await self._fetch_and_judge(chain, trust=trust, policy=policy, crl_files=crl_files)
        await trio.lowlevel.checkpoint()
        return verdict

    async def _fetch_and_judge(
        self,
        chain: Sequence[x509.Certificate],
        *,
        trust: Sequence[x509.Certificate],
        policy: ValidationPolicy,
        crl_files: Sequence[CrlIndex] = (),
    ) -> Verdict:
        at = self.clock.now()
        urls = crl_urls(chain, trust, at=at, policy=policy, crl_files=crl_files)
        lookup = await self.fetcher.prefetch(urls)
        self._fetched = True
        return validate_peer(
            chain, trust=trust, at=self.clock.now(), crls=lookup, policy=policy, crl_files=crl_files
        )

    async def judge_upload(
        self,
        material: UploadMaterial,
        *,
        policy: ValidationPolicy,
        crl_files: Sequence[CrlIndex] = (),
    ) -> Verdict:
        """An upload to this appliance: its CRLs fetched (or cached), then
        :func:`mesh.upload.judge_upload`, the one judgement every upload path uses."""
        verifier = verifier_for(material.anchors, policy, crl_files)
        at = self.clock.now()
        crls: CrlLookup = crl_lookup({})
        if policy.enabled:
            crls = await self.fetcher.prefetch(verifier.crl_urls(material.presented, at=at))
            self._fetched = True
        return judge_upload(material, verifier=verifier, at=self.clock.now(), crls=crls)

    def invalidate(self, url: str | None = None) -> None:
        """Refresh cached CRLs at the next check (a CRL was republished)."""
        self.fetcher.invalidate(url)

    async def aclose(self) -> None:
        await self.fetcher.aclose()

