"""validate_peer end to end over real certificates: every code, the order, the knobs."""

import datetime as dt

import pytest

from mesh.errors import FailureCode, Severity, ValidationFailed
from mesh.pki.issue import CertificateAuthority, self_signed_leaf
from mesh.validation import (
    PRIMARY_ORDER,
    CrlIndex,
    ValidationPolicy,
    Verdict,
    crl_lookup,
    crl_urls,
    validate_peer,
)
from mesh.validation.finding import Finding
from pkilab import resign

DAY = dt.timedelta(days=1)
F = FailureCode


def codes(verdict):
    return [(f.code, f.depth) for f in verdict.failures]


def judge(lab, chain, *, at=None, crls=None, policy=ValidationPolicy(), trust=None):
    at = at or lab.epoch + DAY
    return validate_peer(
        chain,
        trust=lab.trust if trust is None else trust,
        at=at,
        crls=crls or lab.crls(at - DAY),
        policy=policy,
    )


def test_healthy(lab):
    leaf = lab.leaf()
    verdict = judge(lab, lab.chain(leaf))
    assert verdict.accepted and not verdict.skipped
    assert verdict.findings == () and verdict.primary is None
    assert verdict.path == (leaf.cert, lab.inter.cert, lab.root.cert)


def test_every_core_code_from_real_certificates(lab, keys):
    """One case per code validate_peer can produce, alone."""
    other = CertificateAuthority.root("Other Root", not_before=lab.epoch, key=keys(2048))
    at = lab.epoch + DAY
    cases = {}
    cases[F.CHAIN_UNTRUSTED] = (lab.chain(lab.leaf(ca=other)), {})
    cases[F.EXPIRED] = (lab.chain(lab.leaf(not_before=at - 400 * DAY)), {})
    cases[F.NOT_YET_VALID] = (lab.chain(lab.leaf(not_before=at + DAY)), {})
    cases[F.WEAK_CRYPTO] = (lab.chain(lab.leaf(key_size=1024)), {})
    cases[F.WRONG_PURPOSE] = (
        lab.chain(lab.leaf(client_auth=False)),
        {"policy": ValidationPolicy(purpose="client")},
    )
    cases[F.NAME_MISMATCH] = (
        lab.chain(lab.leaf("sensor-7")),
        {"policy": ValidationPolicy(expected_name="ha-console")},
    )
    revoked = lab.leaf()
    lab.inter.revoke(revoked.serial, at=lab.epoch)
    cases[F.REVOKED] = (lab.chain(revoked), {})
    cases[F.CRL_URL_UNSUPPORTED] = (
        lab.chain(lab.leaf(cdp_url="https://crl.contoso.com/issuing.crl")),
        {},
    )
    cases[F.NO_CDP] = (lab.chain(lab.leaf(cdp_url=None)), {"policy": ValidationPolicy(missing_cdp="fail")})
    crls = lab.crls(lab.epoch)
    for code, (chain, kw) in cases.items():
        verdict = judge(lab, chain, at=at, crls=crls, **kw)
        assert not verdict.accepted, code
        assert verdict.primary.code is code, (code, verdict.failures)
        assert [f.code for f in verdict.failures] == [code], (code, verdict.failures)
        assert verdict.primary.message == code.message
        assert verdict.primary.subject.startswith("CN=")


def test_crl_problems(lab, keys):
    leaf = lab.leaf()
    chain = lab.chain(leaf)
    at = lab.epoch + DAY
    fresh = {ca.crl_url: CrlIndex.from_crl(ca.crl(this_update=lab.epoch)) for ca in (lab.root, lab.inter)}

    # Stale: the issuing CA's CRL had nextUpdate before `at`.
    stale = dict(fresh)
    stale[lab.inter.crl_url] = CrlIndex.from_crl(
        lab.inter.crl(this_update=at - 8 * DAY, next_update=at - dt.timedelta(seconds=1))
    )
    verdict = judge(lab, chain, at=at, crls=crl_lookup(stale))
    assert codes(verdict) == [(F.CRL_STALE, 0)]

    # Exactly at nextUpdate the CRL is still current.
    stale[lab.inter.crl_url] = CrlIndex.from_crl(
        lab.inter.crl(this_update=at - 8 * DAY, next_update=at)
    )
    assert judge(lab, chain, at=at, crls=crl_lookup(stale)).accepted

    # Signed by another key under the same name.
    forger = CertificateAuthority.root(lab.inter.name, not_before=lab.epoch, key=keys(2048))
    forged = dict(fresh)
    forged[lab.inter.crl_url] = CrlIndex.from_crl(forger.crl(this_update=lab.epoch))
    verdict = judge(lab, chain, at=at, crls=crl_lookup(forged))
    assert codes(verdict) == [(F.CRL_SIGNATURE_INVALID, 0)]

    # The root's CRL served where the issuing CA's belongs.
    swapped = dict(fresh)
    swapped[lab.inter.crl_url] = fresh[lab.root.crl_url]
    verdict = judge(lab, chain, at=at, crls=crl_lookup(swapped))
    assert codes(verdict) == [(F.CRL_SIGNATURE_INVALID, 0)]


