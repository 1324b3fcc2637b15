"""``mesh pki operator``: an operator CA of its own and clientAuth-only certificates."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from mesh.cli import main
from mesh.errors import InputError
from mesh.pki.operator import issue_operator, load_operator_cas

AT = dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_operator_makes_the_ca_the_next_reuse_it(tmp_path):
    ca_path, cert_path, key_path = issue_operator(tmp_path, "alice", at=AT)
    assert (_mode(tmp_path / "operator-ca.key"), _mode(key_path)) == (0o600, 0o600)
    assert (_mode(ca_path), _mode(cert_path)) == (0o644, 0o644)
    ca_before = ca_path.read_bytes()
    _, bob, _ = issue_operator(tmp_path, "bob", at=AT)
    assert ca_path.read_bytes() == ca_before
    (ca,) = load_operator_cas(ca_path)
    for path in (cert_path, bob):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        cert.verify_directly_issued_by(ca)
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.CLIENT_AUTH]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        assert cert.not_valid_before_utc == AT
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_an_existing_operator_needs_force(tmp_path):
    issue_operator(tmp_path, "alice", at=AT)
    with pytest.raises(InputError) as info:
        issue_operator(tmp_path, "alice", at=AT)
    assert info.value.line() == (f"{tmp_path / 'alice.crt'}: already exists; "
                                 "choose another --name, or pass --force to replace it")
    issue_operator(tmp_path, "alice", at=AT, force=True, days=10)
    cert = x509.load_pem_x509_certificate((tmp_path / "alice.crt").read_bytes())
    assert cert.not_valid_after_utc == AT + dt.timedelta(days=10)


@pytest.mark.parametrize("name", ["", "../x", ".hidden", "operator-ca"])
def test_a_name_that_is_no_file_name_is_refused(tmp_path, name):
    with pytest.raises(InputError) as info:
        issue_operator(tmp_path, name, at=AT)
    assert info.value.where == "--name"


def test_a_broken_ca_key_is_one_line(tmp_path):
    issue_operator(tmp_path, "alice", at=AT)
    (tmp_path / "operator-ca.key").write_text("not a key")
    with pytest.raises(InputError) as info:
        issue_operator(tmp_path, "bob", at=AT)
    assert info.value.where == str(tmp_path / "operator-ca.key")


def test_the_command(tmp_path, capsys):
    assert main(["pki", "operator", str(tmp_path), "--name", "driver", "--at",
                 "2027-01-15T09:00:00Z", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'driver.crt'} and {tmp_path / 'driver.key'} (0600)" in out
    assert "PRIVATE KEY" not in out
    cert = x509.load_pem_x509_certificate((tmp_path / "driver.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "driver"
    assert main(["pki", "operator", str(tmp_path / "missing")]) == 2
