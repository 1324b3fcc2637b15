import os
import stat

import pytest

from mesh.errors import FailureCode, ValidationFailed
from mesh.pki import pkcs12_files


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("passphrase", [None, "s3cret"])
def test_pkcs12_round_trip(material, tmp_path, passphrase):
    root, issuing, leaf = material
    path = pkcs12_files.save_pkcs12(
        tmp_path / "a.pfx",
        key=leaf.key,
        cert=leaf.cert,
        chain=[issuing.cert],
        passphrase=passphrase,
        name="sensor",
    )
    assert _mode(path) == 0o600
    got = pkcs12_files.load_pkcs12(path, passphrase)
    assert got.cert == leaf.cert and got.chain == (issuing.cert,)
    assert got.key.private_numbers() == leaf.key.private_numbers()
    if passphrase:
        with pytest.raises(ValidationFailed) as info:
            pkcs12_files.load_pkcs12(path, "wrong")
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
        with pytest.raises(ValidationFailed) as info:
            pkcs12_files.load_pkcs12(path)
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
