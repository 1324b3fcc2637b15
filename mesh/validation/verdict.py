"""May this certificate chain be trusted right now? ``validate_peer`` answers.

A pure function over certificate objects, trust anchors, an instant, already
fetched CRLs and a policy: no sockets, no wall clock, no trio. The engine
calls it on every handshake, the upload check once per upload.

Theory of operation: the verifier (:mod:`.chain`) builds the path first; the
other checks then run over that path (or, when it does not verify, over a
best-effort path by issuer name, so an operator still learns everything that
is wrong): validity periods, weak crypto, purpose and name of the leaf, and
revocation of every certificate but the trust anchor. Every finding is kept.

The primary finding — the one an operator reads first, and the one the
upload check prints — is the first error in this order, most basic first:

1. ``passphrase_mismatch``, ``key_unreadable``, ``key_mismatch`` (upload only:
   the files themselves)
2. ``chain_untrusted`` — nothing else matters if the chain does not lead to a
   trusted root
3. ``expired``, ``not_yet_valid`` — the dates
4. ``weak_crypto``
5. ``wrong_purpose``, ``name_mismatch`` — a good certificate, the wrong use
6. ``revoked``
7. ``crl_signature_invalid``, ``crl_stale`` — a CRL we got but cannot use
8. ``crl_unreachable``, ``crl_http_error``, ``crl_invalid``,
   ``crl_url_unsupported`` — a CRL we could not get
9. ``no_cdp``, then anything else (``validation_failed``)

Within one code the certificate nearest the leaf comes first. This is the
source document's upload order (passphrase, key, chain of trust, dates, CRL)
with the checks it does not name slotted where they are most basic.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Sequence

from attrs import define, field
from cryptography import x509

from mesh.errors import FailureCode, Severity
from mesh.validation.finding import Finding
from mesh.validation.memo import IdentityMemo
from mesh.validation.policy import DEFAULT_POLICY, ValidationPolicy
from mesh.validation.revocation import CrlLookup

if TYPE_CHECKING:  # the verifier imports this module
    from mesh.validation.verifier import CrlFile, CrlSource, Verifier

__all__ = [
    "Finding",
    "Verdict",
    "CrlLookup",
    "PRIMARY_ORDER",
    "validate_peer",
    "crl_urls",
    "sort_findings",
    "dedupe",
    "verifier_for",
]

#: The documented order, most basic first (see the module docstring).
PRIMARY_ORDER: tuple[FailureCode, ...] = (
    FailureCode.PASSPHRASE_MISMATCH,
    FailureCode.KEY_UNREADABLE,
    FailureCode.KEY_MISMATCH,
    FailureCode.CHAIN_UNTRUSTED,
    FailureCode.EXPIRED,
    FailureCode.NOT_YET_VALID,
    FailureCode.WEAK_CRYPTO,
    FailureCode.WRONG_PURPOSE,
    FailureCode.NAME_MISMATCH,
    FailureCode.REVOKED,
    FailureCode.CRL_SIGNATURE_INVALID,
    FailureCode.CRL_STALE,
    FailureCode.CRL_UNREACHABLE,
    FailureCode.CRL_HTTP_ERROR,
    FailureCode.CRL_INVALID,
    FailureCode.CRL_URL_UNSUPPORTED,
    FailureCode.NO_CDP,
    FailureCode.VALIDATION_FAILED,
)
_RANK = {code: index for index, code in enumerate(PRIMARY_ORDER)}
_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}


def _sort_key(finding: Finding) -> tuple[int, int, int]:
    return (
        _SEVERITY_RANK[finding.severity],
        _RANK.get(finding.code, len(_RANK)),
        finding.depth if finding.depth is not None else -1,
    )


def sort_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Errors first, each severity in the documented order, leaf first."""
    return tuple(sorted(findings, key=_sort_key))


