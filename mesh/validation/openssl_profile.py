"""The ``openssl`` profile: what a stock OpenSSL-based appliance accepts.

OpenSSL's verifier builds one path (the first issuer it finds at each step)
and judges it; mesh then checks dates, strength, the leaf's purpose and name,
and revocation over that path, with the CRL rules mesh had before its strict
profile (signature, freshness, serial). These are exactly the verdicts mesh
gave before the strict profile existed: an engineer picks this profile for
an appliance to see where a stock appliance and a strict one part ways (a
cross-signed chain that halts on one and not the other).

Configured CRL files (:class:`~mesh.validation.revocation.ConfiguredCrls`)
are a source of CRLs, not a rule, so this profile uses them too.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from cryptography import x509

from mesh.validation.chain import FirstPath, is_self_issued
from mesh.validation.finding import Finding
from mesh.validation.identity import check_name, check_purpose
from mesh.validation.period import check_periods
from mesh.validation.policy import ValidationPolicy
from mesh.validation.revocation import (
    ConfiguredCrls,
    CrlLookup,
    cdp_urls,
    check_path_revocation,
)
from mesh.validation.strength import check_strength
from mesh.validation.verdict import Verdict, dedupe

__all__ = ["openssl_verdict", "openssl_crl_urls"]


def openssl_verdict(
    chain: Sequence[x509.Certificate],
    *,
    trust: Sequence[x509.Certificate],
    at: dt.datetime,
    crls: CrlLookup,
    policy: ValidationPolicy,
    paths: FirstPath,
    configured: ConfiguredCrls | None = None,
) -> Verdict:
    """The verdict on OpenSSL's first path (``at`` is aware UTC)."""
    built = paths.build(chain, trust)
    path = built.path
    findings: list[Finding] = []
    if built.error is not None:
        findings.append(built.error)
    findings += check_periods(path, at)
    findings += check_strength(
        path,
        anchored=built.trusted,
        allow_weak=policy.allow_weak,
        min_rsa_bits=policy.min_rsa_bits,
    )
    if path:
        findings += check_purpose(path[0], policy.purpose)
        findings += check_name(path[0], policy.expected_name)
    if built.trusted:
        findings += check_path_revocation(
            path, at=at, crls=crls, policy=policy, configured=configured, strict=False
        )
    return Verdict.judge(dedupe(findings), enabled=policy.enabled, path=path)


def openssl_crl_urls(
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    *,
    paths: FirstPath,
    configured: ConfiguredCrls | None = None,
) -> list[str]:
    """The CDP URLs of OpenSSL's path (empty when it does not verify)."""
    built = paths.build(chain, trust)
    if not built.trusted:
        return []
    path = built.path
    urls: list[str] = []
    for depth, cert in enumerate(path[:-1]):
        if is_self_issued(cert):
            continue
        if configured and configured.for_issuer(path[depth + 1]):
            continue
        http, _ = cdp_urls(cert)
        if http and http[0] not in urls:
            urls.append(http[0])
    return urls
