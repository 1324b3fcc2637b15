"""One thing a check found about one certificate.

Every check module (period, chain, strength, identity, revocation) speaks in
:class:`Finding` values, so the verdict can keep all of them, order them and
name a primary one without knowing which check produced which. A finding is
data: the code carries the exact operator message, the certificate it
concerns is named by subject and serial, and ``detail`` is the technical
sentence an engineer reads next.
"""

from __future__ import annotations

from typing import Any

from attrs import define
from cryptography import x509

from mesh.errors import FailureCode, Severity

__all__ = ["Finding", "describe"]


@define(frozen=True, kw_only=True)
class Finding:
    """A failure, warning or note about one certificate (or about the input).

    ``depth`` is the certificate's position in the path (0 = the leaf), None
    when the finding is not about one certificate of the path.
    """

    code: FailureCode
    severity: Severity = Severity.ERROR
    subject: str = ""
    serial: int | None = None
    detail: str = ""
    depth: int | None = None

    @property
    def message(self) -> str:
        """The exact operator-facing sentence of the code."""
        return self.code.message

    @classmethod
    def about(
        cls,
        code: FailureCode,
        cert: x509.Certificate | None,
        detail: str,
        *,
        severity: Severity = Severity.ERROR,
        depth: int | None = None,
    ) -> Finding:
        """A finding that names ``cert`` (subject and serial)."""
        subject, serial = describe(cert)
        return cls(
            code=code,
            severity=severity,
            subject=subject,
            serial=serial,
            detail=detail,
            depth=depth,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; never carries key material (there is none here)."""
        return {
            "code": self.code.code,
            "message": self.message,
            "severity": self.severity.value,
            "subject": self.subject,
            "serial": None if self.serial is None else f"{self.serial:X}",
            "detail": self.detail,
        }


def describe(cert: x509.Certificate | None) -> tuple[str, int | None]:
    """The (RFC 4514 subject, serial) pair a finding names a certificate by."""
    if cert is None:
        return "", None
    try:
        subject = cert.subject.rfc4514_string()
    except (ValueError, TypeError):
        subject = "(unparseable subject)"
    try:
        serial: int | None = cert.serial_number
    except ValueError:
        serial = None
    return subject, serial
