"""RFC 5280 structural rules that the strict profile checks on every path.

OpenSSL's verifier (run with ``X509_V_FLAG_X509_STRICT`` on each candidate
path, see :mod:`.strict`) enforces signatures, basicConstraints, pathLen and
name constraints, and many of the rules below. mesh checks these itself too,
first, so that a refusal names the rule and its section in words an engineer
can act on, rather than an OpenSSL error number, and so that the rules hold
whichever OpenSSL release is installed. Each rule is one finding under
``chain_untrusted`` whose detail cites the section.

The trust anchor is exempt, as RFC 5280 section 6.1 makes it: it is an
input to path validation (a name and a key), not a certificate the path
judges. Its signature, dates and extensions are not checked here.
"""

from __future__ import annotations

from typing import Callable, Sequence

from cryptography import x509
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


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension | None:  # type: ignore[type-arg]
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _is_self_signed_shape(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


Rule = Callable[[x509.Certificate, str], "str | None"]


def _serial(cert: x509.Certificate, role: str) -> str | None:
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


def _critical(cert: x509.Certificate, role: str) -> str | None:
    for extension in cert.extensions:
        if extension.critical and extension.oid not in _PROCESSED:
            return (
                f"RFC 5280 4.2: unrecognised critical extension "
                f"{extension.oid.dotted_string}"
            )
    return None


def _key_ids(cert: x509.Certificate, role: str) -> str | None:
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    if aki is None and not _is_self_signed_shape(cert):
        return (
            "RFC 5280 4.2.1.1: the authorityKeyIdentifier extension must be "
            "present in every certificate but a self-signed one"
        )
    if aki is not None and aki.critical:
        return "RFC 5280 4.2.1.1: the authorityKeyIdentifier extension must not be critical"
    ski = _ext(cert, x509.SubjectKeyIdentifier)
    if role == "intermediate" and ski is None:
        return (
            "RFC 5280 4.2.1.2: the subjectKeyIdentifier extension must be "
            "present in every CA certificate"
        )
    if ski is not None and ski.critical:
        return "RFC 5280 4.2.1.2: the subjectKeyIdentifier extension must not be critical"
    return None


def _ca(cert: x509.Certificate, role: str) -> str | None:
    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    if role == "intermediate":
        if bc is None or not bc.value.ca:
            return (
                "RFC 5280 4.2.1.9 and 6.1.4 (k): the certificate issues another "
                "but does not assert cA in basicConstraints"
            )
        if not bc.critical:
            return "RFC 5280 4.2.1.9: basicConstraints must be critical in a CA certificate"
        if ku is None:
            return "RFC 5280 4.2.1.3: a CA certificate must carry the keyUsage extension"
        if not ku.value.key_cert_sign:
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
    return None


#: The rules in the order they are reported (one finding per certificate:
#: the first rule it breaks).
_RULES: tuple[Rule, ...] = (_version, _serial, _names, _critical, _ca, _key_ids)


def check_structure(path: Sequence[x509.Certificate], *, anchored: bool) -> list[Finding]:
    """One ``chain_untrusted`` finding per certificate that breaks a rule."""
    found: list[Finding] = []
    last = len(path) - 1 if anchored else len(path)
    for depth, cert in enumerate(path[:last]):
        role = "leaf" if depth == 0 else "intermediate"
        for rule in _RULES:
            problem = rule(cert, role)
            if problem is not None:
                found.append(
                    Finding.about(FailureCode.CHAIN_UNTRUSTED, cert, problem, depth=depth)
                )
                break
    return found
