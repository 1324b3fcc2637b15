"""Weak crypto: small keys and SHA-1/MD5 signatures along the path.

The source document asks for RSA 2048 or 4096 bits and SHA-256 with RSA. We
refuse (``weak_crypto``) an RSA or DSA key under ``policy.min_rsa_bits`` (an
EC key under 224 bits) on any certificate of the path, trust anchor included
since its key signs the next certificate, and an MD5 or SHA-1 signature on
any certificate whose signature is actually relied on — every one but the
trust anchor, whose self-signature RFC 5280 (section 6.1) does not use. This
is also where OpenSSL's ``-auth_level 2`` draws the line, so the openssl CLI
oracle agrees. ``policy.allow_weak`` turns these into warnings, as a lenient
appliance would.
"""

from __future__ import annotations

from typing import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from mesh.errors import FailureCode, Severity
from mesh.validation.finding import Finding
from mesh.validation.memo import IdentityMemo

__all__ = ["check_strength", "weakness"]

_WEAK_HASHES = (hashes.MD5, hashes.SHA1)
_MIN_EC_BITS = 224


def weakness(
    cert: x509.Certificate, *, min_rsa_bits: int = 2048, check_signature: bool = True
) -> list[str]:
    """What is weak about one certificate, as detail sentences (empty = nothing)."""
    kind, bits, signed_with = _strength_facts(cert)
    problems = []
    if kind in ("RSA", "DSA") and bits < min_rsa_bits:
        problems.append(f"{kind} key of {bits} bits (minimum {min_rsa_bits})")
    elif kind == "EC" and bits < _MIN_EC_BITS:
        problems.append(f"EC key of {bits} bits (minimum {_MIN_EC_BITS})")
    if check_signature and signed_with is not None:
        problems.append(f"signed with {signed_with}")
    return problems


#: _strength_facts' answers per certificate object (see :mod:`.memo`).
_FACTS: IdentityMemo[tuple[str, int, str | None]] = IdentityMemo(maxsize=512)


def _strength_facts(cert: x509.Certificate) -> tuple[str, int, str | None]:
    """(key kind, key bits, weak signature hash or None): read once per object."""
    return _FACTS.get((cert,), lambda: _read_strength_facts(cert))


def _read_strength_facts(cert: x509.Certificate) -> tuple[str, int, str | None]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        kind, bits = "RSA", key.key_size
    elif isinstance(key, dsa.DSAPublicKey):
        kind, bits = "DSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, bits = "EC", key.key_size
    else:
        kind, bits = "other", 0
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    weak = algorithm.name.upper() if isinstance(algorithm, _WEAK_HASHES) else None
    return kind, bits, weak


def check_strength(
    path: Sequence[x509.Certificate],
    *,
    anchored: bool,
    allow_weak: bool = False,
    min_rsa_bits: int = 2048,
) -> list[Finding]:
    """One finding per weak certificate of ``path`` (leaf first).

    ``anchored``: the last certificate of ``path`` is the trust anchor, whose
    own signature is not judged.
    """
    severity = Severity.WARNING if allow_weak else Severity.ERROR
    found = []
    last = len(path) - 1
    for depth, cert in enumerate(path):
        problems = weakness(
            cert,
            min_rsa_bits=min_rsa_bits,
            check_signature=not (anchored and depth == last),
        )
        if problems:
            found.append(
                Finding.about(
                    FailureCode.WEAK_CRYPTO,
                    cert,
                    "; ".join(problems),
                    severity=severity,
                    depth=depth,
                )
            )
    return found
