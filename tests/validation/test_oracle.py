"""Differential test: mesh's verdict against ``openssl verify`` on a generated corpus.

Every case is a small PKI built for one judgement instant ``at``: a root, an
optional intermediate, a leaf, and a CRL per CA; one or two fault recipes
break it. mesh judges it with :func:`validate_peer`; the Debian ``openssl``
CLI (OpenSSL 3.0) judges the same files with ``openssl verify -crl_check_all
-attime T -CAfile root -untrusted chain -CRLfile crls``. Any disagreement on
accept/reject fails the test and prints the case.

Where the two differ on purpose, the case is kept out of the strict
comparison, each with its reason:

* Exactly at notAfter: RFC 5280 says the certificate is still valid (the
  period is inclusive), OpenSSL 3.0 calls it expired. mesh follows the RFC;
  see ``test_exactly_not_after_follows_rfc_5280``.
* A certificate without a CRL Distribution Point: by the source document's
  rules it is not revocation-checked (a note), while ``-crl_check_all``
  demands a CRL for every certificate regardless. So no-cdp paired with a
  revocation fault of the same certificate is not compared.
* A CRL whose thisUpdate is after the judgement time: OpenSSL refuses it
  ("CRL is not yet valid"); mesh does not judge thisUpdate (an emulated clock
  only moves forward, so a fetched CRL is never from the future). Every CRL
  in the corpus is issued an hour before ``at``, so this never arises.

Weak crypto: mesh's default refuses RSA < 2048 and SHA-1/MD5; OpenSSL's
``-auth_level 2`` (112-bit security) draws the same line, so strict cases
pass it; lenient cases (``allow_weak``) are compared with no auth level.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
from attrs import define
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, ValidationFailed
from mesh.pki.issue import CertificateAuthority, self_signed_leaf
from mesh.validation import CrlIndex, ValidationPolicy, validate_peer
from pkilab import resign

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
PEM = serialization.Encoding.PEM

FAULTS = (
    "ca-signed",
    "expired",
    "not-yet-valid",
    "revoked",
    "untrusted",
    "self-signed",
    "missing-intermediate",
    "no-cdp",
    "crl-unreachable",
    "weak-key",
    "sha1",
    "expired-intermediate",
    "revoked-intermediate",
    "crl-stale",
    "crl-bad-signature",
)
NEEDS_INTERMEDIATE = {"missing-intermediate", "expired-intermediate", "revoked-intermediate"}
WEAK = {"weak-key", "sha1"}
LEAF_REVOCATION = {"revoked", "crl-unreachable", "crl-stale", "crl-bad-signature"}
CONFLICTS = [{"expired", "not-yet-valid"}, {"untrusted", "self-signed"}]
#: mesh's primary code for each fault alone (None: accepted).
PRIMARY = {
    "ca-signed": None,
    "expired": FailureCode.EXPIRED,
    "not-yet-valid": FailureCode.NOT_YET_VALID,
    "revoked": FailureCode.REVOKED,
    "untrusted": FailureCode.CHAIN_UNTRUSTED,
    "self-signed": FailureCode.CHAIN_UNTRUSTED,
    "missing-intermediate": FailureCode.CHAIN_UNTRUSTED,
    "no-cdp": None,
    "crl-unreachable": FailureCode.CRL_UNREACHABLE,
    "weak-key": FailureCode.WEAK_CRYPTO,
    "sha1": FailureCode.WEAK_CRYPTO,
    "expired-intermediate": FailureCode.EXPIRED,
    "revoked-intermediate": FailureCode.REVOKED,
    "crl-stale": FailureCode.CRL_STALE,
    "crl-bad-signature": FailureCode.CRL_SIGNATURE_INVALID,
}
BASE = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
TIMES = (BASE + DAY, BASE + 90 * DAY, BASE + 300 * DAY)


@define(frozen=True)
class Case:
    faults: tuple[str, ...]
    intermediate: bool
    at: dt.datetime
    lenient: bool = False

    def __str__(self) -> str:
        shape = "root+intermediate" if self.intermediate else "root only"
        mode = "allow_weak" if self.lenient else "strict"
        return f"{'+'.join(self.faults)} [{shape}, at {self.at.isoformat()}, {mode}]"


def corpus() -> list[Case]:
    cases = []
    for with_inter in (True, False):
        usable = [f for f in FAULTS if with_inter or f not in NEEDS_INTERMEDIATE]
        for fault in usable:
            for at in TIMES:
                cases.append(Case((fault,), with_inter, at))
        pairs = [
            p
            for p in itertools.combinations(usable[1:], 2)
            if set(p) not in CONFLICTS
            # Policy difference (module docstring): no CDP = no revocation check.
            and not ("no-cdp" in p and set(p) & LEAF_REVOCATION)
        ]
        for index, pair in enumerate(pairs):
            cases.append(Case(pair, with_inter, TIMES[index % len(TIMES)]))
    for fault in sorted(WEAK):
        for with_inter in (True, False):
            cases.append(Case((fault,), with_inter, TIMES[0], lenient=True))
            cases.append(Case((fault, "revoked"), with_inter, TIMES[1], lenient=True))
    return cases


def build(case: Case, keys, where: Path, *, leaf_window=None):
    """Write the case's files; return (presented chain, trust, CRL map)."""
    at, faults = case.at, set(case.faults)
    ca_start = at - 3 * 365 * DAY
    root = CertificateAuthority.root("Case Root", not_before=ca_start, key=keys(2048))
    cas = [root]
    issuer = root
    if case.intermediate:
        not_after = at - DAY if "expired-intermediate" in faults else None
        issuer = root.intermediate(
            "Case Issuing", not_before=ca_start, not_after=not_after, key=keys(2048)
        )
        cas.append(issuer)
        if "revoked-intermediate" in faults:
            root.revoke(issuer.cert.serial_number, at=at - 2 * DAY)
    signer = issuer
    if "untrusted" in faults:
        rogue = CertificateAuthority.root("Rogue Root", not_before=ca_start, key=keys(2048))
        cas.append(rogue)
        signer = rogue
        if case.intermediate:
            signer = rogue.intermediate("Rogue Issuing", not_before=ca_start, key=keys(2048))
            cas.append(signer)

    not_before, not_after = leaf_window or (at - 30 * DAY, at + 300 * DAY)
    if "expired" in faults:
        not_before, not_after = at - 400 * DAY, at - DAY
    if "not-yet-valid" in faults:
        not_before, not_after = at + DAY, at + 300 * DAY
    bits = 1024 if "weak-key" in faults else 2048
    cdp = None if "no-cdp" in faults else signer.crl_url
    if "self-signed" in faults:
        leaf = self_signed_leaf(
            "sensor-1.contoso.com", not_before=not_before, not_after=not_after,
            key=keys(bits), cdp_url=cdp,
        )
        leaf_cert, leaf_signer_key = leaf.cert, leaf.key
    else:
        leaf = signer.issue(
            "sensor-1.contoso.com", not_before=not_before, not_after=not_after,
            key=keys(bits), cdp_url=cdp,
        )
        leaf_cert, leaf_signer_key = leaf.cert, signer.key
    if "sha1" in faults:
        leaf_cert = resign(leaf_cert, leaf_signer_key, "sha1")
    if "revoked" in faults:
        signer.revoke(leaf_cert.serial_number, at=at - 2 * DAY)

    crls = {}
    for ca in cas:
        this_update, next_update = at - HOUR, at + 7 * DAY
        publisher = ca
        if ca is signer and "crl-stale" in faults:
            this_update, next_update = at - 8 * DAY, at - HOUR
        if ca is signer and "crl-bad-signature" in faults:
            publisher = CertificateAuthority.root(ca.name, not_before=ca_start, key=keys(2048))
            publisher.revoked = dict(ca.revoked)
        if ca is signer and "crl-unreachable" in faults:
            continue
        crls[ca.crl_url] = publisher.crl(this_update=this_update, next_update=next_update)

    presented = [leaf_cert]
    if signer is not root and "self-signed" not in faults:
        if "missing-intermediate" not in faults and signer.parent is not None:
            presented += list(signer.chain)
    where.mkdir(parents=True)
    (where / "root.pem").write_bytes(root.cert.public_bytes(PEM))
    (where / "leaf.pem").write_bytes(leaf_cert.public_bytes(PEM))
    (where / "chain.pem").write_bytes(b"".join(c.public_bytes(PEM) for c in presented[1:]))
    (where / "crls.pem").write_bytes(b"".join(c.public_bytes(PEM) for c in crls.values()))
    return presented, [root.cert], {url: CrlIndex.from_crl(crl) for url, crl in crls.items()}


