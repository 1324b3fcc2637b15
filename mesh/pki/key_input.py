"""Private keys read from files: RSA only, opened with a passphrase when encrypted.

A ``.key`` is an RSA private key, PEM, PKCS#8 or traditional ("BEGIN RSA
PRIVATE KEY"), optionally encrypted with a passphrase. DER is accepted too.

Every problem is one :class:`~mesh.errors.InputError` but one: a passphrase
that does not open a key is the source document's own upload error, so it is a
``ValidationFailed(FailureCode.PASSPHRASE_MISMATCH)``. What opening a key may
cost (its encryption's work factor, its size) is checked before any of that
work is done (:mod:`mesh.pki.key_cost`).
"""

from __future__ import annotations

import os
from typing import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki.file_input import (
    Passphrase,
    kind_of,
    looks_pem,
    passphrase_bytes,
    pem_blocks,
    pem_der,
    read_input,
)
from mesh.pki.key_cost import check_key_cost, check_rsa_bits

__all__ = ["load_key", "key_from_bytes", "rsa_only"]

_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}


def load_key(path: str | os.PathLike[str], passphrase: Passphrase = None) -> rsa.RSAPrivateKey:
    """The RSA private key of a .key file, opened with ``passphrase`` if encrypted.

    A passphrase that does not open the key, or an encrypted key without one,
    raises ``ValidationFailed(PASSPHRASE_MISMATCH)``. A passphrase given for a
    key that is not encrypted is ignored, as ``openssl rsa -passin`` does.
    """
    where = str(path)
    data = read_input(path, "key file")
    return key_from_bytes(data, passphrase, where=where)


def key_from_bytes(
    data: bytes, passphrase: Passphrase = None, *, where: str = "key"
) -> rsa.RSAPrivateKey:
    """:func:`load_key` over bytes already read."""
    password = passphrase_bytes(passphrase)
    if looks_pem(data):
        blocks = pem_blocks(data, where)
        keys = [(label, block) for label, block in blocks if label.endswith(b"PRIVATE KEY")]
        if not keys:
            kinds = sorted({kind_of(label) for label, _ in blocks})
            raise InputError(
                where,
                f"holds a {' and a '.join(kinds)}, not a private key",
                "give the .key file",
            )
        label, block = keys[0]
        pem_encrypted = label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
        if label not in _KEY_LABELS:
            kind = label.decode().replace(" PRIVATE KEY", "")
            raise InputError(
                where, f"holds {_article(kind)} {kind} key, not an RSA key", "use an RSA 2048 or 4096 key"
            )
        if b"Proc-Type:" not in block:
            check_key_cost(pem_der(block), where)
        return _open_key(
            lambda pw: serialization.load_pem_private_key(
                block, password=pw, unsafe_skip_rsa_key_validation=True),
            encrypted=pem_encrypted,
            password=password,
            where=where,
        )
    if data[:1] == b"\x30":
        check_key_cost(data, where)
        encrypted: bool | None  # None: DER that opens as no key at all
        try:
            serialization.load_der_private_key(
                data, password=None, unsafe_skip_rsa_key_validation=True)
            encrypted = False
        except TypeError:
            encrypted = True
        except UnsupportedAlgorithm:
            encrypted = False  # a key, of a kind _open_key reports as unreadable
        except ValueError:
            encrypted = None
        if encrypted is not None:
            return _open_key(
                lambda pw: serialization.load_der_private_key(
                    data, password=pw, unsafe_skip_rsa_key_validation=True),
                encrypted=encrypted,
                password=password,
                where=where,
            )
        try:
            x509.load_der_x509_certificate(data)
        except (ValueError, x509.InvalidVersion):
            pass
        else:
            raise InputError(where, "holds a certificate, not a private key", "give the .key file")
    raise InputError(
        where, "is not a private key (neither PEM nor DER)", "give the .key file in PEM form"
    )


def _article(kind: str) -> str:
    """``an`` for a name read aloud from a vowel sound (an EC, an RSA, an Ed25519 key)."""
    vowel_letters = "AEFHILMNORSX" if kind[:1].isupper() else "aeiou"
    return "an" if kind[:1] in vowel_letters else "a"


def rsa_only(key: object, where: str) -> rsa.RSAPrivateKey:
    """``key`` if it is an RSA key, else an InputError naming its kind."""
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.lstrip("_").replace("PrivateKey", "") or "non-RSA"
        raise InputError(
            where, f"holds {_article(kind)} {kind} key, not an RSA key", "use an RSA 2048 or 4096 key"
        )
    return key


def _open_key(
    load: Callable[[bytes | None], PrivateKeyTypes], *, encrypted: bool, password: bytes | None, where: str
) -> rsa.RSAPrivateKey:
    if encrypted and password is None:
        raise ValidationFailed(
            FailureCode.PASSPHRASE_MISMATCH,
            f"{where}: the key is encrypted and no passphrase was given",
        )
    try:
        key = load(password if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise ValidationFailed(
                FailureCode.PASSPHRASE_MISMATCH,
                f"{where}: the passphrase does not open the key",
            ) from None
        raise InputError(
            where, f"holds a damaged private key ({exc})", "export the key again"
        ) from None
    except TypeError as exc:  # pragma: no cover - guarded by `encrypted` above
        raise ValidationFailed(FailureCode.PASSPHRASE_MISMATCH, f"{where}: {exc}") from None
    except Exception as exc:  # unsupported algorithms surface as UnsupportedAlgorithm
        raise InputError(
            where, f"holds a key that cannot be read ({exc})", "export the key again"
        ) from None
    key = rsa_only(key, where)
    check_rsa_bits(key.key_size, where)
    problem = _inconsistency(key)
    if problem:
        raise InputError(where, f"holds a damaged private key ({problem})", "export the key again")
    return key


def _inconsistency(key: rsa.RSAPrivateKey) -> str:
    """What does not add up among the key's numbers ("" when all do).

    Why not OpenSSL's own check (what loading without
    ``unsafe_skip_rsa_key_validation`` runs): it also tests p and q for
    primality, about 100 ms per 2048-bit key here (19 s at 65,536 bits),
    and a shard of 5,000 appliances loads 5,000 keys. A damaged key (a
    flipped bit, a truncated or mixed-up export) breaks one of these
    identities; only a key crafted with composite factors passes them, and
    the appliance's own key is not an adversary's input.
    """
    numbers = key.private_numbers()
    p, q, d, n, e = numbers.p, numbers.q, numbers.d, numbers.public_numbers.n, numbers.public_numbers.e
    if p * q != n:
        return "its primes do not multiply to its modulus"
    if p < 3 or q < 3 or (e * d) % (p - 1) != 1 or (e * d) % (q - 1) != 1:
        return "its private exponent does not invert its public one"
    if numbers.dmp1 != d % (p - 1) or numbers.dmq1 != d % (q - 1) or (numbers.iqmp * q) % p != 1:
        return "its CRT values do not match its primes"
    return ""
