"""``mesh cert show``: certificate fields in the requirements' order, a CSR check, a key check."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from mesh.cli import main
from mesh.pki import files
from mesh.pki.deployment import ApplianceRequest, Pki

AT = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pki(key_pool):
    return Pki.build(at=AT, intermediate="Contoso Issuing CA",
                     appliances=[ApplianceRequest(name="sensor-1")], keys=key_pool.cursor())


def test_a_certificate_shows_the_requirements_fields_in_their_order(pki, tmp_path, capsys):
    cert = pki.appliances["sensor-1"].cert
    path = tmp_path / "sensor-1.crt"
    files.save_certificate(path, cert)
    assert main(["cert", "show", str(path)]) == 0
    labels = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert labels == ["signature algorithm", "signature hash", "valid from", "valid to",
                      "public key", "CRL distribution point", "subject CN", "subject C",
                      "subject OU", "subject O", "issuer", "serial"]


def test_the_values_are_the_certificates(pki, tmp_path, capsys):
    cert = pki.appliances["sensor-1"].cert
    path = tmp_path / "sensor-1.crt"
    files.save_certificate(path, cert)
    main(["cert", "show", str(path)])
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["signature algorithm"].strip() == "sha256WithRSAEncryption"
    assert lines["signature hash"].strip() == "SHA256"
    assert lines["public key"].strip() == "RSA 2048 bits"
    assert lines["subject CN"].strip() == "sensor-1.contoso.test"
    assert lines["serial"].strip() == format(cert.serial_number, "X")


def test_a_csr_is_checked(pki, tmp_path, capsys):
    key = pki.appliances["sensor-1"].issued.key
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-9.contoso.test")]))
           .sign(key, hashes.SHA256()))
    path = tmp_path / "sensor-9.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    assert main(["cert", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "signature:                verified" in out and "sensor-9.contoso.test" in out
    assert "subject C:                (missing)" in out


def test_a_key_is_checked_and_a_wrong_passphrase_is_one_line(pki, tmp_path, capsys):
    key = pki.appliances["sensor-1"].issued.key
    path = tmp_path / "sensor-1.key"
    files.save_key(path, key, passphrase="right")
    assert main(["cert", "show", str(path), "--passphrase", "right"]) == 0
    assert "private key:              RSA 2048 bits" in capsys.readouterr().out
    assert main(["cert", "show", str(path), "--passphrase", "wrong"]) == 2
    assert capsys.readouterr().err == (
        f"mesh: {path}: Passphrase does not match to the key; give the right --passphrase\n"
    )
