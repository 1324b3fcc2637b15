"""CRLs, parsed once and indexed, so a revocation check costs the same at any size.

Theory of operation: the per-connection path must not touch the CRL's bytes.
OpenSSL's store re-verifies a CRL's signature on every chain check (about 45 ms
for a 1,000,000-entry CRL here) and ``cryptography``'s
``get_revoked_certificate_by_serial_number`` is a linear scan (about 63 ms for a
miss at 1M). So a :class:`CrlIndex` is built once per CRL version (parse, serial
set, dates), its signature is checked once per issuer key and remembered, and a
lookup is a set membership test. Building one for a large CRL takes seconds:
callers on an event loop build it in a worker thread.

The second half of this module is the per-connection revocation check over a
path (:func:`check_revocation`): for every certificate but the trust anchor
that names an http:// CRL Distribution Point, the already-fetched CRL must be
signed by that certificate's issuer, current, and must not list its serial.
The core never fetches: it asks a :data:`CrlLookup` for the CRL of a URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import AbstractSet, Callable, Mapping, Sequence

from attrs import define, field
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from cryptography.x509.oid import SignatureAlgorithmOID

from mesh.errors import FailureCode, Severity, ValidationFailed
from mesh.validation.chain import PARSE_ERRORS, is_self_issued
from mesh.validation.crl_rules import CrlFacts, crl_problem, read_crl_facts
from mesh.validation.finding import Finding
from mesh.validation.memo import IdentityMemo
from mesh.validation.policy import ValidationPolicy

__all__ = [
    "CrlIndex",
    "CrlLookup",
    "ConfiguredCrls",
    "crl_lookup",
    "cdp_urls",
    "check_revocation",
    "check_path_revocation",
]

#: ``url -> CrlIndex`` (already fetched), or the fetch failure carrying its
#: code. A lookup may also raise ValidationFailed; both are treated alike.
#: Anything else it raises ends the verification and reaches the caller (the
#: engine's judgement from memory stops that way at its first cache miss).
CrlLookup = Callable[[str], "CrlIndex | ValidationFailed"]

_PEM_MARK = b"-----BEGIN X509 CRL-----"


@define(frozen=True, kw_only=True, eq=False)
class CrlIndex:
    """One parsed CRL version: issuer, dates, number and the revoked serials."""

    crl: x509.CertificateRevocationList
    issuer: x509.Name
    this_update: dt.datetime
    next_update: dt.datetime | None
    number: int | None
    #: Never changed after indexing (a set, not a frozenset: see crl_rules).
    serials: AbstractSet[int]
    #: The facts the strict profile's CRL rules judge (:mod:`.crl_rules`).
    facts: CrlFacts = CrlFacts(problem=None, idp=None)
    #: The DER the CRL was loaded from, when it was: the signed part is sliced
    #: out of it instead of re-encoded (see :func:`_signature_valid`).
    der: bytes | None = None
    _verified: dict[bytes, bool] = field(factory=dict, alias="_verified")
    _lock: threading.Lock = field(factory=threading.Lock, alias="_lock")
    #: signed_by's answers per issuer certificate object: comparing names and
    #: serialising the key cost ~9 us per handshake before the memo above.
    _by_issuer: IdentityMemo[bool] = field(
        factory=lambda: IdentityMemo(maxsize=64), alias="_by_issuer"
    )

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "CRL") -> CrlIndex:
        """Parse a DER or PEM CRL; anything else is ``crl_invalid``."""
        try:
            if data.lstrip().startswith(_PEM_MARK):
                crl = x509.load_pem_x509_crl(data.strip())
                der = None
            else:
                crl = x509.load_der_x509_crl(data)
                der = bytes(data)
        except (ValueError, x509.InvalidVersion) as exc:
            raise ValidationFailed(
                FailureCode.CRL_INVALID, f"{source} is not a DER or PEM CRL ({exc})"
            ) from None
        return cls.from_crl(crl, source=source, der=der)

    @classmethod
    def from_crl(
        cls,
        crl: x509.CertificateRevocationList,
        *,
        source: str = "CRL",
        der: bytes | None = None,
    ) -> CrlIndex:
        """Index a parsed CRL. ``cryptography`` parses fields lazily, so a CRL
        whose outer structure loads can still fail here: that is ``crl_invalid``."""
        try:
            try:
                number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            except x509.ExtensionNotFound:
                number = None
            serials, facts = read_crl_facts(crl)
            return cls(
                crl=crl,
                issuer=crl.issuer,
                this_update=crl.last_update_utc,
                next_update=crl.next_update_utc,
                number=number,
                serials=serials,
                facts=facts,
                der=der,
            )
        except PARSE_ERRORS as exc:
            raise ValidationFailed(
                FailureCode.CRL_INVALID, f"{source} is not a well-formed CRL ({exc})"
            ) from None

    def __len__(self) -> int:
        return len(self.serials)

    def is_revoked(self, serial: int) -> bool:
        return serial in self.serials

    def signed_by(self, issuer: x509.Certificate) -> bool:
        """True iff ``issuer``'s key signed this CRL and the names match.

        The answer is remembered per issuer key: the signature over a 37 MiB
        CRL is checked once, not once per connection.
        """
        return self._by_issuer.get((issuer,), lambda: self._signed_by(issuer))

    def _signed_by(self, issuer: x509.Certificate) -> bool:
        if issuer.subject != self.issuer:
            return False
        key_id = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with self._lock:
            known = self._verified.get(key_id)
        if known is None:
            try:
                known = _signature_valid(self.crl, issuer.public_key(), der=self.der)
            except (TypeError, ValueError, UnsupportedAlgorithm):
                known = False
            with self._lock:
                self._verified[key_id] = known
        return known

    def is_stale(self, at: dt.datetime) -> bool:
        """A CRL is current until its nextUpdate; one without it never goes stale."""
        return self.next_update is not None and at > self.next_update


_PKCS1_V15 = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA1,
        SignatureAlgorithmOID.RSA_WITH_SHA224,
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)


def _tbs_slice(der: bytes) -> bytes | None:
    """The DER of the signed part (tbsCertList) of a DER CRL, by reading two
    tag-length headers: ``SEQUENCE { tbsCertList SEQUENCE, ... }``. None when
    the bytes do not look like that; the caller then falls back to
    ``tbs_certlist_bytes``. A wrong slice can only make the check fail."""

    def header(offset: int) -> tuple[int, int] | None:
        if offset + 2 > len(der) or der[offset] != 0x30:
            return None
        first = der[offset + 1]
        if first < 0x80:
            return offset + 2, first
        count = first & 0x7F
        if not 1 <= count <= 4 or offset + 2 + count > len(der):
            return None
        return offset + 2 + count, int.from_bytes(der[offset + 2 : offset + 2 + count], "big")

    outer = header(0)
    if outer is None:
        return None
    inner = header(outer[0])
    if inner is None:
        return None
    end = inner[0] + inner[1]
    return der[outer[0] : end] if end <= len(der) else None


def _signature_valid(
    crl: x509.CertificateRevocationList, public_key: object, *, der: bytes | None = None
) -> bool:
    """Check a CRL's signature without holding the GIL for long.

    ``is_signature_valid`` re-encodes and hashes the whole signed structure
    inside calls that keep the GIL: about 0.9 s for a 1,000,000-entry CRL,
    during which an event loop in another thread stalls even though the check
    runs in a worker. For the usual RSA PKCS#1 v1.5 signatures we slice the
    signed bytes out of the DER we were given, hash them with ``hashlib``
    (which releases the GIL on large buffers) and verify the digest; anything
    else goes to ``is_signature_valid``.
    """
    algorithm = crl.signature_hash_algorithm
    if (
        isinstance(public_key, rsa.RSAPublicKey)
        and crl.signature_algorithm_oid in _PKCS1_V15
        and algorithm is not None
    ):
        tbs = (_tbs_slice(der) if der is not None else None) or crl.tbs_certlist_bytes
        digest = hashlib.new(algorithm.name, tbs).digest()
        try:
            public_key.verify(
                crl.signature, digest, padding.PKCS1v15(), asym_utils.Prehashed(algorithm)
            )
        except InvalidSignature:
            return False
        return True
    return crl.is_signature_valid(public_key)  # type: ignore[arg-type]


def crl_lookup(crls: Mapping[str, CrlIndex | ValidationFailed]) -> CrlLookup:
    """A CrlLookup over a dict; a URL that is not in it is ``crl_unreachable``."""

    def lookup(url: str) -> CrlIndex | ValidationFailed:
        found = crls.get(url)
        if found is None:
            return ValidationFailed(FailureCode.CRL_UNREACHABLE, f"no CRL was fetched from {url}")
        return found

    return lookup


class ConfiguredCrls:
    """CRL files given to an appliance out of band, found by their issuer's name.

    Many appliances (and Envoy) are handed CRL files instead of fetching the
    CRL Distribution Point. A certificate whose issuer has a configured CRL
    is checked against it, whether or not the certificate names a CDP; one
    whose issuer has none falls back to its CDP.
    """

    def __init__(self, crls: Sequence[CrlIndex] = ()) -> None:
        self._by_issuer: dict[x509.Name, list[CrlIndex]] = {}
        for index in crls:
            self._by_issuer.setdefault(index.issuer, []).append(index)

    def __bool__(self) -> bool:
        return bool(self._by_issuer)

    def __len__(self) -> int:
        return sum(len(found) for found in self._by_issuer.values())

    def for_issuer(self, issuer: x509.Certificate) -> list[CrlIndex]:
        """The configured CRLs named for ``issuer``, newest first."""
        found = self._by_issuer.get(issuer.subject, [])
        return sorted(found, key=lambda index: index.this_update, reverse=True)


#: cdp_urls's answers by certificate identity (see :mod:`.memo`).
_CDPS: IdentityMemo[tuple[tuple[str, ...], tuple[str, ...]]] = IdentityMemo(maxsize=512)


def cdp_urls(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The certificate's CDP URLs: (http:// ones, any other ones).

    Asked for every certificate of every handshake's path, twice (the
    fetch, then the verdict); reading the extension is ~8 us, so the answer
    is remembered per certificate object.
    """
    return _CDPS.get((cert,), lambda: _read_cdp_urls(cert))


