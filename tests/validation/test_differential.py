"""Differential test over the hard PKIs of ``hardpki.py``: mesh, pyca, openssl.

Two checks per case:

* mesh (``validate_peer``) must give the case's RFC 5280 answer, and its
  primary code must be the expected one. Cases today's validator gets wrong
  are in :data:`KNOWN_GAPS` and xfail (not strictly: a gap that closes shows
  as XPASS). The new strict validator must empty that set.
* pyca's verifier and ``openssl verify`` are recorded against the same
  answers, never failing on a disagreement as such: every disagreement must be
  listed, with its reason, in :data:`DOCUMENTED_ORACLE_DIFFERENCES`, so a new
  one (an oracle upgrade, a changed case) shows up as a failure to read.

``differential_report.py`` prints the whole table (one line per case).
"""

from __future__ import annotations

import re

import pytest

from hardpki import CODES, FAMILIES, HardCase, cases
from oracles import mesh_verdict, openssl_available, openssl_verdict, pyca_verdict

CASES = cases()
IDS = {case.id for case in CASES}

#: Cases mesh's strict validator is known to get wrong: none. The openssl
#: profile (OpenSSL's first path, no strict rules) is compared with the old
#: verdicts in test_profiles.py instead.
KNOWN_GAPS: frozenset[str] = frozenset()

_NO_CRLS = ("pyca: no CRL support; the adapter only looks the leaf's serial up in a CRL "
            "name- and signature-matched to the leaf's issuer, so ")
_NO_BACKTRACK = ("openssl: OpenSSL 3.0 builds one path, taking the first presented candidate "
                 "whose name and AKI match, and does not try the next one when ")

