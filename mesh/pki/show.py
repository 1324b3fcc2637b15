"""``mesh cert show``: the openssl checks of the source document, in one tool.

The source document has the administrator inspect files with ``openssl x509
-text``, ``openssl req -text -verify`` and ``openssl rsa -check`` before an
upload. ``mesh cert show FILE`` prints, for each certificate, the fields the
certificate requirements name, in the requirements' order (signature
algorithm, signature hash, valid from, valid to, public key and size, CRL
Distribution Point, subject CN, C, OU, O) with the serial as ``openssl x509
-serial`` prints it; for a certificate request (CSR) the same subject and key
fields and whether its self-signature holds; for a private key its type and
size and whether it is consistent (the passphrase opens it, its parts agree).
"""

from __future__ import annotations

from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from mesh.errors import InputError
from mesh.pki import files
from mesh.pki.file_input import looks_pem

__all__ = ["show_file", "certificate_lines", "request_lines", "key_lines", "key_text", "cdp_text"]

_CSR_MARK = b"-----BEGIN CERTIFICATE REQUEST-----"


def key_text(key: object) -> str:
    """'RSA 2048 bits', 'EC secp256r1 (256 bits)': a public key as the reports name it."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name} ({key.key_size} bits)"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size} bits"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(key).__name__


def _hash_text(item: x509.Certificate | x509.CertificateSigningRequest) -> str:
    try:
        algorithm = item.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "(unknown)"
    return algorithm.name.upper() if algorithm is not None else "(none)"


def _subject_lines(name: x509.Name) -> list[str]:
    lines = []
    for label, oid in (
        ("subject CN", NameOID.COMMON_NAME),
        ("subject C", NameOID.COUNTRY_NAME),
        ("subject OU", NameOID.ORGANIZATIONAL_UNIT_NAME),
        ("subject O", NameOID.ORGANIZATION_NAME),
    ):
        values = [str(a.value) for a in name.get_attributes_for_oid(oid)]
        lines.append(f"{label + ':':<26}{', '.join(values) if values else '(missing)'}")
    return lines


def cdp_text(cert: x509.Certificate) -> str:
    """The CRL Distribution Point URLs, comma-separated; '(none)' without the extension."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return "(none)"
    urls = [
        str(name.value)
        for point in points
        for name in (point.full_name or ())
        if isinstance(name, x509.UniformResourceIdentifier)
    ]
    return ", ".join(urls) or "(no URL)"


def certificate_lines(cert: x509.Certificate) -> list[str]:
    """The requirements' fields of one certificate, in the requirements' order."""
    oid = cert.signature_algorithm_oid
    algorithm = getattr(oid, "_name", oid.dotted_string)
    return [
        f"{'signature algorithm:':<26}{algorithm}",
        f"{'signature hash:':<26}{_hash_text(cert)}",
        f"{'valid from:':<26}{cert.not_valid_before_utc.isoformat()}",
        f"{'valid to:':<26}{cert.not_valid_after_utc.isoformat()}",
        f"{'public key:':<26}{key_text(cert.public_key())}",
        f"{'CRL distribution point:':<26}{cdp_text(cert)}",
        *_subject_lines(cert.subject),
        f"{'issuer:':<26}{cert.issuer.rfc4514_string()}",
        f"{'serial:':<26}{cert.serial_number:X}",
    ]


def request_lines(csr: x509.CertificateSigningRequest) -> list[str]:
    """A CSR's subject, key and signature hash, and whether its signature holds."""
    oid = csr.signature_algorithm_oid
    return [
        f"{'signature algorithm:':<26}{getattr(oid, '_name', oid.dotted_string)}",
        f"{'signature hash:':<26}{_hash_text(csr)}",
        f"{'public key:':<26}{key_text(csr.public_key())}",
        *_subject_lines(csr.subject),
        f"{'signature:':<26}{'verified' if csr.is_signature_valid else 'DOES NOT VERIFY'}",
    ]


def key_lines(key: rsa.RSAPrivateKey) -> list[str]:
    """A private key's type and size, and whether its parts are consistent
    (cryptography checks an RSA key's parts when it loads it)."""
    return [f"{'private key:':<26}{key_text(key.public_key())}", f"{'key check:':<26}ok"]


def show_file(path: str, passphrase: str | None = None) -> tuple[list[str], bool]:
    """The lines to print for ``path`` and whether everything shown is sound."""
    data = files.read_input(path, "file")
    if _CSR_MARK in data or (not looks_pem(data) and _der_csr(data) is not None):
        csr = _pem_or_der_csr(data, path)
        return request_lines(csr), csr.is_signature_valid
    if b"PRIVATE KEY-----" in data and b"-----BEGIN CERTIFICATE-----" not in data:
        key = files.key_from_bytes(data, passphrase, where=path)
        return key_lines(key), True
    certs = files.load_certificates(path)
    return _certificates(certs), True


def _certificates(certs: Iterable[x509.Certificate]) -> list[str]:
    lines: list[str] = []
    certs = list(certs)
    for n, cert in enumerate(certs, 1):
        if len(certs) > 1:
            lines.append(f"certificate {n} of {len(certs)}")
        lines += certificate_lines(cert)
    return lines


def _der_csr(data: bytes) -> x509.CertificateSigningRequest | None:
    try:
        return x509.load_der_x509_csr(data)
    except ValueError:
        return None


def _pem_or_der_csr(data: bytes, path: str) -> x509.CertificateSigningRequest:
    try:
        if _CSR_MARK in data:
            return x509.load_pem_x509_csr(data[data.index(_CSR_MARK):])
        csr = _der_csr(data)
        assert csr is not None
        return csr
    except (ValueError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise InputError(path, f"is not a readable certificate request ({exc})",
                         "export the CSR again") from None
