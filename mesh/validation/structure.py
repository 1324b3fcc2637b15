"""RFC 5280 structural rules that the strict profile checks on every path.

OpenSSL's verifier (run with ``X509_V_FLAG_X509_STRICT`` on each candidate
path, see :mod:`.strict`) enforces signatures, basicConstraints, pathLen and
name constraints, and many of the rules below. mesh checks these itself too,
first, so that a refusal names the rule and its section in words an engineer
can act on, rather than an OpenSSL error number, and so that the rules hold
whichever OpenSSL release is installed. Each rule is one finding under
``chain_untrusted`` whose detail cites the section.

The trust anchor is judged too, as a CA certificate (OpenSSL's strict mode
and the common test suites do the same), except that its own signature is
never relied on and a version 1 root's CA status is the trust placed in it.
A leaf that is itself the trust anchor is judged as a leaf.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtensionOID

from mesh.errors import FailureCode
from mesh.validation.finding import Finding

__all__ = ["check_structure"]

#: Extensions mesh or OpenSSL's verifier process, so a critical one is
#: honoured (RFC 5280 section 4.2: an unrecognised critical extension means
#: the certificate must be rejected).
_PROCESSED = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)


E = TypeVar("E", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E] | None:
    """The extension of that class, or None."""
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _self_signed(cert: x509.Certificate) -> bool:
    """Issued by its own key (not merely self-issued): RFC 5280's self-signed."""
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


Rule = Callable[[x509.Certificate, str], "str | None"]


def _serial(cert: x509.Certificate, role: str) -> str | None:
    if role == "anchor":
        return None
    serial = cert.serial_number
    if serial <= 0:
        return "RFC 5280 4.1.2.2: the serial number must be a positive integer"
    if (serial.bit_length() + 8) // 8 > 20:
        return "RFC 5280 4.1.2.2: the serial number must be at most 20 octets"
    return None


def _version(cert: x509.Certificate, role: str) -> str | None:
    if cert.version is x509.Version.v3:
        return None
    if len(cert.extensions):
        return "RFC 5280 4.1.2.9: only a version 3 certificate may carry extensions"
    if role == "intermediate":
        return (
            "RFC 5280 6.1.4 (k): a version 1 certificate cannot act as an "
            "intermediate CA"
        )
    return None


def _names(cert: x509.Certificate, role: str) -> str | None:
    if len(cert.issuer) == 0:
        return "RFC 5280 4.1.2.4: the issuer name must not be empty"
    if role != "leaf" and len(cert.subject) == 0:
        return "RFC 5280 4.1.2.6: a CA certificate's subject must not be empty"
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is not None and len(san.value) == 0:
        return "RFC 5280 4.2.1.6: a subjectAltName extension must hold at least one name"
    if len(cert.subject) == 0:
        if san is None:
            return "RFC 5280 4.1.2.6: a certificate with an empty subject must carry a subjectAltName"
        if not san.critical:
            return (
                "RFC 5280 4.2.1.6: with an empty subject the subjectAltName "
                "extension must be critical"
            )
    return None


#: Extensions whose criticality RFC 5280 fixes: oid -> (must be critical, section).
_CRITICALITY = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: (False, "4.2.1.1"),
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: (False, "4.2.1.2"),
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: (False, "4.2.2.1"),
    ExtensionOID.NAME_CONSTRAINTS: (True, "4.2.1.10"),
    ExtensionOID.POLICY_CONSTRAINTS: (True, "4.2.1.11"),
    ExtensionOID.INHIBIT_ANY_POLICY: (True, "4.2.1.14"),
}


def _critical(cert: x509.Certificate, role: str) -> str | None:
    for extension in cert.extensions:
        oid = extension.oid
        if extension.critical and oid not in _PROCESSED:
            return f"RFC 5280 4.2: unrecognised critical extension {oid.dotted_string}"
        fixed = _CRITICALITY.get(oid)
        if fixed is not None and extension.critical is not fixed[0]:
            name = getattr(oid, "_name", oid.dotted_string)
            must = "critical" if fixed[0] else "non-critical"
            return f"RFC 5280 {fixed[1]}: the {name} extension must be {must}"
    return None


def _key_ids(cert: x509.Certificate, role: str) -> str | None:
    if cert.version is not x509.Version.v3:
        return None
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    if aki is None and not _self_signed(cert):
        return (
            "RFC 5280 4.2.1.1: the authorityKeyIdentifier extension must be "
            "present in every certificate but a self-signed one"
        )
    ski = _ext(cert, x509.SubjectKeyIdentifier)
    if role != "leaf" and ski is None:
        return (
            "RFC 5280 4.2.1.2: the subjectKeyIdentifier extension must be "
            "present in every CA certificate"
        )
    return None


def _ca(cert: x509.Certificate, role: str) -> str | None:
    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    if role != "leaf":
        if role == "anchor" and cert.version is not x509.Version.v3:
            return None  # a version 1 root: its CA status is the trust itself
        if bc is None or not bc.value.ca:
            return (
                "RFC 5280 4.2.1.9 and 6.1.4 (k): the certificate issues another "
                "but does not assert cA in basicConstraints"
            )
        if not bc.critical:
            return "RFC 5280 4.2.1.9: basicConstraints must be critical in a CA certificate"
        if ku is not None and not ku.value.key_cert_sign:
            return (
                "RFC 5280 4.2.1.3 and 6.1.4 (n): the certificate issues another "
                "but its keyUsage lacks keyCertSign"
            )
        return None
    is_ca = bc is not None and bc.value.ca
    if ku is not None and ku.value.key_cert_sign and not is_ca:
        return (
            "RFC 5280 4.2.1.3: keyCertSign is asserted but basicConstraints "
            "does not assert cA"
        )
    if bc is not None and bc.value.path_length is not None and not is_ca:
        return "RFC 5280 4.2.1.9: pathLenConstraint is set without cA"
    if not is_ca and _ext(cert, x509.NameConstraints) is not None:
        return "RFC 5280 4.2.1.10: name constraints may appear only in a CA certificate"
    return None


#: The rules in the order they are reported (one finding per certificate:
#: the first rule it breaks).
_RULES: tuple[Rule, ...] = (_version, _serial, _names, _critical, _ca, _key_ids)


def check_structure(path: Sequence[x509.Certificate], *, anchored: bool) -> list[Finding]:
    """One ``chain_untrusted`` finding per certificate that breaks a rule."""
    found: list[Finding] = []
    last = len(path) - 1
    for depth, cert in enumerate(path):
        if depth == 0:
            role = "leaf"
        elif depth == last and anchored:
            role = "anchor"
        else:
            role = "intermediate"
        for rule in _RULES:
            problem = rule(cert, role)
            if problem is not None:
                found.append(
                    Finding.about(FailureCode.CHAIN_UNTRUSTED, cert, problem, depth=depth)
                )
                break
    return found
