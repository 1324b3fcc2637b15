"""Candidate certification paths: every way from a leaf to a trust anchor.

Why mesh enumerates paths itself: OpenSSL's ``X509_verify_cert`` follows the
first issuer it finds and gives up when that path fails, so a cross-signed
CA, a re-keyed issuer of the same name, an expired or constrained candidate
refuses a chain that another path validates (RFC 4158 describes the
problem). The enumeration here only *proposes* paths, by names and key
identifiers; every proposed path is then judged by maintained code
(:mod:`.strict`: OpenSSL's verifier on exactly that path, with strict
flags) plus mesh's own typed checks. No signature is checked here.

How candidates are found (RFC 4158 section 3, simplified):

* The issuers of a certificate are the trust anchors and presented
  certificates whose subject equals its issuer name. Anchors come first,
  then presented certificates, each group ordered by key identifier: an
  issuer whose subjectKeyIdentifier equals the certificate's
  authorityKeyIdentifier first, one with no identifier next, a mismatching
  one last (still tried: identifiers are hints, signatures decide).
* A path ends at a trust anchor. A presented certificate with the same
  subject and public key as an anchor *is* that anchor (a cross-certificate
  for a trusted root ends the path there).
* A path never repeats a (subject, public key) pair, and holds at most
  ``max_depth`` intermediate certificates between the leaf and the anchor,
  not counting self-issued ones (a key rollover is one logical CA, as RFC
  5280 6.1.4 (l) counts them for pathLen).
* At most :data:`MAX_CANDIDATES` anchored paths are proposed, depth first,
  in the order above; the dead ends met on the way (no issuer, a loop, the
  depth limit) are kept so a refusal can name how far the chain got.
"""

from __future__ import annotations

from typing import Sequence

from attrs import define
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from mesh.validation.chain import public_key_der

__all__ = ["Candidate", "candidate_paths", "MAX_CANDIDATES", "DEFAULT_MAX_DEPTH"]

#: How many anchored paths one chain may propose. A bridge mesh of a few
#: cross-certified PKIs has a handful; the bound keeps a hostile chain of
#: many same-named certificates from costing more than a few milliseconds
#: per candidate times this.
MAX_CANDIDATES = 32

#: How many dead ends are kept for the report.
_MAX_DEAD_ENDS = 16

#: How many certificates the search may visit in all: a pathological chain
#: (many certificates of one name, each issuing the others) stops here.
_MAX_STEPS = 256

#: Certificates between the leaf and the anchor, as pyca's verifier counts
#: them (``max_chain_depth``): 0 means the anchor issued the leaf.
DEFAULT_MAX_DEPTH = 8


@define(frozen=True, kw_only=True)
class Candidate:
    """One proposed path, leaf first.

    ``anchored``: the last certificate is a trust anchor. Otherwise the path
    is a dead end and ``stop`` is the sentence that says why it stopped.
    """

    path: tuple[x509.Certificate, ...]
    anchored: bool
    stop: str = ""


def _key_der(cert: x509.Certificate) -> bytes:
    try:
        return public_key_der(cert.public_key())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return b""


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return value.key_identifier


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


def _by_key_id(cert: x509.Certificate, issuers: list[x509.Certificate]) -> list[x509.Certificate]:
    wanted = _aki(cert)
    if wanted is None:
        return issuers

    def rank(issuer: x509.Certificate) -> int:
        ski = _ski(issuer)
        return 1 if ski is None else (0 if ski == wanted else 2)

    return sorted(issuers, key=rank)


def _no_issuer(current: x509.Certificate, depth: int) -> str:
    """The dead end's sentence, with the name ``openssl verify`` gives it."""
    if current.subject == current.issuer:
        name = "DEPTH_ZERO_SELF_SIGNED_CERT" if depth == 0 else "SELF_SIGNED_CERT_IN_CHAIN"
        return (
            "the chain does not lead to a trust anchor: it ends at the self-signed "
            f"{current.subject.rfc4514_string()}, which is not trusted (OpenSSL {name})"
        )
    return (
        "the chain does not lead to a trust anchor: no issuer named "
        f"{current.issuer.rfc4514_string()} was presented or trusted "
        "(OpenSSL UNABLE_TO_GET_ISSUER_CERT_LOCALLY)"
    )


def candidate_paths(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[Candidate]:
    """Anchored candidates first (in proposal order), then the dead ends.

    ``chain`` is the presented chain, leaf first; ``anchors`` the trust
    anchors. A leaf that is itself an anchor is one anchored path of length
    one (the appliance trusts that very certificate).
    """
    if not chain:
        return []
    leaf = chain[0]
    if not anchors:
        return [
            Candidate(
                path=(leaf,), anchored=False, stop="no trust anchor was given to validate against"
            )
        ]
    anchor_ids = {(a.subject, _key_der(a)) for a in anchors}
    anchor_list = list(dict.fromkeys(anchors))
    presented = [c for c in dict.fromkeys(chain[1:]) if c != leaf]
    if (leaf.subject, _key_der(leaf)) in anchor_ids and leaf in anchor_list:
        return [Candidate(path=(leaf,), anchored=True)]
    anchored: list[Candidate] = []
    dead: list[Candidate] = []
    budget = [_MAX_STEPS]

    def stop_at(path: tuple[x509.Certificate, ...], why: str) -> None:
        if len(dead) < _MAX_DEAD_ENDS:
            dead.append(Candidate(path=path, anchored=False, stop=why))

    def walk(
        path: tuple[x509.Certificate, ...],
        seen: frozenset[tuple[x509.Name, bytes]],
        depth: int,
    ) -> None:
        budget[0] -= 1
        if budget[0] < 0 or len(anchored) >= MAX_CANDIDATES:
            return
        current = path[-1]
        from_anchors = _by_key_id(current, [a for a in anchor_list if a.subject == current.issuer])
        for anchor in from_anchors:
            if len(anchored) < MAX_CANDIDATES:
                anchored.append(Candidate(path=(*path, anchor), anchored=True))
        issuers = _by_key_id(
            current,
            [
                c
                for c in presented
                if c.subject == current.issuer and (c.subject, _key_der(c)) not in anchor_ids
            ],
        )
        if not issuers and not from_anchors:
            stop_at(path, _no_issuer(current, len(path) - 1))
        for issuer in issuers:
            ident = (issuer.subject, _key_der(issuer))
            if ident in seen:
                stop_at(
                    path,
                    "the chain does not lead to a trust anchor: its issuers would "
                    "repeat a certificate of the path",
                )
            elif depth + (issuer.subject != issuer.issuer) > max_depth:
                stop_at(
                    path,
                    "the chain does not lead to a trust anchor within the maximum "
                    f"depth of {max_depth} intermediate certificates",
                )
            else:
                walk((*path, issuer), seen | {ident}, depth + (issuer.subject != issuer.issuer))

    walk((leaf,), frozenset({(leaf.subject, _key_der(leaf))}), 0)
    return anchored + dead