def openssl_verify(case: Case, where: Path) -> tuple[bool, str]:
    cmd = ["openssl", "verify", "-crl_check_all", "-attime", str(int(case.at.timestamp()))]
    if not case.lenient:
        cmd += ["-auth_level", "2"]
    cmd += ["-CAfile", str(where / "root.pem")]
    if (where / "chain.pem").stat().st_size:
        cmd += ["-untrusted", str(where / "chain.pem")]
    if (where / "crls.pem").stat().st_size:
        cmd += ["-CRLfile", str(where / "crls.pem")]
    cmd.append(str(where / "leaf.pem"))
    done = subprocess.run(cmd, capture_output=True, text=True)
    text = " ".join((done.stdout + done.stderr).split())
    return done.returncode == 0, text


def mesh_verify(case: Case, chain, trust, crls, profile: str = "strict") -> tuple[bool, str]:
    def lookup(url):
        found = crls.get(url)
        if found is None:
            return ValidationFailed(FailureCode.CRL_UNREACHABLE, f"nothing at {url}")
        return found

    verdict = validate_peer(
        chain,
        trust=trust,
        at=case.at,
        crls=lookup,
        policy=ValidationPolicy(allow_weak=case.lenient, validator=profile),
    )
    return verdict.accepted, ", ".join(f.code.code for f in verdict.failures) or "ok"