@pytest.mark.parametrize(
    "failure",
    [F.CRL_UNREACHABLE, F.CRL_HTTP_ERROR, F.CRL_INVALID, F.CRL_URL_UNSUPPORTED],
)
def test_fetch_failures_hard_and_soft(lab, failure):
    leaf = lab.leaf()
    good = lab.crls(lab.epoch)

    def lookup(url):
        if url == lab.inter.crl_url:
            return ValidationFailed(failure, f"fetching {url} failed")
        return good(url)

    hard = judge(lab, lab.chain(leaf), crls=lookup)
    assert codes(hard) == [(failure, 0)]
    assert hard.primary.detail == f"fetching {lab.inter.crl_url} failed"
    soft = judge(lab, lab.chain(leaf), crls=lookup, policy=ValidationPolicy(revocation="soft"))
    assert soft.accepted
    assert [(f.code, f.severity) for f in soft.findings] == [(failure, Severity.WARNING)]


def test_a_lookup_that_raises_is_the_same(lab):
    def lookup(url):
        raise ValidationFailed(F.CRL_UNREACHABLE, "timed out")

    verdict = judge(lab, lab.chain(lab.leaf()), crls=lookup)
    assert [f.code for f in verdict.failures] == [F.CRL_UNREACHABLE, F.CRL_UNREACHABLE]
    assert [f.depth for f in verdict.failures] == [0, 1]


def test_stale_and_bad_signature_are_errors_even_soft(lab):
    at = lab.epoch + 30 * DAY  # the lab CRLs (7 days) are stale by now
    verdict = judge(
        lab, lab.chain(lab.leaf()), at=at, crls=lab.crls(lab.epoch),
        policy=ValidationPolicy(revocation="soft"),
    )
    assert codes(verdict) == [(F.CRL_STALE, 0), (F.CRL_STALE, 1)]


def test_revoked_intermediate(lab):
    lab.root.revoke(lab.inter.cert.serial_number, at=lab.epoch)
    verdict = judge(lab, lab.chain(lab.leaf()))
    assert codes(verdict) == [(F.REVOKED, 1)]
    assert verdict.primary.subject == lab.inter.cert.subject.rfc4514_string()


def test_revoked_on_a_stale_crl_is_both(lab):
    leaf = lab.leaf()
    lab.inter.revoke(leaf.serial, at=lab.epoch)
    verdict = judge(lab, lab.chain(leaf), at=lab.epoch + 30 * DAY, crls=lab.crls(lab.epoch + 29 * DAY))
    assert verdict.primary.code is F.REVOKED
    lookup = lab.crls(lab.epoch)
    verdict = judge(lab, lab.chain(leaf), at=lab.epoch + 30 * DAY, crls=lookup)
    assert [c for c, _ in codes(verdict)] == [F.REVOKED, F.CRL_STALE, F.CRL_STALE]


def test_no_cdp_is_a_note_by_default(lab):
    verdict = judge(lab, lab.chain(lab.leaf(cdp_url=None)))
    assert verdict.accepted
    assert [(f.code, f.severity) for f in verdict.findings] == [(F.NO_CDP, Severity.NOTE)]


def test_missing_intermediate_and_self_signed(lab, keys):
    leaf = lab.leaf()
    verdict = judge(lab, [leaf.cert])
    assert verdict.primary.code is F.CHAIN_UNTRUSTED
    assert "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" in verdict.primary.detail
    own = self_signed_leaf("sensor-1", not_before=lab.epoch, key=keys(2048), cdp_url=lab.inter.crl_url)
    verdict = judge(lab, [own.cert])
    assert codes(verdict) == [(F.CHAIN_UNTRUSTED, 0)]
    assert crl_urls([own.cert], lab.trust) == []


def test_expired_intermediate(lab, keys):
    old = lab.root.intermediate(
        "Old Issuing", not_before=lab.epoch - 400 * DAY, days=365, key=keys(2048)
    )
    leaf = lab.leaf(ca=old, not_before=lab.epoch - 10 * DAY, days=20)
    crls = crl_lookup({
        ca.crl_url: CrlIndex.from_crl(ca.crl(this_update=lab.epoch)) for ca in (lab.root, old)
    })
    verdict = judge(lab, lab.chain(leaf), crls=crls)
    assert codes(verdict) == [(F.EXPIRED, 1)]


