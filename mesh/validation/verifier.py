"""``Verifier(trust, policy)``: the validator object, with its profile and memos.

Shaped like pyca's ``PolicyBuilder(...).build_*()``: an object built once per
appliance (its trust anchors, its policy, its configured CRL files) that owns
what it remembers, and a pure ``verify(chain, at=..., crls=...)``.
:func:`mesh.validation.validate_peer` is a thin wrapper that keeps one
verifier per (trust, policy, CRL files) it has seen.

Profiles (``policy.validator``):

* ``"strict"`` (the default): every candidate path is searched and judged
  in full (:mod:`.paths`, :mod:`.strict`), RFC 5280's structural rules hold
  through the whole path (:mod:`.structure`), and CRLs are processed
  completely (:mod:`.crl_rules`).
* ``"openssl"``: what a stock OpenSSL-based appliance accepts — OpenSSL's
  first path, no strict checks, the CRL rules of mesh 0.1
  (:mod:`.openssl_profile`). Its verdicts are exactly those mesh gave before
  the strict profile existed.

Memo: the path chosen for a presented chain depends on the chain, on the
trust and policy (fixed per verifier) and, once expired candidates are
skipped, on which certificates are within their validity at the instant
judged. So results are remembered per chain (by object identity, see
:mod:`.memo`) and, under it, per validity pattern: a repeat peer costs a
lookup, and a certificate expiring moves the result to a new entry.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Mapping, Sequence, Union

from cryptography import x509

from mesh.errors import FailureCode, Severity, ValidationFailed
from mesh.validation.chain import FirstPath, is_self_issued, malformation
from mesh.validation.finding import Finding
from mesh.validation.memo import MEMO_SIZE, IdentityMemo
from mesh.validation.openssl_profile import openssl_crl_urls, openssl_verdict
from mesh.validation.paths import candidate_paths
from mesh.validation.period import as_utc
from mesh.validation.policy import DEFAULT_POLICY, ValidationPolicy
from mesh.validation.revocation import (
    ConfiguredCrls,
    CrlIndex,
    CrlLookup,
    cdp_urls,
    check_path_revocation,
    crl_lookup,
)
from mesh.validation.strict import Judged, StrictChecker, well_formed
from mesh.validation.verdict import Verdict, dedupe

__all__ = ["Verifier", "CrlSource", "CrlFile", "as_crl_index"]

#: A CRL given out of band: parsed, indexed, or raw DER/PEM bytes.
CrlFile = Union[CrlIndex, x509.CertificateRevocationList, bytes]

#: Where a check finds fetched CRLs: a lookup, a ``url -> CRL`` mapping, or
#: None (nothing fetched: every CDP is unreachable).
CrlSource = Union[CrlLookup, Mapping[str, "CrlIndex | ValidationFailed"], None]


def as_crl_index(crl: CrlFile) -> CrlIndex:
    """Index a CRL given in any of the accepted forms; bad bytes are ``crl_invalid``."""
    if isinstance(crl, CrlIndex):
        return crl
    if isinstance(crl, x509.CertificateRevocationList):
        return CrlIndex.from_crl(crl)
    return CrlIndex.from_bytes(bytes(crl))


def _as_lookup(crls: CrlSource) -> CrlLookup:
    if crls is None:
        return crl_lookup({})
    if callable(crls):
        return crls
    return crl_lookup(crls)


class Verifier:
    """Judges presented chains against one trust set, policy and CRL files."""

    def __init__(
        self,
        trust: Sequence[x509.Certificate],
        policy: ValidationPolicy = DEFAULT_POLICY,
        *,
        crl_files: Sequence[CrlFile] = (),
    ) -> None:
        self.trust = tuple(trust)
        self.policy = policy
        self.crl_files = ConfiguredCrls([as_crl_index(crl) for crl in crl_files])
        self._anchors = tuple(c for c in self.trust if malformation(c) is None)
        self._checker = StrictChecker()
        self._first_path = FirstPath()
        self._chosen: IdentityMemo[_Choices] = IdentityMemo(maxsize=MEMO_SIZE)
        self._lock = threading.Lock()

    @property
    def strict(self) -> bool:
        return self.policy.validator == "strict"

    def verify(
        self,
        chain: Sequence[x509.Certificate],
        *,
        at: dt.datetime,
        crls: CrlSource = None,
    ) -> Verdict:
        """Judge ``chain`` (leaf first, then any intermediates in any order) at ``at``.

        Never raises for anything the certificates or CRLs contain: every
        problem is a finding of the verdict.
        """
        at = as_utc(at)
        lookup = _as_lookup(crls)
        policy = self.policy
        if not self.strict:
            return openssl_verdict(
                chain, trust=self.trust, at=at, crls=lookup, policy=policy,
                paths=self._first_path, configured=self.crl_files,
            )
        if not chain:
            missing = Finding(
                code=FailureCode.CHAIN_UNTRUSTED, detail="no certificate was presented"
            )
            return Verdict.judge([missing], enabled=policy.enabled)
        entry = self._entry(chain)
        if entry.broken is not None:
            return Verdict.judge([entry.broken], enabled=policy.enabled)
        chosen = self._choose(entry, chain, at)
        path = chosen.candidate.path
        findings = list(chosen.findings)
        if chosen.candidate.anchored and not _untrusted(findings):
            findings += check_path_revocation(
                path, at=at, crls=lookup, policy=policy, configured=self.crl_files, strict=True
            )
        return Verdict.judge(dedupe(findings), enabled=policy.enabled, path=path)

    def crl_urls(
        self, chain: Sequence[x509.Certificate], *, at: dt.datetime | None = None
    ) -> list[str]:
        """The http:// CRL URLs :meth:`verify` will ask for, in path order.

        One per certificate of the chosen path but the anchor (and
        self-issued ones) that names an http CDP and whose issuer has no
        configured CRL file. Empty when the chain does not verify: nothing
        is fetched for a chain that is refused anyway. ``at`` matters to the
        strict profile, whose choice of path skips expired candidates; None
        chooses as if every certificate were within its dates.
        """
        if not self.strict:
            return openssl_crl_urls(
                chain, self.trust, paths=self._first_path, configured=self.crl_files
            )
        if not chain:
            return []
        entry = self._entry(chain)
        if entry.broken is not None:
            return []
        chosen = self._choose(entry, chain, None if at is None else as_utc(at))
        if not chosen.candidate.anchored or _untrusted(chosen.findings):
            return []
        path = chosen.candidate.path
        urls: list[str] = []
        for depth, cert in enumerate(path[:-1]):
            if is_self_issued(cert) or self.crl_files.for_issuer(path[depth + 1]):
                continue
            http, _ = cdp_urls(cert)
            if http and http[0] not in urls:
                urls.append(http[0])
        return urls

    def _entry(self, chain: Sequence[x509.Certificate]) -> _Choices:
        return self._chosen.get(tuple(chain), lambda: _Choices(chain, self._anchors))

    def _choose(
        self, entry: _Choices, chain: Sequence[x509.Certificate], at: dt.datetime | None
    ) -> Judged:
        window = entry.window(at)
        chosen = entry.by_window.get(window)
        if chosen is None:
            chosen = self._search(chain, at)
            with self._lock:
                if len(entry.by_window) >= 8:
                    entry.by_window.clear()
                entry.by_window[window] = chosen
        return chosen

    def _search(self, chain: Sequence[x509.Certificate], at: dt.datetime | None) -> Judged:
        candidates = candidate_paths(chain, self._anchors, max_depth=self.policy.max_depth)
        judged = [self._checker.judge(c, at=at, policy=self.policy) for c in candidates]
        return self._checker.choose(judged)


class _Choices:
    """The paths chosen for one presented chain, per validity pattern.

    Also whether every presented certificate parses. The pattern is which certificates (presented, then anchors) are within
    their dates at the instant judged; their bounds are read once here, so
    a repeat handshake compares datetimes instead of re-reading fields.
    """

    def __init__(
        self, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
    ) -> None:
        #: A presented certificate that cannot be parsed (then nothing else is judged).
        self.broken = well_formed(chain)
        self.bounds = (
            ()
            if self.broken is not None
            else tuple((c.not_valid_before_utc, c.not_valid_after_utc) for c in (*chain, *anchors))
        )
        self.by_window: dict[tuple[bool, ...], Judged] = {}

    def window(self, at: dt.datetime | None) -> tuple[bool, ...]:
        if at is None:
            return ()
        return tuple(start <= at <= end for start, end in self.bounds)


def _untrusted(findings: Sequence[Finding]) -> bool:
    return any(
        f.code is FailureCode.CHAIN_UNTRUSTED and f.severity is Severity.ERROR for f in findings
    )
