"""How close a certificate is to its end, at the instant we are given.

Not a check that refuses anything: an appliance warns about its own
certificate before a link halts with ``expired`` (the engine's
``certificate-expiring`` event), and the consoles flag it in their status.
Both read the same :func:`expiry_warning`, so the window and the wording
agree everywhere. Like the rest of this package it is pure: the instant is
an argument (the emulated clock's), never the wall clock.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from attrs import define, field
from cryptography import x509

__all__ = [
    "DEFAULT_EXPIRY_WINDOW",
    "ExpiryWarning",
    "days_until_expiry",
    "expiry_message",
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


def expiry_message(subject: str, days: int) -> str:
    """``The certificate <subject> expires in 12 days.`` (or within a day, or has expired)."""
    if days < 0:
        return f"The certificate {subject} has expired."
    if days == 0:
        return f"The certificate {subject} expires within a day."
    plural = "" if days == 1 else "s"
    return f"The certificate {subject} expires in {days} day{plural}."


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
        return expiry_message(self.subject, self.days_until_expiry)

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
