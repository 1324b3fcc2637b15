"""CRLs, parsed once and indexed, so a revocation check costs the same at any size.

Theory of operation: the per-connection path must not touch the CRL's bytes.
OpenSSL's store re-verifies a CRL's signature on every chain check (about 45 ms
for a 1,000,000-entry CRL here) and ``cryptography``'s
``get_revoked_certificate_by_serial_number`` is a linear scan (about 63 ms for a
miss at 1M). So a :class:`CrlIndex` is built once per CRL version (parse, serial
set, dates), its signature is checked once per issuer key and remembered, and a
lookup is a set membership test. Building one for a large CRL takes seconds:
callers on an event loop build it in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import threading

from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, ValidationFailed

__all__ = ["CrlIndex"]

_PEM_MARK = b"-----BEGIN X509 CRL-----"


@define(frozen=True, kw_only=True, eq=False)
class CrlIndex:
    """One parsed CRL version: issuer, dates, number and the revoked serials."""

    crl: x509.CertificateRevocationList
    issuer: x509.Name
    this_update: dt.datetime
    next_update: dt.datetime | None
    number: int | None
    serials: frozenset[int]
    _verified: dict[bytes, bool] = field(factory=dict, alias="_verified")
    _lock: threading.Lock = field(factory=threading.Lock, alias="_lock")

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "CRL") -> CrlIndex:
        """Parse a DER or PEM CRL; anything else is ``crl_invalid``."""
        try:
            if data.lstrip().startswith(_PEM_MARK):
                crl = x509.load_pem_x509_crl(data.strip())
            else:
                crl = x509.load_der_x509_crl(data)
        except ValueError as exc:
            raise ValidationFailed(
                FailureCode.CRL_INVALID, f"{source} is not a DER or PEM CRL ({exc})"
            ) from None
        return cls.from_crl(crl)

    @classmethod
    def from_crl(cls, crl: x509.CertificateRevocationList) -> CrlIndex:
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            number = None
        return cls(
            crl=crl,
            issuer=crl.issuer,
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
            number=number,
            serials=frozenset(entry.serial_number for entry in crl),
        )

    def __len__(self) -> int:
        return len(self.serials)

    def is_revoked(self, serial: int) -> bool:
        return serial in self.serials

    def signed_by(self, issuer: x509.Certificate) -> bool:
        """True iff ``issuer``'s key signed this CRL and the names match.

        The answer is remembered per issuer key: the signature over a 37 MiB
        CRL is checked once, not once per connection.
        """
        if issuer.subject != self.issuer:
            return False
        key_id = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with self._lock:
            known = self._verified.get(key_id)
        if known is None:
            try:
                known = self.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except TypeError:
                known = False
            with self._lock:
                self._verified[key_id] = known
        return known

    def is_stale(self, at: dt.datetime) -> bool:
        """A CRL is current until its nextUpdate; one without it never goes stale."""
        return self.next_update is not None and at > self.next_update