#: case id -> why each disagreeing oracle says otherwise and why the expected
#: answer is right anyway. Each disagreeing oracle is named in lower case with
#: a colon ("pyca: ...", "openssl: ..."): that is what the check below reads.
DOCUMENTED_ORACLE_DIFFERENCES: dict[str, str] = {
    # -- path building without backtracking (openssl) --
    "cross-trust-a-self-signed-b-presented": _NO_BACKTRACK + "it reaches the untrusted "
    "self-signed root B (error 19); the cross certificate leads to trusted root A (RFC 5280 6.1 "
    "asks for a path to a trust anchor, not for the first one tried).",
    "bridge-all-cross-certs-shuffled": _NO_BACKTRACK + "the bridge certificate it picked is the "
    "one issued by the untrusted root 2 (error 20); the one issued by root 1 completes the path.",
    "same-name-ski-spoof": _NO_BACKTRACK + "the signature fails (error 7): an SKI/AKI match is "
    "a path-building hint (RFC 5280 4.2.1.1, 4.2.1.2); the signature decides (6.1.3 (a)(1)).",
    "sha1-candidate-first": _NO_BACKTRACK + "the SHA-1 candidate fails auth level 2 (error 68); "
    "the SHA-256 copy of the same CA (same name and key) gives a strong path.",
    "sha1-candidate-first-anchor-also-sha1": _NO_BACKTRACK + "the SHA-1 candidate fails auth "
    "level 2 (error 68); the SHA-256 copy gives a strong path and the anchor's own signature is "
    "never used (RFC 5280 6.1.1 (d)).",
    "nc-candidate-first": _NO_BACKTRACK + "its name constraints exclude the leaf (error 48); "
    "the unconstrained copy of the same CA gives a valid path.",
    "not-ca-candidate-first": _NO_BACKTRACK + "the cA=FALSE copy fails (error 79); the CA copy "
    "gives a valid path.",
    "no-keycertsign-candidate-first": _NO_BACKTRACK + "the copy without keyCertSign fails "
    "(error 79); the good copy gives a valid path.",
    "eku-email-candidate-first": _NO_BACKTRACK + "the emailProtection-only copy fails the "
    "sslserver purpose (error 26); the copy without EKU gives a valid path.",
    "pathlen0-candidate-first": _NO_BACKTRACK + "the pathLen 0 copy fails (error 25); the copy "
    "without pathLen gives a valid path (RFC 5280 6.1.4 (l)/(m) apply per path).",
    # -- EKU --
    "inter-eku-any-server": "openssl: its sslserver purpose check rejects a CA whose EKU lacks "
    "serverAuth even when it lists anyExtendedKeyUsage (error 26); RFC 5280 4.2.1.12: "
    "anyExtendedKeyUsage means no restriction.",
    "inter-eku-any-client": "openssl: as inter-eku-any-server, for sslclient (error 26); "
    "RFC 5280 4.2.1.12: anyExtendedKeyUsage means no restriction.",
    # -- CN, profile, path length (pyca) --
    "nc-cn-only-within": "openssl: checks a SAN-less leaf's CN against the dNSName "
    "constraints and accepts one within them; RFC 5280 4.2.1.10 constrains the SAN, so the CN "
    "is a name no constraint covers, and mesh (like Go's verifier) does not read a name from "
    "the CN on a path with name constraints.",
    "host-cn-only": "pyca: its server verifier requires a SAN (CA/B BR 7.1.2.7.12); RFC 5280 "
    "4.2.1.6 makes the SAN optional, and RFC 6125 6.4.4 uses the CN when there is no SAN.",
    "struct-inter-no-aki": "pyca: does not require the AKI in CA certificates; RFC 5280 "
    "4.2.1.1: the AKI MUST be included in all certificates but self-signed ones.",
    "struct-inter-no-ski": "pyca: does not require the SKI in CA certificates; RFC 5280 "
    "4.2.1.2: the SKI MUST appear in all conforming CA certificates.",
    "pathlen-self-issued-not-counted": "pyca: counts the self-issued key-rollover certificate "
    "against the pathLen 0 above it (accepts the same chain when that pathLen is 1); RFC 5280 "
    "6.1.4 (l) decrements max_path_length only for certificates that are not self-issued.",
    "pathlen-deep-chain-10": "openssl: its default depth limit is 100. RFC 5280 6.1 sets no "
    "limit; mesh's strict profile, like pyca's verifier, allows 8 intermediates by default "
    "(policy max_depth), a documented mesh rule.",
    # -- hostname (openssl) --
    "host-partial-wildcard-prefix": "openssl: X509_check_host accepts partial-label wildcards "
    "unless X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS (the CLI cannot set it); RFC 6125 6.4.3 lets "
    "a client refuse them and RFC 9525 6.3 / CA/B BR 7.1.4.2.1 forbid them.",
    "host-partial-wildcard-suffix": "openssl: as host-partial-wildcard-prefix (*oo matches foo).",
    # -- CRLs --
    "crl-intermediate-revoked-by-root": _NO_CRLS + "the intermediate's revocation by the root's "
    "CRL is not seen; RFC 5280 6.1.3 (a)(3) checks every certificate of the path.",
    "crl-unknown-critical-extension": _NO_CRLS + "the CRL's unknown critical extension is not "
    "seen; RFC 5280 5.2 forbids using such a CRL.",
    "crl-number-missing": _NO_CRLS + "the CRL profile is not checked. openssl: accepts a CRL "
    "without a CRL number. RFC 5280 5.2.3: CRL issuers MUST include it; a strict validator "
    "does not use a non-conforming CRL.",
    "crl-number-critical": _NO_CRLS + "the CRL profile is not checked; RFC 5280 5.2.3: the "
    "CRL number MUST be non-critical.",
    "crl-issuer-without-crlsign": _NO_CRLS + "the issuer's keyUsage is not checked; RFC 5280 "
    "6.3.3 (f) requires cRLSign.",
    "crl-idp-only-ca-certs-for-leaf": _NO_CRLS + "the CRL's scope is not checked; RFC 5280 "
    "6.3.3 (b)(2)(iii): an onlyContainsCACerts CRL does not cover the leaf.",
    "crl-root-idp-only-user-certs": _NO_CRLS + "the intermediate is not checked; RFC 5280 "
    "6.3.3 (b)(2)(ii): an onlyContainsUserCerts CRL does not cover a CA.",
    "crl-idp-dp-mismatch": _NO_CRLS + "the CRL's distribution point is not checked; RFC 5280 "
    "6.3.3 (b)(2)(i): the CRL is for another distribution point.",
    "crl-delta-only": _NO_CRLS + "the CRL is not judged. openssl: without -use_deltas it "
    "takes the lone delta CRL as a complete one (a delta listing the leaf makes it say "
    "revoked). RFC 5280 5.2.4 and 6.3.3 (c)/(d): a delta CRL is only meaningful with the "
    "complete CRL it updates, which was not given.",
    "crl-this-update-future": _NO_CRLS + "its dates are not checked; a CRL issued after the "
    "judgement time was not available at it (RFC 5280 5.1.2.4; OpenSSL itself refuses it as "
    "not yet valid).",
    "crl-next-update-passed": _NO_CRLS + "its dates are not checked; RFC 5280 6.3.3 (a)(2): "
    "the CRL's nextUpdate has passed.",
    "crl-wrong-key": _NO_CRLS + "a CRL not signed by the issuer's key is ignored instead of "
    "refused; RFC 5280 6.3.3 (g): the signature must verify with the issuer's key.",
}

