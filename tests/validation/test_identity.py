import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mesh.errors import FailureCode
from mesh.pki.issue import SubjectFields
from mesh.validation.identity import check_name, check_purpose, name_matches, names_of


@pytest.mark.parametrize(
    "pattern, name, ok",
    [
        ("sensor.contoso.com", "sensor.contoso.com", True),
        ("Sensor.Contoso.com", "sensor.contoso.COM.", True),
        ("*.contoso.com", "sensor.contoso.com", True),
        ("*.contoso.com", "contoso.com", False),
        ("*.contoso.com", "a.b.contoso.com", False),
        ("*.com", "contoso.com", False),
        ("sens*.contoso.com", "sensor.contoso.com", False),
        ("*.*.com", "a.b.com", False),
        ("sensor-7", "ha-console", False),
        ("10.0.0.7", "10.0.0.7", True),
        ("10.0.0.7", "10.0.0.8", False),
        ("*.0.0.7", "10.0.0.7", False),
        ("", "x", False),
    ],
)
def test_name_matches(pattern, name, ok):
    assert name_matches(pattern, name) is ok


def test_sensor_is_not_the_ha_console(lab):
    leaf = lab.leaf("sensor-7").cert
    assert check_name(leaf, None) == []
    assert check_name(leaf, "sensor-7") == []
    found = check_name(leaf, "ha-console")
    assert [f.code for f in found] == [FailureCode.NAME_MISMATCH]
    assert "sensor-7" in found[0].detail


def test_cn_is_used_only_without_a_san(lab):
    no_san = lab.leaf("console.contoso.com", san=False).cert
    assert names_of(no_san) == ["console.contoso.com"]
    assert check_name(no_san, "console.contoso.com") == []


def test_san_wins_over_cn(lab, keys):
    issuer = lab.inter
    key = keys(2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(SubjectFields().name("cn-only.contoso.com"))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(lab.epoch)
        .not_valid_after(lab.epoch.replace(year=2028))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("*.contoso.com"), x509.IPAddress(ipaddress.ip_address("10.1.2.3"))]
            ),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    assert names_of(cert) == ["*.contoso.com", "10.1.2.3"]
    assert check_name(cert, "ha.contoso.com") == []
    assert check_name(cert, "10.1.2.3") == []
    assert check_name(cert, "cn-only.example.org")[0].code is FailureCode.NAME_MISMATCH


@pytest.mark.parametrize(
    "server_auth, client_auth, purpose, ok",
    [
        (True, True, "client", True),
        (True, True, "server", True),
        (True, False, "client", False),
        (False, True, "server", False),
        (False, True, "client", True),
        (True, False, None, True),
        (False, False, "server", True),  # no EKU extension: unrestricted
    ],
)
def test_purpose(lab, server_auth, client_auth, purpose, ok):
    leaf = lab.leaf(server_auth=server_auth, client_auth=client_auth).cert
    found = check_purpose(leaf, purpose)
    if ok:
        assert found == []
    else:
        assert [f.code for f in found] == [FailureCode.WRONG_PURPOSE]
