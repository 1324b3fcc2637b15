"""Certificates, chains and CRLs read from files, as the source document names them.

- ``.crt``: one certificate, PEM or DER (sniffed, whatever the extension).
- ``.pem`` chain: the issuing CAs' certificates, one PEM block each. The
  text ``openssl pkcs12 -nodes`` puts around blocks ("Bag Attributes",
  ``subject=``/``issuer=`` lines) is ignored, as the source document allows.
- ``.crl``: a CRL, DER or PEM, every field read at once so that a damaged one
  is a line here and not a traceback later.

A file that holds something else (a key, a PKCS#12 bundle) says so, with the
fix (:mod:`mesh.pki.file_input`).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography import x509

from mesh.errors import InputError
from mesh.pki.file_input import (
    CERT_LABELS,
    is_der_private_key,
    kind_of,
    looks_pem,
    looks_pkcs12,
    pem_blocks,
    read_input,
)
from mesh.validation.chain import PARSE_ERRORS

__all__ = ["certificates_from_bytes", "load_certificates", "load_certificate", "load_crl"]


def certificates_from_bytes(data: bytes, *, where: str = "certificate") -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM blocks, bag attributes ignored, or one DER)."""
    if not data.strip():
        raise InputError(where, "is empty", "give a certificate file with content")
    return _certs_from(data, where)


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in a file (a .pem chain, or a .crt with its chain appended)."""
    data = read_input(path, "certificate file")
    return _certs_from(data, str(path))


def load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    """The certificate of a .crt (the first one if the file holds several)."""
    return load_certificates(path)[0]


def load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """A CRL file, DER or PEM."""
    where = str(path)
    data = read_input(path, "CRL file")
    try:
        if looks_pem(data):
            crl = x509.load_pem_x509_crl(data.strip())
        else:
            crl = x509.load_der_x509_crl(data)
    except PARSE_ERRORS:  # ValueError, and InvalidVersion for a damaged version field
        raise InputError(where, "is not a CRL (neither DER nor PEM)", "give a .crl file") from None
    # cryptography parses a CRL's fields lazily: read every one a caller uses
    # now, so a damaged field is this one line and not a traceback later.
    try:
        crl.issuer, crl.last_update_utc, crl.next_update_utc
        for extension in crl.extensions:
            extension.value
        for entry in crl:
            entry.serial_number, entry.revocation_date_utc
            for extension in entry.extensions:
                extension.value
    except PARSE_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(
            where, f"holds a damaged CRL ({reason})", "publish the CRL again"
        ) from None
    return crl


def _certs_from(data: bytes, where: str) -> list[x509.Certificate]:
    if looks_pem(data):
        blocks = pem_blocks(data, where)
        certs = [
            _parse_cert_block(block, where) for label, block in blocks if label in CERT_LABELS
        ]
        if certs:
            return certs
        kinds = sorted({kind_of(label) for label, _ in blocks})
        raise InputError(
            where,
            f"holds a {' and a '.join(kinds)}, not a certificate",
            "give the certificate (.crt) file",
        )
    try:
        return [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion):
        pass
    if is_der_private_key(data):
        raise InputError(where, "holds a private key, not a certificate", "give the .crt file")
    if looks_pkcs12(data):
        raise InputError(
            where,
            "is a PKCS#12 (.pfx/.p12) file, not a certificate",
            "convert it first: mesh cert convert FILE.pfx FILE.crt",
        )
    raise InputError(
        where,
        "is not a certificate (neither PEM nor DER)",
        "give a .crt in PEM or DER form",
    )


def _parse_cert_block(block: bytes, where: str) -> x509.Certificate:
    if block.startswith(b"-----BEGIN TRUSTED CERTIFICATE-----"):
        # ``openssl x509 -trustout`` output: the DER certificate, then trust settings.
        body = b"".join(block.splitlines()[1:-1])
        try:
            der = base64.b64decode(body, validate=False)
            return x509.load_der_x509_certificate(_first_der_element(der))
        except (ValueError, binascii.Error):
            raise InputError(
                where, "holds a damaged trusted certificate", "export the certificate again"
            ) from None
    try:
        return x509.load_pem_x509_certificate(block)
    except (ValueError, x509.InvalidVersion) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(
            where, f"holds a damaged certificate ({reason})", "export the certificate again"
        ) from None


def _first_der_element(der: bytes) -> bytes:
    """The first ASN.1 element of ``der`` (length from its header)."""
    if len(der) < 2:
        return der
    first = der[1]
    if first < 0x80:
        return der[: 2 + first]
    count = first & 0x7F
    length = int.from_bytes(der[2 : 2 + count], "big")
    return der[: 2 + count + length]