@define(frozen=True, kw_only=True)
class Verdict:
    """The answer: accepted or not, and every finding, sorted (errors first).

    ``skipped``: validation was disabled; ``accepted`` is then True whatever
    the findings say, and the findings list what would have failed.
    ``path`` is the certificate path judged, leaf first (ending at the trust
    anchor when the chain verified).
    """

    accepted: bool
    findings: tuple[Finding, ...] = field(default=(), converter=sort_findings)
    skipped: bool = False
    path: tuple[x509.Certificate, ...] = ()

    @property
    def failures(self) -> tuple[Finding, ...]:
        """The errors, in the documented order."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def primary(self) -> Finding | None:
        """The first error in the documented order, or None."""
        failures = self.failures
        return failures[0] if failures else None

    @classmethod
    def judge(
        cls,
        findings: Sequence[Finding],
        *,
        enabled: bool = True,
        path: Sequence[x509.Certificate] = (),
    ) -> Verdict:
        """A verdict from findings: accepted iff no error (or validation is off)."""
        errors = any(f.severity is Severity.ERROR for f in findings)
        return cls(
            accepted=(not errors) or not enabled,
            findings=tuple(findings),
            skipped=not enabled,
            path=tuple(path),
        )

    def to_json(self) -> dict[str, Any]:
        """``valid`` is ``accepted``; ``skipped`` says whether anything was judged."""
        return {
            "valid": self.accepted,
            "skipped": self.skipped,
            "failures": [f.to_json() for f in self.failures],
            "findings": [f.to_json() for f in self.findings],
        }


def validate_peer(
    chain: Sequence[x509.Certificate],
    *,
    trust: Sequence[x509.Certificate],
    at: dt.datetime,
    crls: CrlSource | list[CrlFile] | tuple[CrlFile, ...] = None,
    policy: ValidationPolicy = DEFAULT_POLICY,
    crl_files: Sequence[CrlFile] = (),
) -> Verdict:
    """Judge a presented chain (leaf first) against ``trust`` at ``at``.

    A thin wrapper over :class:`~mesh.validation.verifier.Verifier`: it keeps
    one verifier per (trust, policy, CRL files) it has been given, so a
    caller that passes the same objects again gets the verifier's memos.

    Args:
        chain: the peer's certificate, then whatever intermediates it sent,
            in any order after the leaf.
        trust: the trust anchors this appliance trusts.
        at: the instant to judge at (the emulated clock); naive means UTC.
        crls: fetched CRLs: a ``url -> CrlIndex | ValidationFailed`` lookup
            or mapping for every URL :func:`crl_urls` named, or None.
        policy: the knobs; :data:`~mesh.validation.policy.DEFAULT_POLICY`
            follows the source document (strict profile).
        crl_files: CRLs given out of band (``CrlIndex``,
            ``x509.CertificateRevocationList`` or DER/PEM bytes); a
            certificate whose issuer has one is judged against it, CDP or not.

    Returns:
        A :class:`Verdict`. Never raises for anything the certificates
        contain: every problem is a finding.
    """
    if isinstance(crls, (list, tuple)):
        # A list of CRLs rather than a lookup: they are CRL files.
        crl_files, crls = (*crl_files, *crls), None
    return verifier_for(trust, policy, crl_files).verify(chain, at=at, crls=crls)


def crl_urls(
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    *,
    at: dt.datetime | None = None,
    policy: ValidationPolicy = DEFAULT_POLICY,
    crl_files: Sequence[CrlFile] = (),
) -> list[str]:
    """The http:// CRL URLs :func:`validate_peer` will ask for, in path order.

    The I/O layer fetches these first. Empty when the chain does not
    verify: nothing is fetched for a chain that is refused anyway.
    """
    return verifier_for(trust, policy, crl_files).crl_urls(chain, at=at)


#: The verifiers validate_peer built: by the identity of the trust anchors and
#: CRL files, then by the policy's value (callers often build an equal policy
#: per call, e.g. with the peer's expected name).
_VERIFIERS: IdentityMemo[dict[ValidationPolicy, Verifier]] = IdentityMemo(maxsize=64)


def verifier_for(
    trust: Sequence[x509.Certificate], policy: ValidationPolicy, crl_files: Sequence[CrlFile] = ()
) -> Verifier:
    """The :class:`~mesh.validation.verifier.Verifier` for these anchors, policy
    and CRL files, built once and kept (so its memos serve every later call)."""
    crl_files = tuple(crl_files)
    by_policy = _VERIFIERS.get((*trust, None, *crl_files), dict)
    verifier = by_policy.get(policy)
    if verifier is None:
        if len(by_policy) >= 64:
            by_policy.clear()
        from mesh.validation.verifier import Verifier  # it imports this module

        verifier = by_policy[policy] = Verifier(trust, policy, crl_files=crl_files)
    return verifier


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop a finding repeated for the same certificate (e.g. a time error the
    verifier reported that the period check found too)."""
    seen: set[tuple[FailureCode, str, int | None]] = set()
    out = []
    for finding in findings:
        key = (finding.code, finding.subject, finding.serial)
        if key in seen:
            continue
        seen.add(key)
        out.append(finding)
    return out
