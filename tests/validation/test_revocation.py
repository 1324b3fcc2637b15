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


# -- the path check's building blocks ----------------------------------------

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402

from mesh.validation.revocation import cdp_urls, crl_lookup  # noqa: E402


def _with_cdp(ca, keys, epoch, names):
    key = keys(2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "cdp.test")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(epoch)
        .not_valid_after(epoch + dt.timedelta(days=30))
    )
    if names is not None:
        points = [
            x509.DistributionPoint(full_name=[n], relative_name=None, reasons=None, crl_issuer=None)
            for n in names
        ]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def test_cdp_urls_splits_http_from_the_rest(ca, keys, epoch):
    uri = x509.UniformResourceIdentifier
    cert = _with_cdp(
        ca, keys, epoch,
        [uri("ldap://dir/cn=crl"), uri("https://x/a.crl"), uri("HTTP://x:8080/b.crl"),
         x509.DNSName("not-a-url")],
    )
    assert cdp_urls(cert) == (("HTTP://x:8080/b.crl",), ("ldap://dir/cn=crl", "https://x/a.crl"))
    assert cdp_urls(_with_cdp(ca, keys, epoch, None)) == ((), ())


def test_crl_lookup_fails_closed(ca, epoch):
    index = CrlIndex.from_crl(ca.crl(this_update=epoch))
    lookup = crl_lookup({"http://a/x.crl": index})
    assert lookup("http://a/x.crl") is index
    missing = lookup("http://a/y.crl")
    assert isinstance(missing, ValidationFailed)
    assert missing.code is FailureCode.CRL_UNREACHABLE
    assert "http://a/y.crl" in missing.detail


def test_signature_answer_is_memoised(ca, epoch):
    index = CrlIndex.from_crl(ca.crl(this_update=epoch))
    assert index.signed_by(ca.cert)
    assert len(index._verified) == 1
    assert index.signed_by(ca.cert)
    assert len(index._verified) == 1


def test_signed_part_is_sliced_from_the_der_not_re_encoded(ca, keys, epoch):
    from mesh.validation.revocation import _tbs_slice

    ca.revoke(12345, at=epoch)
    crl = ca.crl(this_update=epoch)
    der = crl.public_bytes(serialization.Encoding.DER)
    assert _tbs_slice(der) == crl.tbs_certlist_bytes
    assert _tbs_slice(b"\x30\x85garbage") is None
    assert _tbs_slice(b"") is None


def test_a_flipped_signature_byte_is_caught_on_the_fast_path(ca, keys, epoch):
    der = bytearray(ca.crl(this_update=epoch).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    index = CrlIndex.from_bytes(bytes(der))
    assert index.der is not None
    assert not index.signed_by(ca.cert)


def test_a_changed_signed_byte_is_caught_on_the_fast_path(ca, keys, epoch):
    ca.revoke(0x1234, at=epoch)
    crl = ca.crl(this_update=epoch)
    der = crl.public_bytes(serialization.Encoding.DER)
    tampered = der.replace((0x1234).to_bytes(2, "big"), (0x1235).to_bytes(2, "big"), 1)
    assert tampered != der
    index = CrlIndex.from_bytes(tampered)
    assert index.is_revoked(0x1235)
    assert not index.signed_by(ca.cert)
