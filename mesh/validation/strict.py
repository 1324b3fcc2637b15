"""The strict profile: judge every candidate path, keep the first that passes.

Theory of operation. :mod:`.paths` proposes candidate paths by names and
key identifiers. Each candidate is judged in full, in this order:

1. mesh's RFC 5280 structural rules (:mod:`.structure`), so a refusal names
   the rule and its section;
2. OpenSSL's verifier on exactly that path — the anchor alone in the store,
   the path's intermediates alone as untrusted certificates — with
   ``X509_V_FLAG_X509_STRICT`` (RFC 5280 structure, enforced by maintained
   code), ``X509_V_FLAG_PARTIAL_CHAIN`` (any trusted certificate is an
   anchor, as RFC 5280 6.1 has it, not only a self-signed root) and
   ``X509_V_FLAG_NO_CHECK_TIME`` (dates are :mod:`.period`'s, step 3). It
   checks every signature, basicConstraints, pathLenConstraint (not
   counting self-issued intermediates, 6.1.4 (l)), keyUsage and name
   constraints (including a CN-only leaf's CN against DNS constraints);
3. validity periods of every certificate on the path, RFC 5280's inclusive
   bounds;
4. strength (RSA/DSA under the policy minimum, SHA-1/MD5 signatures);
5. purpose: the leaf's EKU, and every CA's EKU below the anchor;
6. the expected name (RFC 6125, SAN first, CN only without a SAN, and
   never under name constraints: :func:`.identity.check_constrained_cn`).

Why OpenSSL per path and not pyca's ``PolicyBuilder``: pyca's verifier
refuses SHA-1 signatures and RSA keys under 2048 bits with no setting to
allow them, so it could not search the weak paths that ``allow_weak``
accepts, and it counts self-issued intermediates against pathLen (a
documented departure from RFC 5280 6.1.4 (l)); its errors are text. OpenSSL
reports stable integer codes and follows RFC 5280 on those points; on one
fixed path its first-path habit does not matter.

Choosing. The first candidate (in :mod:`.paths`' order) with no error is
the path; a strong path is preferred to one that passes only because the
policy allows weak crypto. When none passes, the path reported is the one
that got furthest: an anchored path before a dead end, then the path
whose first error comes latest in the documented order of codes
(``chain_untrusted`` is the earliest: a path refused only for its dates
got further than one whose signatures fail), then the longer path, then
proposal order. Its findings are the verdict's, so the operator sees the
real reason.

Revocation is judged afterwards, on the chosen path only: CRLs are fetched
for that path (:meth:`Verifier.crl_urls`), not for every candidate.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from attrs import define
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from OpenSSL import crypto

from mesh.errors import FailureCode, Severity
from mesh.validation.chain import VERIFY_ERROR_NAMES, malformation, openssl_copy
from mesh.validation.finding import Finding
from mesh.validation.identity import (
    check_constrained_cn,
    check_name,
    check_path_purpose,
    check_purpose,
)
from mesh.validation.paths import Candidate
from mesh.validation.period import check_periods
from mesh.validation.policy import ValidationPolicy
from mesh.validation.strength import check_strength
from mesh.validation.structure import check_structure
from mesh.validation.verdict import PRIMARY_ORDER

__all__ = ["Judged", "StrictChecker"]

#: OpenSSL flags (x509_vfy.h): X509_STRICT, PARTIAL_CHAIN, NO_CHECK_TIME.
_X509_STRICT = 0x20
_PARTIAL_CHAIN = 0x80000
_NO_CHECK_TIME = 0x200000

#: Verify errors about dates or strength: those are judged by mesh's own
#: checks (with their own codes), so OpenSSL's word on them is not repeated.
_NOT_TRUST = frozenset({9, 10, 66, 67, 68})

#: The documented order of codes: a path whose first error comes later got further.
_RANK = {code: index for index, code in enumerate(PRIMARY_ORDER)}


@define(frozen=True, kw_only=True)
class Judged:
    """One candidate path and what its checks found (revocation aside)."""

    candidate: Candidate
    findings: tuple[Finding, ...]

    @property
    def passes(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def weak(self) -> bool:
        return any(f.code is FailureCode.WEAK_CRYPTO for f in self.findings)

    def progress(self) -> tuple[int, int, int]:
        """How far this path got: larger is further (see the module docstring)."""
        errors = [f for f in self.findings if f.severity is Severity.ERROR]
        first = min((_RANK.get(f.code, len(_RANK)) for f in errors), default=len(_RANK) + 1)
        return (int(self.candidate.anchored), first, len(self.candidate.path))


class StrictChecker:
    """Judges candidate paths for one trust set; owns its OpenSSL stores."""

    def __init__(self) -> None:
        self._stores: dict[int, tuple[x509.Certificate, crypto.X509Store]] = {}

    def judge(
        self, candidate: Candidate, *, at: dt.datetime | None, policy: ValidationPolicy
    ) -> Judged:
        """Every check but revocation on one candidate; ``at`` None skips the dates."""
        path = candidate.path
        findings: list[Finding] = []
        if not candidate.anchored:
            findings.append(
                Finding.about(
                    FailureCode.CHAIN_UNTRUSTED,
                    path[-1],
                    candidate.stop,
                    depth=len(path) - 1,
                )
            )
        findings += check_structure(path, anchored=candidate.anchored)
        if candidate.anchored and len(path) > 1 and not findings:
            findings += self._maintained(path, at)
        if at is not None:
            findings += check_periods(path, at)
        findings += check_strength(
            path,
            anchored=candidate.anchored,
            allow_weak=policy.allow_weak,
            min_rsa_bits=policy.min_rsa_bits,
        )
        findings += check_purpose(path[0], policy.purpose, any_usage=False)
        findings += check_path_purpose(path, policy.purpose, anchored=candidate.anchored)
        findings += check_name(path[0], policy.expected_name)
        findings += check_constrained_cn(path, policy.expected_name)
        return Judged(candidate=candidate, findings=tuple(findings))

    def choose(self, judged: Sequence[Judged]) -> Judged:
        """The first strong passing path, else the first passing one, else the
        furthest (the module docstring says how that is decided)."""
        passing = [j for j in judged if j.passes]
        strong = [j for j in passing if not j.weak]
        if strong:
            return strong[0]
        if passing:
            return passing[0]
        best = judged[0]
        for candidate in judged[1:]:
            if candidate.progress() > best.progress():
                best = candidate
        return best

    def _maintained(
        self, path: tuple[x509.Certificate, ...], at: dt.datetime | None
    ) -> list[Finding]:
        """What the maintained verifiers find on exactly this path (anchor last).

        OpenSSL always judges. pyca judges too when it can (:func:`_pyca_can_judge`);
        a path holds only if both hold, with one exception: OpenSSL applies
        DNS name constraints to the subject CN of a leaf that has no DNS
        SAN, even when the leaf has other SANs and so is not identified by
        its CN at all (RFC 6125 6.4.4). When OpenSSL's only objection is a
        name constraint and the leaf has a SAN, pyca's answer on the
        constraints stands. On a path with a self-issued intermediate (a CA
        key rollover) pyca is asked only then, and only its acceptance
        counts: it counts that intermediate against pathLen, so its refusal
        proves nothing and OpenSSL's objection stays. A leaf without any SAN
        is named by its CN (mesh's rule), so its CN must satisfy the
        constraints and OpenSSL's objection stands.
        """
        openssl = self._openssl(path)
        cn_only_objection = (
            openssl is not None
            and openssl[1] in _NAME_CONSTRAINT_ERRORS
            and _has_san(path[0])
        )
        if not _pyca_can_judge(path):
            if openssl is None:
                return []
            if (
                cn_only_objection
                and _pyca_can_judge(path, self_issued=True)
                and _pyca(path, at) is None
            ):
                return []
            return [openssl[0]]
        pyca = _pyca(path, at)
        found = []
        if openssl is not None and not cn_only_objection:
            found.append(openssl[0])
        if pyca is not None:
            found.append(pyca)
        return found

    def _openssl(self, path: tuple[x509.Certificate, ...]) -> tuple[Finding, int] | None:
        """OpenSSL's verdict on exactly this path (anchor last), or None if it holds."""
        anchor = path[-1]
        context = crypto.X509StoreContext(
            self._store(anchor), openssl_copy(path[0]), [openssl_copy(c) for c in path[1:-1]]
        )
        try:
            context.verify_certificate()
        except crypto.X509StoreContextError as exc:
            number, depth = int(exc.errors[0]), int(exc.errors[1])
            if number in _NOT_TRUST:
                return None
            text = str(exc.errors[2])
            name = VERIFY_ERROR_NAMES.get(number, "verify error")
            failing = exc.certificate.to_cryptography() if exc.certificate else path[0]
            finding = Finding.about(
                FailureCode.CHAIN_UNTRUSTED,
                failing,
                f"{text} (OpenSSL {name}, error {number} at depth {depth})",
                depth=depth,
            )
            return finding, number
        return None

    def _store(self, anchor: x509.Certificate) -> crypto.X509Store:
        entry = self._stores.get(id(anchor))
        if entry is None:
            store = crypto.X509Store()
            store.add_cert(openssl_copy(anchor))
            store.set_flags(_X509_STRICT | _PARTIAL_CHAIN | _NO_CHECK_TIME)
            entry = self._stores[id(anchor)] = (anchor, store)
        return entry[1]


#: OpenSSL's name-constraint errors (x509_vfy.h): PERMITTED_VIOLATION,
#: EXCLUDED_VIOLATION, SUBTREE_MINMAX, UNSUPPORTED_CONSTRAINT_TYPE,
#: UNSUPPORTED_CONSTRAINT_SYNTAX, UNSUPPORTED_NAME_SYNTAX.
_NAME_CONSTRAINT_ERRORS = frozenset({47, 48, 49, 51, 52, 53})

#: What pyca's verifier accepts at all (its web-PKI algorithm set): outside
#: it, pyca would refuse for the algorithm alone, which is mesh's strength
#: check's business (``weak_crypto``, or accepted under ``allow_weak``).
_PYCA_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSASSA_PSS,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_PYCA_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def _pyca_can_judge(path: Sequence[x509.Certificate], *, self_issued: bool = False) -> bool:
    """pyca judges a path only where it would not refuse for reasons that are
    not RFC 5280's: keys and signatures outside its web-PKI set, and
    self-issued intermediates (it counts them against pathLen, which RFC
    5280 6.1.4 (l) does not; ``self_issued=True`` lets them through)."""
    last = len(path) - 1
    for depth, cert in enumerate(path):
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                return False
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in _PYCA_CURVES:
                return False
        else:
            return False
        if depth < last and cert.signature_algorithm_oid not in _PYCA_SIGNATURES:
            return False
        if not self_issued and 0 < depth < last and cert.subject == cert.issuer:
            return False
    return True


def _has_san(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return True


def _relaxed(policy: ExtensionPolicy, *kinds: type[x509.ExtensionType]) -> ExtensionPolicy:
    for kind in kinds:
        policy = policy.may_be_present(kind, Criticality.AGNOSTIC, None)
    return policy


#: pyca's web-PKI extension policies, with what mesh judges itself taken out:
#: EKU (``wrong_purpose``, on the leaf and every CA), the leaf's SAN (mesh
#: names a SAN-less leaf by its CN), its basicConstraints and keyUsage (RFC
#: 5280 lets a CA be a leaf; :mod:`.structure` holds keyCertSign to cA).
_CA_POLICY = _relaxed(ExtensionPolicy.webpki_defaults_ca(), x509.ExtendedKeyUsage)
_EE_POLICY = _relaxed(
    ExtensionPolicy.webpki_defaults_ee(),
    x509.ExtendedKeyUsage,
    x509.SubjectAlternativeName,
    x509.BasicConstraints,
    x509.KeyUsage,
)


def _pyca(path: Sequence[x509.Certificate], at: dt.datetime | None) -> Finding | None:
    """pyca's verdict on exactly this path, dates aside (:mod:`.period` judges them)."""
    when = _inside_every_window(path, at)
    if when is None:
        return None
    verifier = (
        PolicyBuilder()
        .store(Store([path[-1]]))
        .time(when)
        .max_chain_depth(len(path))
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(path[0], list(path[1:-1]))
    except VerificationError as exc:
        return Finding.about(
            FailureCode.CHAIN_UNTRUSTED,
            path[0],
            f"pyca's verifier refused the path: {exc}",
            depth=0,
        )
    return None


def _inside_every_window(
    path: Sequence[x509.Certificate], at: dt.datetime | None
) -> dt.datetime | None:
    """``at`` moved into the validity of every certificate of ``path`` (None if
    they share no instant), so pyca judges everything but the dates."""
    start = max(c.not_valid_before_utc for c in path)
    end = min(c.not_valid_after_utc for c in path)
    if start > end:
        return None
    when = at if at is not None else start
    return min(max(when, start), end)


def well_formed(chain: Sequence[x509.Certificate]) -> Finding | None:
    """``chain_untrusted`` for the first presented certificate that cannot be parsed."""
    for depth, cert in enumerate(chain):
        problem = malformation(cert)
        if problem is not None:
            return Finding.about(
                FailureCode.CHAIN_UNTRUSTED,
                cert,
                f"the certificate at position {depth} of the chain is malformed: {problem}",
                depth=depth,
            )
    return None
