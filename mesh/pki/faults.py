"""Fault recipes: each bad certificate the source document's troubleshooting
table talks about, by name, failing exactly one check.

A recipe is data: what it breaks, which check sees it (``seen_by``), the
:class:`~mesh.errors.FailureCode` a validating appliance or the upload check
should report, and what ``openssl verify -crl_check_all -attime T`` says about
it (the oracle tests hold the factory to that). :func:`issue_leaf` makes the
appliance certificate for a recipe from the issuer :mod:`mesh.pki.deployment`
picked for it (``Recipe.issuer``).

Time: every recipe is judged at the instant ``at`` the PKI is built for.
Healthy certificates are valid from ``at`` for ``LEAF_DAYS``; the CAs are
backdated (``CA_BACKDATE``) so that the expired and not-yet-valid leaves still
nest inside their issuers' validity and fail only their own date check.

The names (``RECIPES``):

==========================  =============================================  =================
recipe                      what is wrong                                  seen by
==========================  =============================================  =================
``ca-signed``               nothing (the healthy certificate)              -
``expired``                 valid-to one day before ``at``                 verifier
``not-yet-valid``           valid-from one day after ``at``                verifier
``revoked``                 listed on its issuer's CRL at ``at``           revocation
``untrusted``               signed by an unrelated root nobody trusts      verifier
``self-signed``             signed by its own key                          verifier
``missing-intermediate``    chain file lacks the issuing CA                verifier
``no-cdp``                  no CRL Distribution Point                      lint / revocation
``crl-unreachable``         CDP on 127.0.0.1 port 1, where nothing listens revocation (fetch)
``weak-key``                RSA 1024                                       strength
``sha1``                    signed with SHA-1                              strength
``missing-subject-fields``  subject has CN only, no C, O or OU             lint
``key-mismatch``            the key file holds another certificate's key   upload
``wrong-passphrase``        key encrypted with another passphrase than     upload
                            the one recorded
``expired-intermediate``    its own issuing CA expired one day before      verifier
``revoked-intermediate``    its own issuing CA is on the root's CRL        revocation
==========================  =============================================  =================
"""

from __future__ import annotations

import datetime as dt

from types import EllipsisType
from typing import TYPE_CHECKING, Sequence, TypedDict, Unpack

from attrs import define, evolve, field, validators
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mesh.errors import FailureCode, InputError
from mesh.pki.issue import (
    CertificateAuthority,
    Issued,
    KeySource,
    SubjectFields,
    self_signed_leaf,
)

if TYPE_CHECKING:  # deployment imports this module
    from mesh.pki.deployment import ApplianceMaterial


__all__ = [
    "Recipe",
    "RECIPES",
    "HEALTHY",
    "recipe",
    "issue_leaf",
    "unreachable_url",
    "resign_sha1",
    "wrong_passphrase_for",
    "LEAF_DAYS",
    "CA_BACKDATE",
    "UNREACHABLE_PORT",
    "FILE_FAULTS",
    "break_files",
]

HEALTHY = "ca-signed"

#: How long an appliance certificate is valid, from the instant it is issued.
LEAF_DAYS = 365

#: CAs start this long before ``at`` so expired leaves nest inside them.
CA_BACKDATE = dt.timedelta(days=3 * 365)

#: Nothing listens on TCP port 1 of the loopback interface (tcpmux is never
#: run), so a connection there is refused at once: an unreachable CRL without
#: waiting for a timeout.
UNREACHABLE_PORT = 1

#: Where a recipe's certificate comes from (see ``Recipe.issuer``).
ISSUERS = (
    "issuing",  # the PKI's issuing CA: the intermediate, or the root without one
    "intermediate",  # an intermediate is needed; the PKI's own one if it has one
    "expired-intermediate",  # a dedicated intermediate that expired before ``at``
    "revoked-intermediate",  # a dedicated intermediate the root has revoked
    "unrelated-root",  # a root outside trust_roots()
    "self",  # self-signed
)


