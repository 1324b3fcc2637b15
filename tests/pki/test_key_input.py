import time

import pytest
from cryptography.hazmat.primitives import serialization

import pkcs8lab
from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki import key_input
from mesh.pki.file_output import save_key


def test_wrong_or_missing_passphrase(material, tmp_path):
    _, _, leaf = material
    for traditional in (False, True):
        path = save_key(
            tmp_path / "a.key", leaf.key, passphrase="right", traditional=traditional
        )
        with pytest.raises(ValidationFailed) as info:
            key_input.load_key(path, "wrong")
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
        with pytest.raises(ValidationFailed) as info:
            key_input.load_key(path)
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
        assert "no passphrase" in info.value.detail
    # A passphrase for a key that is not encrypted is ignored, as openssl does.
    plain = save_key(tmp_path / "p.key", leaf.key)
    assert key_input.load_key(plain, "anything").private_numbers() == leaf.key.private_numbers()


def test_der_key_accepted(material, tmp_path):
    _, _, leaf = material
    der = leaf.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k.key").write_bytes(der)
    assert key_input.load_key(tmp_path / "k.key").private_numbers() == leaf.key.private_numbers()


# -- what opening a key may cost: refused in one line before any work --


@pytest.mark.parametrize(("der", "problem"), [
    (pkcs8lab.encrypted(pkcs8lab.pbes2_pbkdf2(100_000_000, b"s" * 16, b"i" * 16)),
     "is encrypted with 100,000,000 PBKDF2 iterations, more than the 1,000,000 a key may take"),
    (pkcs8lab.encrypted(pkcs8lab.pbes2_scrypt(2**20, 8, 1)),
     "is encrypted with scrypt using 1,024 MiB (N=1048576, r=8, p=1), "
     "more than the 64 MiB a key may take"),
    (pkcs8lab.encrypted(pkcs8lab.pbes2_scrypt(2**14, 8, 64)),
     "is encrypted with scrypt using 1,024 MiB (N=16384, r=8, p=64), "
     "more than the 64 MiB a key may take"),
    (pkcs8lab.encrypted(pkcs8lab.pbes1(100_000_000)),
     "is encrypted with 100,000,000 iterations, more than the 1,000,000 a key may take"),
])
@pytest.mark.parametrize("form", ["pem", "der"])
def test_a_key_that_costs_too_much_to_open_is_refused_unopened(der, problem, form):
    data = pkcs8lab.pem(der) if form == "pem" else der
    started = time.monotonic()
    with pytest.raises(InputError) as info:
        key_input.key_from_bytes(data, "a passphrase", where="upload.key")
    assert time.monotonic() - started < 0.5
    assert info.value.line() == (
        f"upload.key: {problem}; export the key again with "
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 100000")


@pytest.mark.parametrize("form", ["pem", "der"])
def test_an_rsa_key_over_16384_bits_is_refused_unopened(form):
    der = pkcs8lab.huge_rsa_key(65536)
    data = pkcs8lab.pem(der, "PRIVATE KEY") if form == "pem" else der
    started = time.monotonic()
    with pytest.raises(InputError) as info:
        key_input.key_from_bytes(data, None, where="upload.key")
    assert time.monotonic() - started < 0.5
    assert info.value.line() == (
        "upload.key: holds a 65,536-bit RSA key, more than the 16,384 bits a key may have; "
        "use an RSA 2048 or 4096 key")


def test_a_key_within_the_limits_opens(keys):
    key = keys(2048)
    data = pkcs8lab.encrypted_pkcs8(key, "right", 100_000)
    assert key_input.key_from_bytes(data, "right").private_numbers() == key.private_numbers()
    with pytest.raises(ValidationFailed) as info:
        key_input.key_from_bytes(data, "wrong")
    assert info.value.code is FailureCode.PASSPHRASE_MISMATCH


def _der_integer(value):
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(body)) + body


def _der_length(size):
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _damaged(key, **changes):
    """``key`` as a PKCS#1 PEM file with some of its numbers moved (as a bad export might)."""
    import base64

    n = key.private_numbers()
    fields = dict(n=n.public_numbers.n, e=n.public_numbers.e, d=n.d, p=n.p, q=n.q,
                  dmp1=n.dmp1, dmq1=n.dmq1, iqmp=n.iqmp)
    fields.update({name: fields[name] + delta for name, delta in changes.items()})
    body = _der_integer(0) + b"".join(_der_integer(fields[k]) for k in
                                      ("n", "e", "d", "p", "q", "dmp1", "dmq1", "iqmp"))
    der = b"\x30" + _der_length(len(body)) + body
    lines = [base64.b64encode(der[i:i + 48]).decode() for i in range(0, len(der), 48)]
    return ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines)
            + "\n-----END RSA PRIVATE KEY-----\n").encode()


@pytest.mark.parametrize("changes", [{"p": 2}, {"d": 2}, {"dmp1": 2}, {"iqmp": 1}])
def test_a_damaged_key_is_refused_in_one_line(material, changes):
    # Checked by arithmetic, not by OpenSSL's primality tests (~100 ms a key):
    # a shard loads thousands of keys.
    _, _, leaf = material
    with pytest.raises(InputError) as info:
        key_input.key_from_bytes(_damaged(leaf.key, **changes), where="a.key")
    line = info.value.line()
    assert line.startswith("a.key: holds a damaged private key (") and line.endswith(
        "; export the key again"), line


def test_the_arithmetic_check_names_what_does_not_add_up(material):
    _, _, leaf = material
    assert key_input._inconsistency(leaf.key) == ""
    moved = serialization.load_pem_private_key(_damaged(leaf.key, d=2), None,
                                               unsafe_skip_rsa_key_validation=True)
    assert key_input._inconsistency(moved) == "its private exponent does not invert its public one"
