import datetime as dt

import pytest

from mesh.errors import FailureCode
from mesh.pki.issue import CertificateAuthority, self_signed_leaf
from mesh.validation.chain import FirstPath

from pkilab import tamper


def build_path(chain, trust):
    """OpenSSL's first path, as the openssl profile builds it (a fresh memo each time)."""
    return FirstPath().build(chain, trust)


def test_trusted_path_ends_at_the_anchor(lab):
    leaf = lab.leaf()
    result = build_path(lab.chain(leaf), lab.trust)
    assert result.trusted and result.error is None
    assert result.path == (leaf.cert, lab.inter.cert, lab.root.cert)


def test_presented_root_and_any_order_are_fine(lab):
    leaf = lab.leaf()
    result = build_path([leaf.cert, lab.root.cert, lab.inter.cert], lab.trust)
    assert result.trusted
    assert result.path[-1] == lab.root.cert


def test_time_is_not_the_verifiers_business(lab):
    # An expired leaf still builds: the period check reports it, with its own code.
    leaf = lab.leaf(not_before=lab.epoch - dt.timedelta(days=900), days=1)
    assert build_path(lab.chain(leaf), lab.trust).trusted


@pytest.mark.parametrize(
    "case, number",
    [
        ("missing-intermediate", 20),
        ("unrelated-root", 20),
        ("self-signed", 18),
        ("no-trust", None),
        ("wrong-signature", 7),
    ],
)
def test_untrusted(lab, keys, case, number):
    leaf = lab.leaf()
    chain = lab.chain(leaf)
    trust = lab.trust
    if case == "missing-intermediate":
        chain = [leaf.cert]
    elif case == "unrelated-root":
        other = CertificateAuthority.root("Other Root", not_before=lab.epoch, key=keys(2048))
        chain = [lab.leaf(ca=other).cert]
    elif case == "self-signed":
        chain = [self_signed_leaf("sensor-1", not_before=lab.epoch, key=keys(2048)).cert]
    elif case == "no-trust":
        trust = []
    elif case == "wrong-signature":
        chain = [tamper(leaf.cert), lab.inter.cert]
    result = build_path(chain, trust)
    assert not result.trusted
    assert result.error.code is FailureCode.CHAIN_UNTRUSTED
    if number is not None:
        assert f"error {number} " in result.error.detail
    assert result.path[0] == chain[0]


def test_best_effort_path_names_the_presented_issuers(lab, keys):
    other = CertificateAuthority.root("Lab Root", not_before=lab.epoch, key=keys(2048))
    # Trust a root with the right name but another key: the path walks by name.
    leaf = lab.leaf()
    result = build_path(lab.chain(leaf), [other.cert])
    assert not result.trusted
    assert result.path == (leaf.cert, lab.inter.cert, other.cert)


def test_empty_chain():
    result = build_path([], [])
    assert result.error.code is FailureCode.CHAIN_UNTRUSTED
    assert result.path == ()


def test_results_are_memoised(lab):
    leaf = lab.leaf()
    paths = FirstPath()
    first = paths.build(lab.chain(leaf), lab.trust)
    assert paths.build(lab.chain(leaf), lab.trust) is first
