import pytest

from mesh.errors import FailureCode, Severity
from mesh.pki.issue import CertificateAuthority
from mesh.validation.strength import check_strength, weakness

from pkilab import resign


def test_healthy_path_is_strong(lab):
    leaf = lab.leaf()
    assert check_strength([leaf.cert, lab.inter.cert, lab.root.cert], anchored=True) == []


@pytest.mark.parametrize(
    "weak, text",
    [
        ("1024", "RSA key of 1024 bits"),
        ("sha1", "signed with SHA1"),
        ("md5", "signed with MD5"),
    ],
)
def test_weak_leaf(lab, weak, text):
    if weak == "1024":
        cert = lab.leaf(key_size=1024).cert
    else:
        cert = resign(lab.leaf().cert, lab.inter.key, weak)
    found = check_strength([cert, lab.inter.cert, lab.root.cert], anchored=True)
    assert [(f.code, f.depth, f.severity) for f in found] == [
        (FailureCode.WEAK_CRYPTO, 0, Severity.ERROR)
    ]
    assert text in found[0].detail


def test_allow_weak_makes_it_a_warning(lab):
    leaf = lab.leaf(key_size=1024)
    found = check_strength([leaf.cert], anchored=False, allow_weak=True)
    assert [f.severity for f in found] == [Severity.WARNING]


def test_anchor_self_signature_is_not_judged_but_its_key_is(keys, epoch):
    root = CertificateAuthority.root("Old Root", not_before=epoch, key=keys(2048))
    sha1_root = resign(root.cert, root.key, "sha1")
    assert check_strength([sha1_root], anchored=True) == []
    assert weakness(sha1_root) == ["signed with SHA1"]
    small_root = CertificateAuthority.root("Small Root", not_before=epoch, key=keys(1024))
    found = check_strength([small_root.cert], anchored=True)
    assert [f.code for f in found] == [FailureCode.WEAK_CRYPTO]


def test_min_bits_is_a_knob(lab):
    leaf = lab.leaf()
    assert check_strength([leaf.cert], anchored=False, min_rsa_bits=4096)
