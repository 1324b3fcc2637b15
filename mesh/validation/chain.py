"""Facts of one certificate, and the ``openssl`` profile's path: OpenSSL's first one.

:func:`malformation`, :func:`is_self_issued` and :func:`public_key_der` are
facts of an immutable certificate, remembered by identity (bounded) and shared
by every verifier: a fleet of appliances reads each CA certificate once.

:class:`FirstPath` is how the ``openssl`` profile builds a path: OpenSSL's
``X509_verify_cert`` through pyOpenSSL's ``X509Store``/``X509StoreContext``,
the verifier the ``openssl verify`` CLI runs, taking the first issuer it
finds at each step. We map its integer error codes, never the message text.
(The strict profile searches every candidate path instead: :mod:`.strict`.)

Two deliberate narrowings of what we ask OpenSSL:

* Time: the store carries ``X509_V_FLAG_NO_CHECK_TIME``. Validity periods are
  judged by :mod:`mesh.validation.period` (RFC 5280's inclusive notAfter, one
  typed finding per certificate, where OpenSSL stops at the first error and
  3.0 and newer releases disagree at exactly notAfter). A side effect that
  matters: the store holds no per-call state (no ``set_time``), so one store
  per trust set is built once, cached, and shared by every handshake.
* Revocation: no CRLs in the store. OpenSSL re-checks a CRL's signature on
  every verification (about 45 ms at 1M entries); :mod:`.revocation` checks
  an indexed CRL once per version instead.

Path building is a pure function of (presented chain, trust anchors), so its
result is memoised by the verifier that owns the :class:`FirstPath`: a path may
be built for ``crl_urls`` and again for the verdict at no extra cost. The memo
is looked up by object identity (:mod:`.memo`: hashing a certificate costs
about 2 us).
"""

from __future__ import annotations

import functools
from typing import Sequence

from attrs import define
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from OpenSSL import crypto

from mesh.errors import FailureCode
from mesh.validation.finding import Finding
from mesh.validation.memo import IdentityMemo

__all__ = [
    "public_key_der",
    "PathResult",
    "FirstPath",
    "is_self_issued",
    "malformation",
    "PARSE_ERRORS",
    "VERIFY_ERROR_NAMES",
]

#: ``X509_V_FLAG_NO_CHECK_TIME`` from OpenSSL's x509_vfy.h (stable since 1.1.0;
#: pyOpenSSL does not name it).
_NO_CHECK_TIME = 0x200000

#: OpenSSL's verify error numbers we name in details (x509_vfy.h). Anything
#: else still maps to ``chain_untrusted``, with the number.
VERIFY_ERROR_NAMES: dict[int, str] = {
    2: "UNABLE_TO_GET_ISSUER_CERT",
    4: "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
    6: "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
    7: "CERT_SIGNATURE_FAILURE",
    9: "CERT_NOT_YET_VALID",
    10: "CERT_HAS_EXPIRED",
    18: "DEPTH_ZERO_SELF_SIGNED_CERT",
    19: "SELF_SIGNED_CERT_IN_CHAIN",
    20: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    21: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    22: "CERT_CHAIN_TOO_LONG",
    24: "NO_ISSUER_PUBLIC_KEY",
    25: "PATH_LENGTH_EXCEEDED",
    27: "CERT_UNTRUSTED",
    28: "CERT_REJECTED",
    32: "KEYUSAGE_NO_CERTSIGN",
    34: "UNHANDLED_CRITICAL_EXTENSION",
    37: "INVALID_NON_CA",
    41: "INVALID_EXTENSION",
    55: "PATH_LOOP",
    66: "EE_KEY_TOO_SMALL",
    67: "CA_KEY_TOO_SMALL",
    68: "CA_MD_TOO_WEAK",
    76: "UNSUPPORTED_SIGNATURE_ALGORITHM",
    79: "INVALID_CA",
}