#: Faults in the files an admin uploads, not in the certificate: the chain
#: file lacks the issuing CA; the key file holds another key; the key is
#: encrypted with another passphrase than the one recorded.
FILE_FAULTS = ("no-issuer-in-chain", "other-key", "wrong-passphrase")


@define(frozen=True, kw_only=True)
class Recipe:
    """One named certificate fault (or the healthy certificate).

    ``expected`` is the code a validating appliance or the upload check
    reports for it (None: nothing to report, or only lint sees it).
    ``seen_by`` names the check that catches it: ``verifier`` (chain or
    dates), ``revocation``, ``strength``, ``lint``, ``upload`` or ``-``.
    ``openssl_error`` is the ``X509_V_ERR_*`` number ``openssl verify
    -crl_check_all -attime T`` reports with every CRL of the PKI given, or
    None when openssl accepts the certificate; ``openssl_strict_error`` is the
    same with ``-auth_level 2`` (112-bit security, as mesh's strength rule).
    """

    name: str
    summary: str
    seen_by: str
    expected: FailureCode | None
    issuer: str = "issuing"
    openssl_error: int | None = None
    openssl_strict_error: int | None = None
    # -- what the recipe changes, as data (see issue_leaf and mesh.pki.deployment) --
    #: The leaf is valid from ``at`` plus this many days, for ``valid_days``.
    valid_from: int = 0
    valid_days: int = LEAF_DAYS
    #: Its CRL Distribution Point: its issuer's CRL, none, or one where nothing listens.
    cdp: str = field(default="issuer", validator=validators.in_(("issuer", "none", "unreachable")))
    #: Its key size (None: the PKI's).
    key_bits: int | None = None
    #: Its signature's hash.
    signature: str = field(default="sha256", validator=validators.in_(("sha256", "sha1")))
    #: Whether the subject carries C, O and OU beside the CN.
    subject_fields: bool = True
    #: What is wrong with the files rather than the certificate (see FILE_FAULTS).
    files: str | None = field(default=None, validator=validators.optional(validators.in_(FILE_FAULTS)))
    #: Its issuer lists it on its CRL at ``at``.
    revoked: bool = False

    @property
    def healthy(self) -> bool:
        return self.name == HEALTHY


_X509_V_ERR_CERT_NOT_YET_VALID = 9
_X509_V_ERR_CERT_HAS_EXPIRED = 10
_X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_X509_V_ERR_CERT_REVOKED = 23
_X509_V_ERR_EE_KEY_TOO_SMALL = 66
_X509_V_ERR_CA_MD_TOO_WEAK = 68


class _Fields(TypedDict, total=False):
    """The Recipe fields a row of RECIPES may set beside the first four."""

    issuer: str
    openssl_error: int | None
    openssl_strict_error: int | None
    valid_from: int
    valid_days: int
    cdp: str
    key_bits: int | None
    signature: str
    subject_fields: bool
    files: str | None
    revoked: bool


