"""The identity memos under the per-handshake checks: same objects, same answer;
equal but distinct objects are asked afresh; bounded; DER interning."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mesh.validation.chain import FirstPath
from mesh.validation.memo import IdentityMemo, certificate_from_der


class Box:
    """Equal to any other Box: only identity tells two apart."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box)

    def __hash__(self) -> int:
        return 0


def test_same_objects_are_answered_from_the_memo() -> None:
    memo: IdentityMemo[int] = IdentityMemo(maxsize=8)
    a, b = Box(), Box()
    calls = []
    assert memo.get((a, b), lambda: calls.append(1) or 7) == 7
    assert memo.get((a, b), lambda: calls.append(1) or 8) == 7
    assert calls == [1]


def test_equal_but_distinct_objects_are_computed_afresh() -> None:
    memo: IdentityMemo[str] = IdentityMemo(maxsize=8)
    a, a2 = Box(), Box()
    assert memo.get((a,), lambda: "first") == "first"
    assert memo.get((a2,), lambda: "second") == "second"
    assert memo.get((a, a), lambda: "pair") == "pair"  # order and count matter


def test_oldest_entries_go_beyond_maxsize_and_take_their_objects_with_them() -> None:
    memo: IdentityMemo[int] = IdentityMemo(maxsize=2)
    boxes = [Box() for _ in range(3)]
    for n, box in enumerate(boxes):
        memo.get((box,), lambda n=n: n)
    assert len(memo) == 2
    assert memo.get((boxes[0],), lambda: 99) == 99  # dropped, computed again
    assert memo.get((boxes[2],), lambda: 99) == 2


def test_a_failing_computation_remembers_nothing() -> None:
    memo: IdentityMemo[int] = IdentityMemo(maxsize=2)
    box = Box()

    def boom() -> int:
        raise KeyError("x")

    with pytest.raises(KeyError):
        memo.get((box,), boom)
    assert len(memo) == 0


def test_certificate_from_der_gives_the_same_object_for_the_same_bytes(lab) -> None:
    der = lab.inter.cert.public_bytes(Encoding.DER)
    first = certificate_from_der(der)
    assert first == lab.inter.cert
    assert certificate_from_der(bytes(bytearray(der))) is first


def test_certificate_from_der_refuses_garbage_with_cryptographys_error() -> None:
    with pytest.raises(ValueError):
        certificate_from_der(b"\x30\x03\x02\x01\x00")


def test_first_path_gives_equal_answers_for_equal_chains_by_either_route(lab) -> None:
    leaf = lab.leaf()
    chain = lab.chain(leaf)
    reparsed = [x509.load_der_x509_certificate(c.public_bytes(Encoding.DER)) for c in chain]
    paths = FirstPath()
    first = paths.build(chain, lab.trust)
    assert paths.build(chain, lab.trust) is first  # identity hit
    again = paths.build(reparsed, lab.trust)  # identity miss: built again, equal
    assert again.trusted and again.path == first.path


def test_memos_never_change_a_verdict(lab, keys) -> None:
    """Every chain judged three ways gives the same verdict: twice on the same
    objects (the second answered from the memos), on freshly parsed copies,
    and after every memo was emptied. Cases share certificates, so one case's
    memo entries are there while the next is judged."""
    import datetime as dt

    from mesh.pki.issue import CertificateAuthority
    from mesh.validation import ValidationPolicy, validate_peer
    from mesh.validation import chain as chain_module
    from mesh.validation import revocation, strength
    from mesh.validation import verdict as verdict_module

    day = dt.timedelta(days=1)
    at = lab.epoch + day
    other = CertificateAuthority.root("Other Root", not_before=lab.epoch, key=keys(2048))
    revoked = lab.leaf("revoked-1")
    lab.inter.revoke(revoked.serial, at=lab.epoch)
    cases = [
        lab.chain(lab.leaf()),
        lab.chain(revoked),
        lab.chain(lab.leaf(ca=other)),
        lab.chain(lab.leaf(not_before=at - 400 * day)),
        lab.chain(lab.leaf(key_size=1024)),
        lab.chain(lab.leaf(cdp_url=None)),
        lab.chain(lab.leaf(cdp_url="https://crl.contoso.com/issuing.crl")),
        [lab.leaf().cert],  # missing intermediate
        [],
    ]
    lookup = lab.crls(lab.epoch)
    policy = ValidationPolicy(purpose="client", missing_cdp="note")

    def verdicts(chains):
        return [
            validate_peer(c, trust=lab.trust, at=at, crls=lookup, policy=policy).to_json()
            for c in chains
        ]

    def reparsed(chain):
        return [x509.load_der_x509_certificate(c.public_bytes(Encoding.DER)) for c in chain]

    first = verdicts(cases)
    assert [v["valid"] for v in first] == [True, False, False, False, False, True, False, False, False]
    assert verdicts(cases) == first
    assert verdicts([reparsed(c) for c in cases]) == first
    for memo in (verdict_module._VERIFIERS, chain_module._SELF_ISSUED, revocation._CDPS, strength._FACTS):
        memo.clear()
    assert verdicts(cases) == first