#: Verify errors that are not about trust. With NO_CHECK_TIME and no
#: security level set they should not occur; if a future OpenSSL reports them
#: anyway, they keep their own code rather than hide behind chain_untrusted.
_NOT_TRUST: dict[int, FailureCode] = {
    9: FailureCode.NOT_YET_VALID,
    10: FailureCode.EXPIRED,
    66: FailureCode.WEAK_CRYPTO,
    67: FailureCode.WEAK_CRYPTO,
    68: FailureCode.WEAK_CRYPTO,
}


@define(frozen=True, kw_only=True)
class PathResult:
    """The path a chain check found, leaf first.

    ``trusted``: the verifier built a path to a trust anchor and every
    signature on it holds; ``path`` then ends with that anchor. Otherwise
    ``path`` is a best-effort walk by issuer name through the presented
    certificates and the anchors (signatures unchecked) — good for naming
    certificates in findings, never for trusting them — and ``error`` says
    what the verifier found.
    """

    path: tuple[x509.Certificate, ...]
    trusted: bool
    error: Finding | None = None


def public_key_der(key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key: how two keys are compared
    (a certificate's and the key file's, a CA's and a CRL signer's)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


#: is_self_issued's answers per certificate object (comparing two names in
#: ``cryptography`` is ~3 us, and every check asks about every certificate).
_SELF_ISSUED: IdentityMemo[bool] = IdentityMemo(maxsize=512)


def is_self_issued(cert: x509.Certificate) -> bool:
    return _SELF_ISSUED.get((cert,), lambda: cert.issuer == cert.subject)


#: What reading a damaged certificate's or CRL's fields can raise: cryptography's
#: parse errors are ValueError and TypeError plus a few of its own Exception classes.
PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
    crypto.Error,
)


#: Certificates remembered by :func:`malformation`.
#: A check looks each certificate up two or three times in quick succession
#: (``crl_urls``, then ``validate_peer``), and the anchors and intermediates
#: are the same for every check, so a few hundred entries answer nearly every
#: lookup. A larger memo mostly kept peers' leaf certificates alive (with
#: their parsed names and an OpenSSL copy, ~20 kB each) long after their
#: handshake: 4,096 of them at 5,000 sensors.
_CERT_MEMO = 256


_OPENSSL_COPIES: IdentityMemo[crypto.X509] = IdentityMemo(maxsize=_CERT_MEMO)


def openssl_copy(cert: x509.Certificate) -> crypto.X509:
    """``cert`` as OpenSSL's object, converted once for every check that needs it.

    :func:`malformation` converts each certificate (OpenSSL must parse it
    too), and both OpenSSL verifiers (the ``openssl`` profile's
    :class:`FirstPath`, the strict profile's per-path check) want the same
    copies a moment later: one memo, so a new peer's leaf is converted once,
    not three times.

    Raises:
        crypto.Error: OpenSSL cannot parse it (nothing is remembered).
    """
    return _OPENSSL_COPIES.get((cert,), lambda: crypto.X509.from_cryptography(cert))


@functools.lru_cache(maxsize=_CERT_MEMO)
def malformation(cert: x509.Certificate) -> str | None:
    """Why ``cert`` cannot be judged, or None.

    ``cryptography`` parses a certificate's fields lazily, so a certificate
    that loaded can still raise when a check reads its subject or an
    extension. Every field a check reads is read here once, up front, so no
    check meets a parse error half way through a verdict. A malformed trust
    anchor is left out of the store; a malformed presented certificate is
    ``chain_untrusted``.
    """
    try:
        cert.subject
        cert.issuer
        cert.serial_number
        cert.not_valid_before_utc
        cert.not_valid_after_utc
        cert.public_key()
        for extension in cert.extensions:
            extension.value
        openssl_copy(cert)
    except x509.DuplicateExtension as exc:
        return (
            "RFC 5280 4.2: a certificate must not include more than one instance "
            f"of an extension ({exc.oid.dotted_string} appears twice)"
        )
    except PARSE_ERRORS as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _walk_by_name(
    chain: tuple[x509.Certificate, ...], trust: tuple[x509.Certificate, ...]
) -> tuple[x509.Certificate, ...]:
    """Leaf, then each issuer found by subject name; stops at a self-issued one."""
    path = [chain[0]]
    pool = list(chain[1:]) + list(trust)
    current = chain[0]
    while not is_self_issued(current):
        nxt = next(
            (c for c in pool if c.subject == current.issuer and c not in path), None
        )
        if nxt is None:
            break
        path.append(nxt)
        current = nxt
    return tuple(path)