def _read_cdp_urls(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return (), ()
    except ValueError:
        # A malformed extension: treat as naming nothing usable.
        return (), ("(unparseable CRL Distribution Points extension)",)
    http: list[str] = []
    other: list[str] = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                url = str(name.value)
                (http if url.lower().startswith("http://") else other).append(url)
    return tuple(http), tuple(other)


def check_revocation(
    path: Sequence[x509.Certificate],
    *,
    anchored: bool,
    at: dt.datetime,
    crls: CrlLookup,
    soft_fail: bool = False,
    missing_cdp_fails: bool = False,
    strict: bool = False,
    configured: ConfiguredCrls | None = None,
) -> list[Finding]:
    """Revocation findings for every certificate of ``path`` but the anchor.

    ``strict``: apply the complete CRL processing of :mod:`.crl_rules`.
    ``configured``: CRL files given out of band; a certificate whose issuer
    has one is judged against it instead of its CDP.

    ``anchored``: the last certificate is the trust anchor (not checked). A
    self-issued certificate (a root presented as a leaf) is never checked.
    A certificate whose issuer is not on ``path`` (an untrusted, unfinished
    path) cannot have its CRL's signature judged and is skipped: the chain
    finding already refuses it.
    """
    found: list[Finding] = []
    last = len(path) - 1 if anchored else len(path)
    for depth, cert in enumerate(path[:last]):
        if is_self_issued(cert):
            continue
        issuer = path[depth + 1] if depth + 1 < len(path) else None
        if configured and issuer is not None:
            files = configured.for_issuer(issuer)
            if files:
                found.extend(_check_configured(cert, issuer, depth, at, files, strict))
                continue
        # CRL files cover their chains: with any configured, a certificate
        # that neither they nor a CDP cover is refused (as Envoy and
        # `openssl verify -crl_check_all` refuse it).
        must = missing_cdp_fails or bool(configured)
        found.extend(_check_one(cert, issuer, depth, at, crls, soft_fail, must, strict))
    return found


def check_path_revocation(
    path: Sequence[x509.Certificate],
    *,
    at: dt.datetime,
    crls: CrlLookup,
    policy: ValidationPolicy,
    configured: ConfiguredCrls | None,
    strict: bool,
) -> list[Finding]:
    """:func:`check_revocation` over an anchored path, with the policy's knobs."""
    return check_revocation(
        path,
        anchored=True,
        at=at,
        crls=crls,
        soft_fail=policy.soft_fail,
        missing_cdp_fails=policy.missing_cdp == "fail",
        strict=strict,
        configured=configured,
    )


def _check_configured(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    depth: int,
    at: dt.datetime,
    files: list[CrlIndex],
    strict: bool,
) -> list[Finding]:
    """Judge ``cert`` against its issuer's configured CRL (the newest one the
    issuer's key signed)."""
    signed = [index for index in files if index.signed_by(issuer)]
    if not signed:
        return [
            Finding.about(
                FailureCode.CRL_SIGNATURE_INVALID,
                cert,
                f"no configured CRL named for {issuer.subject.rfc4514_string()} "
                "is signed by that issuer's key",
                depth=depth,
            )
        ]
    return _judge_crl(cert, issuer, depth, at, signed[0], "configured CRL", strict, False)


def _check_one(
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    depth: int,
    at: dt.datetime,
    crls: CrlLookup,
    soft_fail: bool,
    missing_cdp_fails: bool,
    strict: bool = False,
) -> list[Finding]:
    http, other = cdp_urls(cert)
    if not http:
        if other:
            return [
                Finding.about(
                    FailureCode.CRL_URL_UNSUPPORTED,
                    cert,
                    f"CRL Distribution Point {other[0]} is not an http:// URL",
                    severity=Severity.WARNING if soft_fail else Severity.ERROR,
                    depth=depth,
                )
            ]
        return [
            Finding.about(
                FailureCode.NO_CDP,
                cert,
                "no CRL Distribution Point and no configured CRL file of its issuer; "
                "revocation not checked",
                severity=Severity.ERROR if missing_cdp_fails else Severity.NOTE,
                depth=depth,
            )
        ]
    url = http[0]
    try:
        got = crls(url)
    except ValidationFailed as exc:
        got = exc
    if isinstance(got, ValidationFailed):
        retrieval = got.code.is_crl_retrieval
        return [
            Finding.about(
                got.code,
                cert,
                got.detail or f"CRL from {url} could not be used",
                severity=Severity.WARNING if soft_fail and retrieval else Severity.ERROR,
                depth=depth,
            )
        ]
    if issuer is None:
        return []
    if not got.signed_by(issuer):
        return [
            Finding.about(
                FailureCode.CRL_SIGNATURE_INVALID,
                cert,
                f"CRL from {url} (issuer {got.issuer.rfc4514_string()}) is not signed "
                f"by the certificate's issuer {issuer.subject.rfc4514_string()}",
                depth=depth,
            )
        ]
    return _judge_crl(cert, issuer, depth, at, got, f"CRL from {url}", strict, soft_fail)


def _judge_crl(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    depth: int,
    at: dt.datetime,
    got: CrlIndex,
    source: str,
    strict: bool,
    soft_fail: bool,
) -> list[Finding]:
    """A CRL signed by the issuer: usable (strict rules), current, not listing ``cert``."""
    found = []
    if strict:
        problem = crl_problem(
            got.facts, this_update=got.this_update, cert=cert, issuer=issuer, at=at
        )
        if problem is not None:
            return [
                Finding.about(
                    FailureCode.CRL_INVALID,
                    cert,
                    f"{source}: {problem}",
                    severity=Severity.WARNING if soft_fail else Severity.ERROR,
                    depth=depth,
                )
            ]
    if got.is_stale(at):
        assert got.next_update is not None
        found.append(
            Finding.about(
                FailureCode.CRL_STALE,
                cert,
                f"{source} had nextUpdate {got.next_update.isoformat()}, "
                f"before {at.isoformat()}",
                depth=depth,
            )
        )
    if got.is_revoked(cert.serial_number):
        number = "" if got.number is None else f" (CRL number {got.number})"
        found.append(
            Finding.about(
                FailureCode.REVOKED,
                cert,
                f"serial {cert.serial_number:X} is listed in the {source}{number}",
                depth=depth,
            )
        )
    return found
