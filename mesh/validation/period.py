"""Validity periods, judged against the time we are given (never the wall clock).

RFC 5280 section 4.1.2.5: the validity period is "the period of time from
notBefore through notAfter, inclusive". So a certificate is valid at exactly
notBefore and at exactly notAfter, expired one second after notAfter and not
yet valid one second before notBefore. (OpenSSL 3.0 calls a certificate
expired at exactly notAfter; we follow the RFC. That is one reason the chain
verifier is told to ignore time and this module judges it.)
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from cryptography import x509

from mesh.errors import FailureCode
from mesh.validation.finding import Finding

__all__ = ["as_utc", "period_code", "check_periods"]


def as_utc(at: dt.datetime) -> dt.datetime:
    """An aware UTC instant; a naive datetime is taken to be UTC."""
    if at.tzinfo is None:
        return at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(dt.timezone.utc)


def period_code(cert: x509.Certificate, at: dt.datetime) -> FailureCode | None:
    """``EXPIRED``, ``NOT_YET_VALID`` or None (valid at ``at``, bounds inclusive)."""
    at = as_utc(at)
    if at > cert.not_valid_after_utc:
        return FailureCode.EXPIRED
    if at < cert.not_valid_before_utc:
        return FailureCode.NOT_YET_VALID
    return None


def check_periods(path: Sequence[x509.Certificate], at: dt.datetime) -> list[Finding]:
    """One finding per certificate of ``path`` (leaf first) not valid at ``at``."""
    at = as_utc(at)
    found = []
    for depth, cert in enumerate(path):
        code = period_code(cert, at)
        if code is FailureCode.EXPIRED:
            detail = (
                f"notAfter {cert.not_valid_after_utc.isoformat()} is before "
                f"{at.isoformat()}"
            )
        elif code is FailureCode.NOT_YET_VALID:
            detail = (
                f"notBefore {cert.not_valid_before_utc.isoformat()} is after "
                f"{at.isoformat()}"
            )
        else:
            continue
        found.append(Finding.about(code, cert, detail, depth=depth))
    return found
