"""Bytes from a person's disk: reading the file they named, and telling what it holds.

Everything that reaches mesh from a person's disk passes through here, so
every way a file can be wrong ends here too, as one
:class:`~mesh.errors.InputError` naming the file, the problem and the fix (the
CLI prints it as one line, exit 2). The readers of certificates
(:mod:`mesh.pki.cert_input`), keys (:mod:`mesh.pki.key_input`) and PKCS#12
(:mod:`mesh.pki.pkcs12_files`) share what is here: PEM blocks and their
labels, and the sniffing that names what a file holds when it is not what was
asked for ("holds a private key, not a certificate").
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mesh.errors import InputError

__all__ = [
    "CERT_LABELS",
    "Passphrase",
    "read_input",
    "passphrase_bytes",
    "pem_blocks",
    "looks_pem",
    "kind_of",
    "pem_der",
    "is_der_private_key",
    "looks_pkcs12",
]

Passphrase = str | bytes | None

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
#: PEM labels of a certificate.
CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}


def read_input(path: str | os.PathLike[str], what: str = "file") -> bytes:
    """The bytes of a file a person named, or an InputError saying what is wrong."""
    where = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(where, f"no such {what}", "check the path")
    if p.is_dir():
        raise InputError(where, f"is a folder, not a {what}", f"name the {what} itself")
    try:
        data = p.read_bytes()
    except PermissionError:
        raise InputError(
            where, "cannot be read (permission denied)", "check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror})", "check the path") from None
    if not data.strip():
        raise InputError(where, "is empty", f"give a {what} with content")
    return data


def passphrase_bytes(passphrase: Passphrase) -> bytes | None:
    """The passphrase as bytes; None for none (an empty one is none too)."""
    if passphrase is None or passphrase == "" or passphrase == b"":
        return None
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase


def pem_blocks(data: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """(label, whole PEM block) for each block; a BEGIN without END is truncated."""
    text = data.replace(b"\r\n", b"\n")
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    begins = _PEM_BEGIN.findall(text)
    if len(begins) > len(blocks):
        label = begins[len(blocks)].decode()
        raise InputError(
            where,
            f"truncated PEM: a BEGIN {label} has no matching END line",
            "copy the whole file again",
        )
    return blocks


def looks_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def kind_of(label: bytes) -> str:
    """What a PEM label holds, in the words an error message uses."""
    if label in CERT_LABELS:
        return "certificate"
    if label.endswith(b"PRIVATE KEY"):
        return "private key"
    if label == b"X509 CRL":
        return "CRL"
    if label == b"CERTIFICATE REQUEST":
        return "certificate signing request"
    return label.decode().lower()


def pem_der(block: bytes) -> bytes:
    """The DER inside one PEM block (empty when it is not base64)."""
    body = block.split(b"-----", 2)[-1].rsplit(b"-----END", 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def is_der_private_key(data: bytes) -> bool:
    """Is ``data`` a DER private key (of any kind, encrypted or not)?"""
    try:
        serialization.load_der_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        return True  # an encrypted PKCS#8 key: a key all the same
    except Exception:  # ValueError, UnsupportedAlgorithm: not a key we know
        return False
    return True


def looks_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), ... }: the version right after the header."""
    return data[:1] == b"\x30" and b"\x02\x01\x03" in data[2:8]
