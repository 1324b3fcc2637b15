"""Certificates and keys encoded and written: atomically, with the right mode from the start.

Anything holding a private key (``.key``, PKCS#12) is written with mode 0600
from its creation (never chmod-ed down after the bytes are on disk), through a
temporary file in the same folder and an atomic rename: a reader never sees a
half-written file, and a key is never readable by others, not even for a moment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.errors import InputError
from mesh.pki.file_input import Passphrase, passphrase_bytes

__all__ = [
    "KEY_MODE",
    "write_file",
    "certificate_bytes",
    "chain_bytes",
    "key_bytes",
    "save_certificate",
    "save_chain",
    "save_key",
    "save_crl",
]

#: Mode of every file that holds a private key.
KEY_MODE = 0o600
_PUBLIC_MODE = 0o644


# -- encoding --


def certificate_bytes(cert: x509.Certificate, *, der: bool = False) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


def chain_bytes(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(certificate_bytes(c) for c in certs)


def key_bytes(
    key: rsa.RSAPrivateKey, *, passphrase: Passphrase = None, traditional: bool = False
) -> bytes:
    """PEM: PKCS#8 by default, "BEGIN RSA PRIVATE KEY" when ``traditional``."""
    password = passphrase_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


# -- writing --


def write_file(path: str | os.PathLike[str], data: bytes, *, mode: int = _PUBLIC_MODE) -> Path:
    """Write ``data`` atomically, the file created with ``mode`` from the start."""
    p = Path(path)
    where = str(path)
    if p.is_dir():
        raise InputError(where, "is a folder", "name a file to write")
    parent = p.parent
    if not parent.is_dir():
        raise InputError(where, f"folder {str(parent)!r} does not exist", "create it first")
    tmp = parent / f".{p.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except PermissionError:
        raise InputError(
            where, "cannot be written (permission denied)", "choose another folder"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def save_certificate(
    path: str | os.PathLike[str], cert: x509.Certificate, *, der: bool = False
) -> Path:
    return write_file(path, certificate_bytes(cert, der=der))


def save_chain(path: str | os.PathLike[str], certs: Sequence[x509.Certificate]) -> Path:
    return write_file(path, chain_bytes(certs))


def save_key(
    path: str | os.PathLike[str],
    key: rsa.RSAPrivateKey,
    *,
    passphrase: Passphrase = None,
    traditional: bool = False,
) -> Path:
    """A .key file, mode 0600, encrypted when a passphrase is given."""
    return write_file(
        path, key_bytes(key, passphrase=passphrase, traditional=traditional), mode=KEY_MODE
    )


def save_crl(
    path: str | os.PathLike[str], crl: x509.CertificateRevocationList, *, pem: bool = False
) -> Path:
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return write_file(path, crl.public_bytes(encoding))
