import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mesh.pki.issue import CertificateAuthority, slug


def test_leaf_has_required_fields(keys, epoch):
    root = CertificateAuthority.root("Contoso Root CA", not_before=epoch, key=keys(2048))
    issuing = root.intermediate("Contoso Issuing CA", not_before=epoch, key=keys(2048))
    leaf = issuing.issue("sensor-1.contoso.test", not_before=epoch, key=keys(2048))
    cert = leaf.cert
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.public_key().key_size == 2048
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "sensor-1.contoso.test"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sensor-1.contoso.test"]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://127.0.0.1/crl/contoso-issuing-ca.crl"
    assert leaf.chain == (issuing.cert,)
    cert.verify_directly_issued_by(issuing.cert)
    issuing.cert.verify_directly_issued_by(root.cert)


def test_revocation_raises_crl_number(keys, epoch):
    root = CertificateAuthority.root("Root", not_before=epoch, key=keys(2048))
    leaf = root.issue("a.test", not_before=epoch, key=keys(2048))
    first = root.crl(this_update=epoch)
    root.revoke(leaf.serial, at=epoch + dt.timedelta(hours=1))
    second = root.crl(this_update=epoch + dt.timedelta(hours=1))
    number = lambda crl: crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number(second) > number(first)
    assert first.get_revoked_certificate_by_serial_number(leaf.serial) is None
    assert second.get_revoked_certificate_by_serial_number(leaf.serial) is not None
    assert second.is_signature_valid(root.key.public_key())


def test_slug():
    assert slug("Contoso Root CA") == "contoso-root-ca"


def test_leaf_names_loopback_so_curl_can_reach_it(keys, epoch):
    import ipaddress

    root = CertificateAuthority.root("Root", not_before=epoch, key=keys(2048))
    leaf = root.issue("cm.contoso.test", not_before=epoch, key=keys(2048))
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