def test_all_failures_kept_in_the_documented_order(lab, keys):
    other = CertificateAuthority.root("Other Root", not_before=lab.epoch, key=keys(2048))
    weak_old = lab.leaf(ca=other, key_size=1024, not_before=lab.epoch - 400 * DAY, client_auth=False)
    verdict = judge(
        lab,
        [weak_old.cert],
        policy=ValidationPolicy(purpose="client", expected_name="ha-console"),
        crls=crl_lookup({}),
    )
    got = [f.code for f in verdict.failures]
    assert got == [
        F.CHAIN_UNTRUSTED,
        F.EXPIRED,
        F.WEAK_CRYPTO,
        F.WRONG_PURPOSE,
        F.NAME_MISMATCH,
    ]
    assert verdict.primary.code is F.CHAIN_UNTRUSTED
    assert got == sorted(got, key=PRIMARY_ORDER.index)


def test_primary_prefers_the_leaf_within_a_code(lab):
    at = lab.epoch + 3650 * DAY
    verdict = judge(lab, lab.chain(lab.leaf()), at=at, crls=lab.crls(at))
    expired = [f for f in verdict.failures if f.code is F.EXPIRED]
    assert [f.depth for f in expired] == [0, 1, 2]
    assert verdict.primary.depth == 0


def test_validation_disabled_accepts_but_lists(lab, keys):
    other = CertificateAuthority.root("Other Root", not_before=lab.epoch, key=keys(2048))
    verdict = judge(lab, [lab.leaf(ca=other).cert], policy=ValidationPolicy(enabled=False))
    assert verdict.accepted and verdict.skipped
    assert verdict.primary.code is F.CHAIN_UNTRUSTED
    data = verdict.to_json()
    assert data["valid"] is True and data["skipped"] is True
    assert [f["code"] for f in data["failures"]] == ["chain_untrusted"]


def test_allow_weak(lab):
    chain = [resign(lab.leaf().cert, lab.inter.key, "sha1"), lab.inter.cert]
    assert judge(lab, chain).primary.code is F.WEAK_CRYPTO
    lenient = judge(lab, chain, policy=ValidationPolicy(allow_weak=True))
    assert lenient.accepted
    assert [f.severity for f in lenient.findings] == [Severity.WARNING]


def test_crl_urls_are_the_paths_non_root_cdps(lab, keys):
    leaf = lab.leaf()
    assert crl_urls(lab.chain(leaf), lab.trust) == [lab.inter.crl_url, lab.root.crl_url]
    assert crl_urls([lab.leaf(cdp_url=None).cert, lab.inter.cert], lab.trust) == [lab.root.crl_url]
    # Untrusted: nothing to fetch (the chain is refused whatever a CRL says).
    assert crl_urls([leaf.cert], []) == []
    assert crl_urls([leaf.cert], lab.trust) == []
    https = lab.leaf(cdp_url="https://x/y.crl")
    assert crl_urls(lab.chain(https), lab.trust) == [lab.root.crl_url]


def test_every_url_validate_peer_asks_for_is_in_crl_urls(lab):
    asked = []
    good = lab.crls(lab.epoch)

    def lookup(url):
        asked.append(url)
        return good(url)

    chain = lab.chain(lab.leaf())
    judge(lab, chain, crls=lookup)
    assert asked == crl_urls(chain, lab.trust)


def test_empty_chain_is_a_finding_not_a_crash(lab):
    verdict = judge(lab, [])
    assert codes(verdict) == [(F.CHAIN_UNTRUSTED, None)]


def test_verdict_json_shape(lab):
    verdict = judge(lab, [lab.leaf().cert])
    data = verdict.to_json()
    assert data["valid"] is False
    first = data["failures"][0]
    assert set(first) >= {"code", "message", "subject", "detail"}
    assert first["code"] == "chain_untrusted"


def test_policy_rejects_bad_knobs():
    with pytest.raises(ValueError):
        ValidationPolicy(revocation="maybe")
    with pytest.raises(ValueError):
        ValidationPolicy(purpose="admin")
    with pytest.raises(ValueError):
        ValidationPolicy(expected_name="  ")
    assert ValidationPolicy(expected_name="HA.Contoso.com.").expected_name == "ha.contoso.com"


def test_judge_orders_findings():
    findings = [
        Finding(code=F.NO_CDP, severity=Severity.NOTE),
        Finding(code=F.REVOKED, depth=0),
        Finding(code=F.CHAIN_UNTRUSTED, depth=0),
    ]
    verdict = Verdict.judge(findings)
    assert [f.code for f in verdict.findings] == [F.CHAIN_UNTRUSTED, F.REVOKED, F.NO_CDP]
    assert not verdict.accepted
