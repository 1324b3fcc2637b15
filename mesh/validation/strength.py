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

__all__ = ["check_strength", "weakness"]

_WEAK_HASHES = (hashes.MD5, hashes.SHA1)
_MIN_EC_BITS = 224


def weakness(
    cert: x509.Certificate, *, min_rsa_bits: int = 2048, check_signature: bool = True
) -> list[str]:
    """What is weak about one certificate, as detail sentences (empty = nothing)."""
    problems = []
    key = cert.public_key()
    if isinstance(key, (rsa.RSAPublicKey, dsa.DSAPublicKey)) and key.key_size < min_rsa_bits:
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"
        problems.append(f"{kind} key of {key.key_size} bits (minimum {min_rsa_bits})")
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < _MIN_EC_BITS:
        problems.append(f"EC key of {key.key_size} bits (minimum {_MIN_EC_BITS})")
    if check_signature:
        try:
            algorithm = cert.signature_hash_algorithm
        except UnsupportedAlgorithm:
            algorithm = None
        if isinstance(algorithm, _WEAK_HASHES):
            problems.append(f"signed with {algorithm.name.upper()}")
    return problems


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
