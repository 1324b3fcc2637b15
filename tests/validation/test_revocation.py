import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, ValidationFailed
from mesh.pki.issue import CertificateAuthority
from mesh.validation.revocation import CrlIndex


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Root", not_before=epoch, key=keys(2048))


def test_index_der_and_pem(ca, keys, epoch):
    leaf = ca.issue("a.test", not_before=epoch, key=keys(2048))
    ca.revoke(leaf.serial, at=epoch)
    crl = ca.crl(this_update=epoch)
    for data in (
        crl.public_bytes(serialization.Encoding.DER),
        crl.public_bytes(serialization.Encoding.PEM),
    ):
        index = CrlIndex.from_bytes(data)
        assert index.is_revoked(leaf.serial)
        assert not index.is_revoked(leaf.serial + 1)
        assert index.signed_by(ca.cert)
        assert index.number == 1
        assert not index.is_stale(epoch + dt.timedelta(days=7))
        assert index.is_stale(epoch + dt.timedelta(days=7, seconds=1))


def test_signature_of_another_ca(ca, keys, epoch):
    other = CertificateAuthority.root("Root", not_before=epoch, key=keys(2048))
    index = CrlIndex.from_crl(other.crl(this_update=epoch))
    assert not index.signed_by(ca.cert)


@pytest.mark.parametrize("data", [b"", b"garbage", b"<html>404</html>", b"-----BEGIN X509 CRL-----\nAAAA\n"])
def test_not_a_crl(data):
    with pytest.raises(ValidationFailed) as info:
        CrlIndex.from_bytes(data, source="http://x/crl")
    assert info.value.code is FailureCode.CRL_INVALID
