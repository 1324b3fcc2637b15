"""The Verifier object: profiles, path choice over time, CRL files, the property
that the strict profile never accepts what both maintained verifiers refuse."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardpki import cases
from mesh.errors import FailureCode, Severity, ValidationFailed
from mesh.validation import ValidationPolicy, validate_peer
from mesh.validation.paths import MAX_CANDIDATES, candidate_paths
from mesh.validation.revocation import CrlIndex
from mesh.validation.verifier import Verifier
from oracles import mesh_verdict, openssl_available, openssl_verdict, pyca_verdict

CASES = {case.id: case for case in cases()}


def _verify(case, **policy):
    verifier = Verifier(
        case.trust,
        ValidationPolicy(purpose=case.purpose, expected_name=case.expected_name, **policy),
        crl_files=case.crls,
    )
    return verifier.verify(list(case.chain), at=case.at)


def test_the_openssl_profile_takes_the_first_path_and_strict_finds_another():
    case = CASES["cross-trust-a-self-signed-b-presented"]
    assert _verify(case).accepted
    stock = _verify(case, validator="openssl")
    assert not stock.accepted
    assert stock.primary.code is FailureCode.CHAIN_UNTRUSTED


def test_a_weak_path_is_chosen_only_when_no_strong_one_exists():
    both = CASES["sha1-candidate-first"]
    verdict = _verify(both, allow_weak=True)
    assert verdict.accepted and not verdict.warnings  # the SHA-256 path was chosen
    weak_only = [c for c in CASES.values() if c.family == "weak-candidate" and not c.expect_valid]
    assert weak_only, "the corpus has a SHA-1-only case"
    refused = _verify(weak_only[0])
    assert refused.primary.code is FailureCode.WEAK_CRYPTO
    lenient = _verify(weak_only[0], allow_weak=True)
    assert lenient.accepted
    assert [f.code for f in lenient.warnings] == [FailureCode.WEAK_CRYPTO]


def test_the_chosen_path_follows_the_clock():
    """An expired candidate is skipped; once every candidate has expired the
    refusal says expired, and the memo keeps both answers apart."""
    case = CASES["expired-candidate-first"]
    verifier = Verifier(case.trust, ValidationPolicy(purpose=case.purpose))
    assert verifier.verify(list(case.chain), at=case.at).accepted
    late = max(c.not_valid_after_utc for c in case.chain) + dt.timedelta(days=1)
    assert verifier.verify(list(case.chain), at=late).primary.code is FailureCode.EXPIRED
    assert verifier.verify(list(case.chain), at=case.at).accepted


def test_crl_files_judge_certificates_without_a_cdp():
    case = CASES["crl-leaf-revoked"]
    assert _verify(case).primary.code is FailureCode.REVOKED
    # The same CRLs handed over as a list in place of a lookup.
    verdict = validate_peer(
        list(case.chain),
        trust=list(case.trust),
        at=case.at,
        crls=list(case.crls),
        policy=ValidationPolicy(purpose=case.purpose),
    )
    assert verdict.primary.code is FailureCode.REVOKED


def test_crl_files_must_cover_the_whole_path():
    """Given CRL files, a certificate that neither they nor a CDP cover is
    refused (no_cdp as an error), as Envoy and -crl_check_all refuse it."""
    case = CASES["crl-intermediate-revoked-by-root"]
    root_only = [c for c in case.crls if c.issuer == case.trust[0].subject]
    verdict = Verifier(
        case.trust, ValidationPolicy(purpose=case.purpose), crl_files=root_only
    ).verify(list(case.chain), at=case.at)
    codes = {(f.code, f.severity, f.depth) for f in verdict.findings}
    assert (FailureCode.NO_CDP, Severity.ERROR, 0) in codes


def test_a_delta_crl_is_refused_with_a_clear_detail():
    case = CASES["crl-delta-only"]
    primary = _verify(case).primary
    assert primary.code is FailureCode.CRL_INVALID
    assert "delta CRLs are not supported" in primary.detail


def test_a_crl_from_the_future_is_crl_invalid():
    case = CASES["crl-this-update-future"]
    primary = _verify(case).primary
    assert primary.code is FailureCode.CRL_INVALID
    assert "thisUpdate" in primary.detail and "5.1.2.4" in primary.detail


def test_structure_findings_name_the_rfc_section():
    for case_id, section in (
        ("struct-inter-no-aki", "4.2.1.1"),
        ("struct-inter-no-ski", "4.2.1.2"),
        ("struct-inter-bc-not-critical", "4.2.1.9"),
        ("struct-leaf-keycertsign", "4.2.1.3"),
    ):
        primary = _verify(CASES[case_id]).primary
        assert primary.code is FailureCode.CHAIN_UNTRUSTED, case_id
        assert f"RFC 5280 {section}" in primary.detail, (case_id, primary.detail)


def test_max_depth_counts_intermediates():
    case = CASES["pathlen-deep-chain-6"]
    assert _verify(case).accepted
    refused = _verify(case, max_depth=5)
    assert refused.primary.code is FailureCode.CHAIN_UNTRUSTED
    assert "maximum depth of 5" in refused.primary.detail


def test_the_candidate_search_is_bounded():
    """Every presented intermediate is a candidate issuer of every other: the
    search stops at its bounds instead of enumerating every ordering."""
    case = CASES["bridge-all-cross-certs-shuffled"]
    found = candidate_paths(list(case.chain), case.trust, max_depth=30)
    assert 0 < len([c for c in found if c.anchored]) <= MAX_CANDIDATES


def test_a_configured_crl_that_is_not_a_crl_is_crl_invalid():
    with pytest.raises(ValidationFailed) as info:
        CrlIndex.from_bytes(b"not a crl")
    assert info.value.code is FailureCode.CRL_INVALID


def _mutated(data, case):
    order = data.draw(st.permutations(list(case.chain[1:])))
    keep = data.draw(st.integers(min_value=0, max_value=len(order)))
    return attrs.evolve(case, chain=(case.chain[0], *order[:keep]))


@pytest.mark.skipif(not openssl_available(), reason="needs the openssl CLI")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_strict_never_accepts_what_openssl_strict_and_pyca_both_refuse(data):
    """Over the hard PKIs, with the presented intermediates shuffled and cut."""
    case = _mutated(data, data.draw(st.sampled_from(sorted(CASES.values(), key=lambda c: c.id))))
    accepted, _, _ = mesh_verdict(case)
    if not accepted:
        return
    pyca_ok, _ = pyca_verdict(case)
    openssl_ok, _ = openssl_verdict(case)
    assert pyca_ok or openssl_ok, f"{case.id}: mesh accepted what both refuse"
