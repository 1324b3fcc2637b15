"""The source document's certificate requirements, checked one by one.

"CRT file requirements": SHA-256 with RSA; RSA 2048 bits (minimum) or 4096;
valid-from in the past and valid-to in the future; a CRL Distribution Point
URL; subject CN = the appliance's domain name (``*.contoso.com`` allowed), and
C, OU and O defined. Lint reports, it never rewrites.

Each :class:`LintFinding` has a stable ``code`` (what scripts match on), a
``severity`` and one line of ``advice``. Severities say what happens to such a
certificate in a deployment:

- ``error``: validation refuses it (weak key or signature, outside its
  validity period, a CRL location it cannot fetch, a name that does not match);
- ``warning``: it breaks a requirement but may still work (no CDP, so no
  revocation check; a missing C/O/OU; SHA-384 instead of SHA-256);
- ``note``: worth knowing, not a broken requirement (RSA 4096 makes each
  handshake slower, as the source document says).

:func:`broken` is true when any error or warning is present: ``mesh cert
lint`` exits 1 then.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Sequence

from attrs import define
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from mesh.errors import Severity

__all__ = ["LintFinding", "lint", "broken", "name_matches", "reuse", "CODES"]


@define(frozen=True, kw_only=True)
class LintFinding:
    """One broken (or noteworthy) requirement."""

    code: str
    severity: Severity
    message: str
    advice: str

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "advice": self.advice,
        }

    def line(self) -> str:
        return f"{self.severity.value:<7} {self.code:<18} {self.message}. {self.advice}"


#: Every code lint can report, with its severity.
CODES: dict[str, Severity] = {
    "weak-signature": Severity.ERROR,
    "signature-algorithm": Severity.WARNING,
    "key-not-rsa": Severity.ERROR,
    "weak-key": Severity.ERROR,
    "key-size": Severity.WARNING,
    "large-key": Severity.NOTE,
    "not-yet-valid": Severity.ERROR,
    "expired": Severity.ERROR,
    "no-cdp": Severity.WARNING,
    "cdp-not-http": Severity.ERROR,
    "no-common-name": Severity.ERROR,
    "cn-not-domain": Severity.WARNING,
    "name-mismatch": Severity.ERROR,
    "no-country": Severity.WARNING,
    "no-organization": Severity.WARNING,
    "no-org-unit": Severity.WARNING,
    "reused-certificate": Severity.WARNING,
    "reused-key": Severity.WARNING,
}

_WEAK_HASHES = (hashes.SHA1, hashes.MD5)
#: "RSA_WITH_SHA1" -> "RSA with SHA1", for messages.
_ALGORITHM_NAMES = {
    getattr(SignatureAlgorithmOID, attr): attr.replace("_WITH_", " with ").replace("_", "-")
    for attr in dir(SignatureAlgorithmOID)
    if attr.isupper()
}
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(\*\.)?({_LABEL}\.)+{_LABEL}\.?$")


def _finding(code: str, message: str, advice: str) -> LintFinding:
    return LintFinding(code=code, severity=CODES[code], message=message, advice=advice)


def lint(
    cert: x509.Certificate,
    *,
    at: dt.datetime,
    expected_name: str | None = None,
    validation: bool = True,
) -> list[LintFinding]:
    """Every requirement ``cert`` breaks at instant ``at``, errors first.

    A CA certificate is judged as a CA: its CN names the CA, not an
    appliance's domain, and a root (self-signed) has no issuer whose CRL it
    could name. ``validation=False``: the appliance will not validate, so a
    certificate without a CRL Distribution Point is what the source document
    advises, not a warning.
    """
    ca = _is_ca(cert)
    root = ca and cert.subject == cert.issuer
    found: list[LintFinding] = []
    found += _signature(cert)
    found += _key(cert)
    found += _validity(cert, at)
    if validation and not root:
        found += _cdp(cert)
    found += _subject(cert, None if ca else expected_name, domain=not ca)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    return sorted(found, key=lambda f: order[f.severity])


def reuse(certificates: Sequence[tuple[str, x509.Certificate]]) -> list[list[LintFinding]]:
    """Findings for appliance certificates that another file also holds, or whose key it holds.

    ``certificates`` are (file, certificate) pairs of a deployment folder; the
    answer has one list per pair. The source document asks for a unique
    certificate for each sensor, management console and HA machine: a copied
    certificate (or a new certificate on a copied key) makes two appliances
    indistinguishable to every check. CA certificates are left out: a CA
    rightly appears in every chain file.
    """
    by_der: dict[bytes, list[str]] = {}
    by_key: dict[bytes, list[str]] = {}
    ders: list[bytes | None] = []
    keys: list[bytes | None] = []
    for where, cert in certificates:
        if _is_ca(cert):
            ders.append(None)
            keys.append(None)
            continue
        der = cert.public_bytes(serialization.Encoding.DER)
        key = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        by_der.setdefault(der, []).append(where)
        by_key.setdefault(key, []).append(where)
        ders.append(der)
        keys.append(key)
    found: list[list[LintFinding]] = []
    for (where, _), own_der, own_key in zip(certificates, ders, keys):
        mine: list[LintFinding] = []
        if own_der is not None and own_key is not None:
            others = [w for w in by_der[own_der] if w != where]
            if others:
                mine.append(_finding(
                    "reused-certificate",
                    f"the same certificate is in {', '.join(others)}",
                    "issue each appliance a certificate of its own",
                ))
            else:
                others = [w for w in by_key[own_key] if w != where]
                if others:
                    mine.append(_finding(
                        "reused-key",
                        f"the certificate in {', '.join(others)} has the same key",
                        "generate a new key for each appliance",
                    ))
        found.append(mine)
    return found


def broken(findings: list[LintFinding]) -> bool:
    """True when a requirement is broken (any error or warning)."""
    return any(f.severity is not Severity.NOTE for f in findings)


def _signature(cert: x509.Certificate) -> list[LintFinding]:
    oid = cert.signature_algorithm_oid
    if oid == SignatureAlgorithmOID.RSA_WITH_SHA256:
        return []
    shown = _ALGORITHM_NAMES.get(oid, oid.dotted_string)
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm: a hash cryptography does not know
        algorithm = None
    if algorithm is None or isinstance(algorithm, _WEAK_HASHES):
        return [
            _finding(
                "weak-signature",
                f"signed with {shown}, which is weak",
                "Reissue it signed with SHA-256 with RSA (sha256WithRSAEncryption)",
            )
        ]
    return [
        _finding(
            "signature-algorithm",
            f"signed with {shown}, not SHA-256 with RSA as required",
            "Reissue it signed with SHA-256 with RSA (sha256WithRSAEncryption)",
        )
    ]


def _key(cert: x509.Certificate) -> list[LintFinding]:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return [
            _finding(
                "key-not-rsa",
                f"the public key is {type(key).__name__.lstrip('_').replace('PublicKey', '')}, not RSA",
                "Reissue it with an RSA 2048 or 4096 key",
            )
        ]
    bits = key.key_size
    if bits < 2048:
        return [
            _finding(
                "weak-key",
                f"RSA {bits} bits is too weak",
                "Reissue it with an RSA 2048 or 4096 key",
            )
        ]
    if bits == 4096:
        return [
            _finding(
                "large-key",
                "RSA 4096 bits makes every TLS handshake slower and costs CPU",
                "Keep it if you need it; RSA 2048 is enough",
            )
        ]
    if bits != 2048:
        return [
            _finding(
                "key-size",
                f"RSA {bits} bits is neither 2048 nor 4096",
                "Reissue it with an RSA 2048 or 4096 key",
            )
        ]
    return []


def _validity(cert: x509.Certificate, at: dt.datetime) -> list[LintFinding]:
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if start > at:
        return [
            _finding(
                "not-yet-valid",
                f"valid from {start:%Y-%m-%d %H:%M:%S}Z, which is in the future",
                "Reissue it with a valid-from date in the past",
            )
        ]
    if end < at:
        return [
            _finding(
                "expired",
                f"valid to {end:%Y-%m-%d %H:%M:%S}Z, which has passed",
                "Create a new certificate with valid dates",
            )
        ]
    return []


def _cdp(cert: x509.Certificate) -> list[LintFinding]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return [
            _finding(
                "no-cdp",
                "no CRL Distribution Point, so revocation cannot be checked",
                "Reissue it with an http:// CRL Distribution Point URL (or switch validation off knowingly)",
            )
        ]
    urls = [
        name.value
        for point in points
        for name in (point.full_name or [])
        if isinstance(name, x509.UniformResourceIdentifier)
    ]
    if not any(url.lower().startswith("http://") for url in urls):
        shown = ", ".join(urls) or "no URL"
        return [
            _finding(
                "cdp-not-http",
                f"the CRL Distribution Point names {shown}, not an http:// URL",
                "Reissue it with an http:// URL to the .crl file",
            )
        ]
    return []


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _subject(
    cert: x509.Certificate, expected_name: str | None, *, domain: bool = True
) -> list[LintFinding]:
    found: list[LintFinding] = []
    subject = cert.subject
    cns = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        found.append(
            _finding(
                "no-common-name",
                "the subject has no CN",
                "Reissue it with CN = the appliance's domain name",
            )
        )
    else:
        cn = str(cns[0].value)
        if domain and not _DOMAIN.match(cn):
            found.append(
                _finding(
                    "cn-not-domain",
                    f"the CN {cn!r} is not a domain name",
                    "Reissue it with CN = the appliance's domain name, e.g. sensor.contoso.com",
                )
            )
        if expected_name and not name_matches(cn, expected_name):
            found.append(
                _finding(
                    "name-mismatch",
                    f"the CN {cn!r} does not match the appliance name {expected_name!r}",
                    f"Reissue it with CN = {expected_name} (or a wildcard covering it)",
                )
            )
    for oid, code, label, example in (
        (NameOID.COUNTRY_NAME, "no-country", "C (country)", "US"),
        (NameOID.ORGANIZATION_NAME, "no-organization", "O (organization)", "Contoso Inc."),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "no-org-unit", "OU (org unit)", "Contoso Labs"),
    ):
        if not subject.get_attributes_for_oid(oid):
            found.append(
                _finding(
                    code,
                    f"the subject has no {label}",
                    f"Reissue it with {label} defined, e.g. {example}",
                )
            )
    return found


def name_matches(pattern: str, name: str) -> bool:
    """Does a CN (possibly ``*.domain``) cover ``name``? Case-insensitive; a
    wildcard covers exactly one leftmost label."""
    pattern = pattern.lower().rstrip(".")
    name = name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return False