_ORACLE_NAMES = ("pyca", "openssl")


def documented_oracles(case_id: str) -> set[str]:
    """The oracles an entry of DOCUMENTED_ORACLE_DIFFERENCES names as disagreeing:
    each is named in lower case followed by a colon ("pyca: ...", "openssl: ...")."""
    reason = DOCUMENTED_ORACLE_DIFFERENCES.get(case_id, "")
    return {name for name in _ORACLE_NAMES if re.search(rf"\b{name}:", reason)}


def _mesh_param(case: HardCase):
    marks = []
    if case.id in KNOWN_GAPS:
        marks.append(pytest.mark.xfail(reason="a known gap of today's validator", strict=False))
    return pytest.param(case, id=case.id, marks=marks)


def test_the_corpus_covers_every_family_both_ways():
    assert len(IDS) == len(CASES), "case ids must be unique"
    for family in FAMILIES:
        answers = [c.expect_valid for c in CASES if c.family == family]
        assert len(answers) >= 5, family
        assert any(answers) and not all(answers), f"{family} needs valid and invalid cases"
    assert {c.expect_code for c in CASES if not c.expect_valid} == CODES


def test_the_tables_name_real_cases():
    assert KNOWN_GAPS <= IDS, sorted(KNOWN_GAPS - IDS)
    assert set(DOCUMENTED_ORACLE_DIFFERENCES) <= IDS, sorted(
        set(DOCUMENTED_ORACLE_DIFFERENCES) - IDS
    )
    for case_id in DOCUMENTED_ORACLE_DIFFERENCES:
        assert documented_oracles(case_id), f"{case_id}: the reason names no oracle"


@pytest.mark.parametrize("case", [_mesh_param(c) for c in CASES])
def test_mesh_gives_the_expected_verdict(case: HardCase):
    accepted, code, detail = mesh_verdict(case)
    shown = f"{case.id} ({case.rule}): mesh says {code or 'valid'}: {detail}"
    assert accepted is case.expect_valid, shown
    if not case.expect_valid:
        assert code == case.expect_code or code in case.also_accept, (
            f"{shown}; expected {case.expect_code}"
        )


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_oracle_disagreements_are_documented(case: HardCase, record_property):
    answers = {"pyca": pyca_verdict(case)}
    if openssl_available():
        answers["openssl"] = openssl_verdict(case)
    disagreeing = set()
    for name, (accepted, why) in answers.items():
        record_property(f"{name}_agrees", accepted is case.expect_valid)
        if accepted is not case.expect_valid:
            disagreeing.add(name)
    undocumented = disagreeing - documented_oracles(case.id)
    assert not undocumented, (
        f"{case.id}: expected {case.expected} ({case.rule}); undocumented disagreement: "
        + "; ".join(f"{n} says {answers[n][1]}" for n in sorted(undocumented))
    )
