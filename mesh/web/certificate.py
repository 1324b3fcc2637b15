"""What the consoles say about a certificate: its summary and how close it is to its end.

The REST API, the web page and the live view all describe the appliance's
certificate the same way, so the summary is built here once, from the
certificate and the *emulated* instant (a scenario that jumps a year ahead
sees the certificate expire, whatever the wall clock says).

Serials are upper-case hex, as ``openssl x509 -serial`` prints them and as the
event stream writes them (JSON numbers lose precision past 2**53).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import hashes

__all__ = [
    "DEFAULT_EXPIRY_WINDOW",
    "ExpiryWarning",
    "certificate_summary",
    "days_until_expiry",
    "expiry_warning",
]

#: Certificates within this long of their end are flagged ``certificate-expiring``.
DEFAULT_EXPIRY_WINDOW = dt.timedelta(days=30)


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def days_until_expiry(cert: x509.Certificate, *, at: dt.datetime) -> int:
    """Whole days from ``at`` to the certificate's end, rounded down.

    0 means it ends within the next 24 hours; negative means it has ended.
    """
    left = cert.not_valid_after_utc - at
    return math.floor(left / dt.timedelta(days=1))


@define(frozen=True, kw_only=True)
class ExpiryWarning:
    """A certificate within the warning window of its end (or past it)."""

    kind: str = field(default="certificate-expiring", init=False)
    subject: str
    serial: str
    not_after: dt.datetime
    days_until_expiry: int
    window_days: int

    @property
    def message(self) -> str:
        if self.days_until_expiry < 0:
            return f"The certificate {self.subject} has expired."
        if self.days_until_expiry == 0:
            return f"The certificate {self.subject} expires within a day."
        plural = "" if self.days_until_expiry == 1 else "s"
        return f"The certificate {self.subject} expires in {self.days_until_expiry} day{plural}."

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "serial": self.serial,
            "not_after": _instant(self.not_after),
            "days_until_expiry": self.days_until_expiry,
            "window_days": self.window_days,
            "message": self.message,
        }


def expiry_warning(
    cert: x509.Certificate,
    *,
    at: dt.datetime,
    window: dt.timedelta = DEFAULT_EXPIRY_WINDOW,
) -> ExpiryWarning | None:
    """An :class:`ExpiryWarning` if ``cert`` ends within ``window`` of ``at``, else None."""
    if cert.not_valid_after_utc - at > window:
        return None
    return ExpiryWarning(
        subject=cert.subject.rfc4514_string(),
        serial=format(cert.serial_number, "X"),
        not_after=cert.not_valid_after_utc,
        days_until_expiry=days_until_expiry(cert, at=at),
        window_days=math.floor(window / dt.timedelta(days=1)),
    )


def certificate_summary(
    cert: x509.Certificate,
    *,
    at: dt.datetime,
    window: dt.timedelta = DEFAULT_EXPIRY_WINDOW,
    chain: tuple[x509.Certificate, ...] = (),
) -> dict[str, Any]:
    """The certificate as the status JSON and the page show it.

    Keys: ``subject``, ``issuer`` (RFC 4514), ``serial`` (hex), ``not_before``,
    ``not_after`` (ISO 8601, Z), ``days_until_expiry``, ``expiring`` (within
    ``window``), ``expired``, ``not_yet_valid``, ``self_signed``,
    ``sha256_fingerprint`` (hex with colons) and ``chain`` (subjects of the
    intermediates sent after it).
    """
    days = days_until_expiry(cert, at=at)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "X"),
        "not_before": _instant(cert.not_valid_before_utc),
        "not_after": _instant(cert.not_valid_after_utc),
        "days_until_expiry": days,
        "expiring": cert.not_valid_after_utc - at <= window,
        "expired": at > cert.not_valid_after_utc,
        "not_yet_valid": at < cert.not_valid_before_utc,
        "self_signed": cert.subject == cert.issuer,
        "sha256_fingerprint": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "chain": [c.subject.rfc4514_string() for c in chain],
    }