class FirstPath:
    """OpenSSL's first path, as the ``openssl`` profile builds it; owns its memos.

    Path building is a pure function of (presented chain, trust anchors), so
    a :class:`~mesh.validation.verifier.Verifier` keeps one of these and a
    repeat peer's path costs a lookup. One OpenSSL store per trust set is
    built once and never mutated after (no ``set_time``: dates are
    :mod:`.period`'s), so every handshake shares it.
    """

    def __init__(self) -> None:
        self._paths: IdentityMemo[PathResult] = IdentityMemo(maxsize=256)
        self._stores: IdentityMemo[crypto.X509Store] = IdentityMemo(maxsize=16)

    def build(
        self, chain: Sequence[x509.Certificate], trust: Sequence[x509.Certificate]
    ) -> PathResult:
        """Build and verify the path from ``chain[0]`` to one of ``trust``."""
        return self._paths.get((*chain, None, *trust), lambda: self._checked(chain, trust))

    def _checked(
        self, chain: Sequence[x509.Certificate], trust: Sequence[x509.Certificate]
    ) -> PathResult:
        if not chain:
            return PathResult(
                path=(),
                trusted=False,
                error=Finding(
                    code=FailureCode.CHAIN_UNTRUSTED, detail="no certificate was presented"
                ),
            )
        for depth, cert in enumerate(chain):
            problem = malformation(cert)
            if problem is not None:
                return PathResult(
                    path=(),
                    trusted=False,
                    error=Finding.about(
                        FailureCode.CHAIN_UNTRUSTED,
                        cert,
                        f"the certificate at position {depth} of the chain is malformed: {problem}",
                        depth=depth,
                    ),
                )
        anchors = tuple(c for c in trust if malformation(c) is None)
        return self._verified(tuple(chain), anchors)

    def _verified(
        self, chain: tuple[x509.Certificate, ...], trust: tuple[x509.Certificate, ...]
    ) -> PathResult:
        leaf = chain[0]
        if not trust:
            return PathResult(
                path=_walk_by_name(chain, trust),
                trusted=False,
                error=Finding.about(
                    FailureCode.CHAIN_UNTRUSTED,
                    leaf,
                    "no trust anchor was given to validate against",
                    depth=0,
                ),
            )
        context = crypto.X509StoreContext(
            self._store(trust), openssl_copy(leaf), [openssl_copy(c) for c in chain[1:]]
        )
        try:
            verified = context.get_verified_chain()
        except crypto.X509StoreContextError as exc:
            number, depth = int(exc.errors[0]), int(exc.errors[1])
            text = str(exc.errors[2])
            name = VERIFY_ERROR_NAMES.get(number, "verify error")
            failing = exc.certificate.to_cryptography() if exc.certificate else leaf
            return PathResult(
                path=_walk_by_name(chain, trust),
                trusted=False,
                error=Finding.about(
                    _NOT_TRUST.get(number, FailureCode.CHAIN_UNTRUSTED),
                    failing,
                    f"{text} (OpenSSL {name}, error {number} at depth {depth})",
                    depth=depth,
                ),
            )
        return PathResult(path=tuple(c.to_cryptography() for c in verified), trusted=True)

    def _store(self, trust: tuple[x509.Certificate, ...]) -> crypto.X509Store:
        def build() -> crypto.X509Store:
            store = crypto.X509Store()
            for anchor in trust:
                store.add_cert(openssl_copy(anchor))
            store.set_flags(_NO_CHECK_TIME)
            return store

        return self._stores.get(trust, build)
