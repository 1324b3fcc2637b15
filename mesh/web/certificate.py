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
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

# The expiry window lives in the validation core, shared with the engine's
# certificate-expiring event; re-exported here for the consoles' callers.
from mesh.validation.expiry import (
    DEFAULT_EXPIRY_WINDOW,
    ExpiryWarning,
    days_until_expiry,
    expiry_warning,
)

__all__ = [
    "DEFAULT_EXPIRY_WINDOW",
    "ExpiryWarning",
    "certificate_summary",
    "days_until_expiry",
    "expiry_warning",
]


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


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