def test_corpus_is_big_enough():
    cases = corpus()
    assert len(cases) >= 40
    singles = {c.faults[0] for c in cases if len(c.faults) == 1}
    assert singles == set(FAULTS)


def test_mesh_agrees_with_openssl(key_pool, tmp_path):
    disagreements = []
    cases = corpus()
    tally = {True: 0, False: 0}
    for number, case in enumerate(cases):
        chain, trust, crls = build(case, key_pool.cursor(), tmp_path / f"case-{number}")
        ours, why = mesh_verify(case, chain, trust, crls)
        theirs, text = openssl_verify(case, tmp_path / f"case-{number}")
        tally[ours] += 1
        if len(case.faults) == 1 and not case.lenient:
            expected = PRIMARY[case.faults[0]]
            primary = why.split(", ")[0]
            if primary != (expected.code if expected else "ok"):
                disagreements.append(f"case {number}: {case}\n    mesh primary {primary}, "
                                     f"expected {expected}")
        if ours != theirs:
            disagreements.append(
                f"case {number}: {case}\n"
                f"    mesh:    {'accept' if ours else 'reject'} ({why})\n"
                f"    openssl: {'accept' if theirs else 'reject'} ({text})"
            )
    assert not disagreements, (
        f"{len(disagreements)} of {len(cases)} cases disagree:\n" + "\n".join(disagreements)
    )
    # The corpus must exercise both answers.
    assert tally[True] and tally[False]


def test_both_profiles_agree_on_mesh_shaped_pkis(key_pool, tmp_path):
    """On the PKIs mesh itself deploys (one path, well-formed certificates) the
    strict profile and the openssl profile (mesh's verdicts before the strict
    profile existed) give the same failures, code for code."""
    differ = []
    for number, case in enumerate(corpus()):
        chain, trust, crls = build(case, key_pool.cursor(), tmp_path / f"case-{number}")
        strict = mesh_verify(case, chain, trust, crls, "strict")
        stock = mesh_verify(case, chain, trust, crls, "openssl")
        if strict != stock:
            differ.append(f"case {number}: {case}: strict {strict}, openssl {stock}")
    assert not differ, "\n".join(differ)


def test_exactly_not_after_follows_rfc_5280(key_pool, tmp_path):
    """Kept out of the strict comparison: OpenSSL 3.0 says expired here, RFC 5280
    (validity "from notBefore through notAfter, inclusive") says valid."""
    case = Case(("ca-signed",), True, TIMES[0])
    window = (case.at - 300 * DAY, case.at)
    chain, trust, crls = build(case, key_pool.cursor(), tmp_path / "edge", leaf_window=window)
    assert chain[0].not_valid_after_utc == case.at
    ours, why = mesh_verify(case, chain, trust, crls)
    assert ours, why
    later = Case(case.faults, case.intermediate, case.at + dt.timedelta(seconds=1))
    assert mesh_verify(later, chain, trust, crls) == (False, "expired")


@pytest.mark.parametrize("edge", ["at not_before", "1s before not_before", "1s after not_after"])
def test_one_second_edges_agree(key_pool, tmp_path, edge):
    """The edges where OpenSSL 3.0 and RFC 5280 agree are compared strictly."""
    at, second = TIMES[0], dt.timedelta(seconds=1)
    window = {
        "at not_before": (at, at + 300 * DAY),
        "1s before not_before": (at + second, at + 300 * DAY),
        "1s after not_after": (at - 300 * DAY, at - second),
    }[edge]
    case = Case(("ca-signed",), False, at)
    chain, trust, crls = build(case, key_pool.cursor(), tmp_path / "case", leaf_window=window)
    ours, why = mesh_verify(case, chain, trust, crls)
    theirs, text = openssl_verify(case, tmp_path / "case")
    assert ours == theirs, (edge, why, text)
    assert ours is (edge == "at not_before")
