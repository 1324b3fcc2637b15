"""PKCS#12 (``.pfx``/``.p12``): a key with its certificate and chain, read and written.

A bundle is opened with the passphrase given, or, given none, tried without
one and with the empty one (tools differ in what "no passphrase" writes). A
passphrase that does not open it is ``ValidationFailed(PASSPHRASE_MISMATCH)``,
as for a key. It is written with mode 0600, since it may hold a key
(:mod:`mesh.pki.file_output`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from attrs import define
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki.file_input import Passphrase, looks_pem, looks_pkcs12, passphrase_bytes, read_input
from mesh.pki.file_output import KEY_MODE, write_file
from mesh.pki.key_input import rsa_only

__all__ = ["Pkcs12Contents", "load_pkcs12", "pkcs12_from_bytes", "save_pkcs12"]


@define(frozen=True, kw_only=True)
class Pkcs12Contents:
    """What a PKCS#12 file held: the key, its certificate and the other certificates."""

    key: rsa.RSAPrivateKey | None
    cert: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]


def load_pkcs12(path: str | os.PathLike[str], passphrase: Passphrase = None) -> Pkcs12Contents:
    """The key, certificate and chain of a .pfx/.p12 file."""
    where = str(path)
    data = read_input(path, "PKCS#12 file")
    return pkcs12_from_bytes(data, passphrase, where=where)


def pkcs12_from_bytes(
    data: bytes, passphrase: Passphrase = None, *, where: str = "PKCS#12"
) -> Pkcs12Contents:
    """:func:`load_pkcs12` over bytes already read."""
    if not looks_pkcs12(data):
        kind = "a PEM file" if looks_pem(data) else "not a PKCS#12 file"
        raise InputError(where, f"is {kind}, not a PKCS#12 (.pfx/.p12) file", "give the .pfx file")
    password = passphrase_bytes(passphrase)
    attempts = [password] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
            break
        except ValueError:
            continue
    else:
        detail = (
            "the PKCS#12 file is protected and no passphrase was given"
            if password is None
            else "the passphrase does not open the PKCS#12 file"
        )
        raise ValidationFailed(FailureCode.PASSPHRASE_MISMATCH, f"{where}: {detail}")
    return Pkcs12Contents(
        key=rsa_only(key, where) if key is not None else None,
        cert=cert,
        chain=tuple(extra),
    )


def save_pkcs12(
    path: str | os.PathLike[str],
    *,
    key: rsa.RSAPrivateKey | None,
    cert: x509.Certificate | None,
    chain: Sequence[x509.Certificate] = (),
    passphrase: Passphrase = None,
    name: str | None = None,
) -> Path:
    """A .pfx/.p12 file, mode 0600 (it may hold a key)."""
    password = passphrase_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data = pkcs12.serialize_key_and_certificates(
        name.encode() if name else None, key, cert, list(chain) or None, encryption
    )
    return write_file(path, data, mode=KEY_MODE)