def _r(
    name: str, summary: str, seen_by: str, expected: FailureCode | None, **kw: Unpack[_Fields]
) -> Recipe:
    error = kw.get("openssl_error")
    kw.setdefault("openssl_strict_error", error)
    return Recipe(name=name, summary=summary, seen_by=seen_by, expected=expected, **kw)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        _r(HEALTHY, "a healthy CA-signed certificate", "-", None),
        _r(
            "expired",
            "valid-to is one day before the instant it is judged at",
            "verifier",
            FailureCode.EXPIRED,
            openssl_error=_X509_V_ERR_CERT_HAS_EXPIRED,
            valid_from=-(LEAF_DAYS + 1),
        ),
        _r(
            "not-yet-valid",
            "valid-from is one day after the instant it is judged at",
            "verifier",
            FailureCode.NOT_YET_VALID,
            openssl_error=_X509_V_ERR_CERT_NOT_YET_VALID,
            valid_from=1,
        ),
        _r(
            "revoked",
            "its issuer's CRL lists it",
            "revocation",
            FailureCode.REVOKED,
            openssl_error=_X509_V_ERR_CERT_REVOKED,
            revoked=True,
        ),
        _r(
            "untrusted",
            "signed by an unrelated root that is not among the trusted roots",
            "verifier",
            FailureCode.CHAIN_UNTRUSTED,
            issuer="unrelated-root",
            openssl_error=_X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        ),
        _r(
            "self-signed",
            "signed by its own key",
            "verifier",
            FailureCode.CHAIN_UNTRUSTED,
            issuer="self",
            openssl_error=_X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
        ),
        _r(
            "missing-intermediate",
            "the chain file lacks the issuing CA",
            "verifier",
            FailureCode.CHAIN_UNTRUSTED,
            issuer="intermediate",
            openssl_error=_X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            files="no-issuer-in-chain",
        ),
        _r(
            "no-cdp",
            "no CRL Distribution Point, so revocation cannot be checked",
            "lint",
            FailureCode.NO_CDP,
            cdp="none",
        ),
        _r(
            "crl-unreachable",
            f"the CRL Distribution Point names 127.0.0.1 port {UNREACHABLE_PORT}, "
            "where nothing listens",
            "revocation",
            FailureCode.CRL_UNREACHABLE,
            cdp="unreachable",
        ),
        _r(
            "weak-key",
            "an RSA 1024 key",
            "strength",
            FailureCode.WEAK_CRYPTO,
            openssl_strict_error=_X509_V_ERR_EE_KEY_TOO_SMALL,
            key_bits=1024,
        ),
        _r(
            "sha1",
            "signed with SHA-1",
            "strength",
            FailureCode.WEAK_CRYPTO,
            openssl_strict_error=_X509_V_ERR_CA_MD_TOO_WEAK,
            signature="sha1",
        ),
        _r(
            "missing-subject-fields",
            "the subject has a CN but no C, O or OU",
            "lint",
            None,
            subject_fields=False,
        ),
        _r(
            "key-mismatch",
            "the key file holds the key of another certificate",
            "upload",
            FailureCode.KEY_MISMATCH,
            files="other-key",
        ),
        _r(
            "wrong-passphrase",
            "the key is encrypted with a passphrase other than the one recorded",
            "upload",
            FailureCode.PASSPHRASE_MISMATCH,
            files="wrong-passphrase",
        ),
        _r(
            "expired-intermediate",
            "its issuing CA expired one day before the instant it is judged at",
            "verifier",
            FailureCode.EXPIRED,
            issuer="expired-intermediate",
            openssl_error=_X509_V_ERR_CERT_HAS_EXPIRED,
        ),
        _r(
            "revoked-intermediate",
            "its issuing CA is listed on the root's CRL",
            "revocation",
            FailureCode.REVOKED,
            issuer="revoked-intermediate",
            openssl_error=_X509_V_ERR_CERT_REVOKED,
        ),
    ]
}


