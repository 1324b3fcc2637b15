import os
import stat

import pytest

from mesh.errors import InputError
from mesh.pki import file_output
from mesh.pki.cert_input import load_certificate
from mesh.pki.key_input import load_key


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_certificate_pem_der_pem(material, tmp_path):
    _, _, leaf = material
    file_output.save_certificate(tmp_path / "a.crt", leaf.cert)
    file_output.save_certificate(tmp_path / "a.der", load_certificate(tmp_path / "a.crt"), der=True)
    # The extension does not matter: a .crt may hold DER.
    os.rename(tmp_path / "a.der", tmp_path / "b.crt")
    again = load_certificate(tmp_path / "b.crt")
    assert again == leaf.cert
    file_output.save_certificate(tmp_path / "c.crt", again)
    assert (tmp_path / "c.crt").read_bytes() == (tmp_path / "a.crt").read_bytes()


@pytest.mark.parametrize("passphrase", [None, "s3cret"])
@pytest.mark.parametrize("traditional", [False, True])
def test_key_round_trip_and_mode(material, tmp_path, passphrase, traditional):
    _, _, leaf = material
    path = file_output.save_key(
        tmp_path / "a.key", leaf.key, passphrase=passphrase, traditional=traditional
    )
    assert _mode(path) == 0o600
    text = path.read_bytes()
    assert (b"RSA PRIVATE KEY" in text) is traditional
    assert load_key(path, passphrase).private_numbers() == leaf.key.private_numbers()


def test_key_mode_when_overwriting_a_loose_file(material, tmp_path):
    _, _, leaf = material
    target = tmp_path / "a.key"
    target.write_text("old")
    target.chmod(0o644)
    file_output.save_key(target, leaf.key)
    assert _mode(target) == 0o600


def test_write_errors(material, tmp_path):
    _, _, leaf = material
    with pytest.raises(InputError) as info:
        file_output.save_certificate(tmp_path, leaf.cert)
    assert "is a folder" in info.value.problem
    with pytest.raises(InputError) as info:
        file_output.save_key(tmp_path / "nope" / "a.key", leaf.key)
    assert "does not exist" in info.value.problem