def recipe(name: str, *, where: str = "fault") -> Recipe:
    """The recipe called ``name``; an InputError listing the known names otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError(
            where,
            f"unknown certificate fault {name!r}",
            "use one of: " + ", ".join(RECIPES),
        ) from None


def break_files(
    fault: Recipe,
    material: ApplianceMaterial,
    *,
    issuer: CertificateAuthority | None,
    keys: KeySource,
    key_size: int,
    default_passphrase: str,
) -> ApplianceMaterial:
    """``material`` with its files broken the way ``fault.files`` says.

    ``no-issuer-in-chain``: the chain file lacks the issuing CA.
    ``other-key``: the key file holds a fresh key, not the certificate's.
    ``wrong-passphrase``: the key is encrypted with another passphrase than
    the one recorded (:func:`wrong_passphrase_for` of it).
    """
    if fault.files == "no-issuer-in-chain":
        assert issuer is not None
        return evolve(material, chain=tuple(c for c in material.chain if c != issuer.cert))
    if fault.files == "other-key":
        return evolve(material, key_file_key=keys(key_size))
    if fault.files == "wrong-passphrase":
        recorded = material.passphrase or default_passphrase
        return evolve(material, passphrase=recorded, key_passphrase=wrong_passphrase_for(recorded))
    return material


def unreachable_url(url: str | None) -> str:
    """The same CRL path on 127.0.0.1 port 1 (nothing listens there)."""
    path = "/crl/unreachable.crl"
    if url and "://" in url:
        rest = url.split("://", 1)[1]
        if "/" in rest:
            path = "/" + rest.split("/", 1)[1]
    return f"http://127.0.0.1:{UNREACHABLE_PORT}{path}"


def wrong_passphrase_for(recorded: str) -> str:
    """The passphrase a ``wrong-passphrase`` key is really encrypted with.

    Derived from the recorded one, so a PKI read back from disk can still
    open the key; it never equals the recorded passphrase.
    """
    return f"not-{recorded}"


def issue_leaf(
    fault: Recipe,
    issuer: CertificateAuthority | None,
    common_name: str,
    *,
    at: dt.datetime,
    keys: KeySource,
    key_size: int = 2048,
    subject: SubjectFields = SubjectFields(),
    self_signed_cdp: str | None = None,
    dns_names: Sequence[str] = (),
) -> Issued:
    """The appliance certificate for ``fault``, signed by ``issuer``.

    ``issuer`` is the CA :mod:`mesh.pki.deployment` chose for ``fault.issuer``
    (ignored for ``self``). Faults about files (``missing-intermediate``,
    ``key-mismatch``, ``wrong-passphrase``) get a healthy certificate here;
    the folder breaks the file. ``self_signed_cdp`` is the CRL Distribution
    Point a self-signed certificate names (one of the PKI's CRLs, so that the
    only thing wrong with it is who signed it). ``dns_names``: more DNS names
    for its SAN (:meth:`CertificateAuthority.issue`).
    """
    not_before = at + dt.timedelta(days=fault.valid_from)
    not_after = not_before + dt.timedelta(days=fault.valid_days)
    bits = fault.key_bits or key_size
    if not fault.subject_fields:
        subject = SubjectFields(country=None, organization=None, org_unit=None)
    if fault.issuer == "self":
        return self_signed_leaf(
            common_name,
            not_before=not_before,
            not_after=not_after,
            key=keys(bits),
            subject=subject,
            cdp_url=self_signed_cdp,
            dns_names=dns_names,
        )
    if issuer is None:
        raise ValueError(f"recipe {fault.name!r} needs an issuing CA")
    cdp: str | None | EllipsisType = {
        "issuer": ...,  # the issuer's own CRL (issue()'s default)
        "none": None,
        "unreachable": unreachable_url(issuer.crl_url),
    }[fault.cdp]
    issued = issuer.issue(
        common_name,
        not_before=not_before,
        not_after=not_after,
        key=keys(bits),
        subject=subject,
        cdp_url=cdp,
        dns_names=dns_names,
    )
    if fault.signature == "sha1":
        issued = Issued(
            cert=resign_sha1(issued.cert, issuer.key), key=issued.key, chain=issued.chain
        )
    return issued


# sha256WithRSAEncryption and sha1WithRSAEncryption AlgorithmIdentifiers
# (with NULL parameters): the same length, so one swaps for the other in place.
_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate signed with SHA-1 instead of SHA-256.

    ``cryptography`` refuses to sign certificates with SHA-1 (rightly), but
    the ``sha1`` fault needs exactly such a certificate. The TBS part names
    its signature algorithm, so swap that identifier, sign the TBS bytes with
    RSA PKCS#1 v1.5 over SHA-1, and reassemble ``SEQUENCE {tbs, alg, sig}``.
    """
    tbs = cert.tbs_certificate_bytes
    if _SHA256_RSA not in tbs:
        raise ValueError("certificate is not signed with sha256WithRSAEncryption")
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA, 1)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + _SHA1_RSA + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
