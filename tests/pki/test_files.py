import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki import files
from mesh.pki.issue import CertificateAuthority


@pytest.fixture
def material(keys, epoch):
    root = CertificateAuthority.root("Root CA", not_before=epoch, key=keys(2048))
    issuing = root.intermediate("Issuing CA", not_before=epoch, key=keys(2048))
    leaf = issuing.issue("sensor.contoso.test", not_before=epoch, key=keys(2048))
    return root, issuing, leaf


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_certificate_pem_der_pem(material, tmp_path):
    _, _, leaf = material
    files.save_certificate(tmp_path / "a.crt", leaf.cert)
    files.save_certificate(tmp_path / "a.der", files.load_certificate(tmp_path / "a.crt"), der=True)
    # The extension does not matter: a .crt may hold DER.
    os.rename(tmp_path / "a.der", tmp_path / "b.crt")
    again = files.load_certificate(tmp_path / "b.crt")
    assert again == leaf.cert
    files.save_certificate(tmp_path / "c.crt", again)
    assert (tmp_path / "c.crt").read_bytes() == (tmp_path / "a.crt").read_bytes()


@pytest.mark.parametrize("passphrase", [None, "s3cret"])
@pytest.mark.parametrize("traditional", [False, True])
def test_key_round_trip_and_mode(material, tmp_path, passphrase, traditional):
    _, _, leaf = material
    path = files.save_key(
        tmp_path / "a.key", leaf.key, passphrase=passphrase, traditional=traditional
    )
    assert _mode(path) == 0o600
    text = path.read_bytes()
    assert (b"RSA PRIVATE KEY" in text) is traditional
    assert files.load_key(path, passphrase).private_numbers() == leaf.key.private_numbers()


def test_key_mode_when_overwriting_a_loose_file(material, tmp_path):
    _, _, leaf = material
    target = tmp_path / "a.key"
    target.write_text("old")
    target.chmod(0o644)
    files.save_key(target, leaf.key)
    assert _mode(target) == 0o600


def test_wrong_or_missing_passphrase(material, tmp_path):
    _, _, leaf = material
    for traditional in (False, True):
        path = files.save_key(
            tmp_path / "a.key", leaf.key, passphrase="right", traditional=traditional
        )
        with pytest.raises(ValidationFailed) as info:
            files.load_key(path, "wrong")
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
        with pytest.raises(ValidationFailed) as info:
            files.load_key(path)
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
        assert "no passphrase" in info.value.detail
    # A passphrase for a key that is not encrypted is ignored, as openssl does.
    plain = files.save_key(tmp_path / "p.key", leaf.key)
    assert files.load_key(plain, "anything").private_numbers() == leaf.key.private_numbers()


def test_der_key_accepted(material, tmp_path):
    _, _, leaf = material
    der = leaf.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k.key").write_bytes(der)
    assert files.load_key(tmp_path / "k.key").private_numbers() == leaf.key.private_numbers()


@pytest.mark.parametrize("passphrase", [None, "s3cret"])
def test_pkcs12_round_trip(material, tmp_path, passphrase):
    root, issuing, leaf = material
    path = files.save_pkcs12(
        tmp_path / "a.pfx",
        key=leaf.key,
        cert=leaf.cert,
        chain=[issuing.cert],
        passphrase=passphrase,
        name="sensor",
    )
    assert _mode(path) == 0o600
    got = files.load_pkcs12(path, passphrase)
    assert got.cert == leaf.cert and got.chain == (issuing.cert,)
    assert got.key.private_numbers() == leaf.key.private_numbers()
    if passphrase:
        with pytest.raises(ValidationFailed) as info:
            files.load_pkcs12(path, "wrong")
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
        with pytest.raises(ValidationFailed) as info:
            files.load_pkcs12(path)
        assert info.value.code is FailureCode.PASSPHRASE_MISMATCH


def test_chain_with_bag_attributes(material, tmp_path):
    root, issuing, leaf = material
    pem = files.chain_bytes([issuing.cert, root.cert]).decode()
    first, second = pem.split("-----END CERTIFICATE-----\n")[:2]
    text = (
        "Bag Attributes\n    localKeyID: 01 02 03\n    friendlyName: issuing\n"
        "subject=C = US, O = Contoso Inc., CN = Issuing CA\n"
        "issuer=C = US, O = Contoso Inc., CN = Root CA\n"
        + first
        + "-----END CERTIFICATE-----\r\n"
        + "Bag Attributes: <No Attributes>\nsubject=CN = Root CA\n\n"
        + second
        + "-----END CERTIFICATE-----\n"
    )
    (tmp_path / "chain.pem").write_text(text)
    assert files.load_certificates(tmp_path / "chain.pem") == [issuing.cert, root.cert]
    files.save_chain(tmp_path / "out.pem", [issuing.cert, root.cert])
    assert files.load_certificates(tmp_path / "out.pem") == [issuing.cert, root.cert]


def _bad(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("empty.crt", b"", "is empty"),
        ("blank.crt", b"\n  \n", "is empty"),
        ("garbage.crt", b"hello world, not a certificate", "not a certificate"),
        ("binary.crt", bytes(range(256)), "not a certificate"),
        ("missing.crt", None, "no such"),
    ],
)
def test_bad_certificate_inputs(tmp_path, name, content, problem):
    path = _bad(tmp_path, name, content)
    with pytest.raises(InputError) as info:
        files.load_certificate(path)
    assert info.value.where == str(path)
    assert problem in info.value.problem
    assert "\n" not in info.value.line()


def test_truncated_pem_and_swapped_files(material, tmp_path):
    _, _, leaf = material
    pem = files.certificate_bytes(leaf.cert)
    with pytest.raises(InputError) as info:
        files.load_certificate(_bad(tmp_path, "cut.crt", pem[: len(pem) // 2]))
    assert "truncated PEM" in info.value.problem
    damaged = pem.replace(pem[100:140], b"A" * 40)
    with pytest.raises(InputError) as info:
        files.load_certificate(_bad(tmp_path, "bad.crt", damaged))
    assert "damaged certificate" in info.value.problem
    key_pem = files.key_bytes(leaf.key)
    with pytest.raises(InputError) as info:
        files.load_certificate(_bad(tmp_path, "key.crt", key_pem))
    assert info.value.problem == "holds a private key, not a certificate"
    with pytest.raises(InputError) as info:
        files.load_key(_bad(tmp_path, "cert.key", pem))
    assert info.value.problem == "holds a certificate, not a private key"
    with pytest.raises(InputError) as info:
        files.load_key(_bad(tmp_path, "cert-der.key", files.certificate_bytes(leaf.cert, der=True)))
    assert info.value.problem == "holds a certificate, not a private key"
    with pytest.raises(InputError) as info:
        files.load_key(_bad(tmp_path, "cut.key", key_pem[:300]))
    assert "truncated PEM" in info.value.problem


def test_folder_and_non_rsa(tmp_path):
    with pytest.raises(InputError) as info:
        files.load_certificate(tmp_path)
    assert "is a folder" in info.value.problem
    with pytest.raises(InputError) as info:
        files.load_key(tmp_path)
    assert "is a folder" in info.value.problem
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(InputError) as info:
        files.load_key(_bad(tmp_path, "ec.key", ec_pem))
    assert "not an RSA key" in info.value.problem
    with pytest.raises(InputError) as info:
        files.load_pkcs12(_bad(tmp_path, "x.pfx", b"garbage"))
    assert "not a PKCS#12" in info.value.problem


def test_write_errors(material, tmp_path):
    _, _, leaf = material
    with pytest.raises(InputError) as info:
        files.save_certificate(tmp_path, leaf.cert)
    assert "is a folder" in info.value.problem
    with pytest.raises(InputError) as info:
        files.save_key(tmp_path / "nope" / "a.key", leaf.key)
    assert "does not exist" in info.value.problem


@settings(max_examples=150, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: b"\x30\x82" + b),
        st.text(max_size=200).map(
            lambda t: f"-----BEGIN CERTIFICATE-----\n{t}\n-----END CERTIFICATE-----\n".encode()
        ),
        st.text(max_size=200).map(
            lambda t: f"-----BEGIN RSA PRIVATE KEY-----\n{t}\n-----END RSA PRIVATE KEY-----\n".encode()
        ),
        st.text(max_size=200).map(
            lambda t: f"Bag Attributes\n-----BEGIN ENCRYPTED PRIVATE KEY-----\n{t}\n".encode()
        ),
    ),
    passphrase=st.sampled_from([None, "pw"]),
)
def test_any_bytes_give_a_clear_error_never_a_traceback(tmp_path_factory, data, passphrase):
    path = tmp_path_factory.mktemp("fuzz") / "in.bin"
    path.write_bytes(data)
    for reader in (
        files.load_certificate,
        files.load_certificates,
        lambda p: files.load_key(p, passphrase),
        lambda p: files.load_pkcs12(p, passphrase),
        files.load_crl,
    ):
        try:
            reader(path)
        except InputError as exc:
            assert "\n" not in exc.line()
        except ValidationFailed as exc:
            assert exc.code is FailureCode.PASSPHRASE_MISMATCH


# -- what opening a key may cost: refused in one line before any work --

import time  # noqa: E402

import pkcs8lab  # noqa: E402


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
        files.key_from_bytes(data, "a passphrase", where="upload.key")
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
        files.key_from_bytes(data, None, where="upload.key")
    assert time.monotonic() - started < 0.5
    assert info.value.line() == (
        "upload.key: holds a 65,536-bit RSA key, more than the 16,384 bits a key may have; "
        "use an RSA 2048 or 4096 key")


def test_a_key_within_the_limits_opens(keys):
    key = keys(2048)
    data = pkcs8lab.encrypted_pkcs8(key, "right", 100_000)
    assert files.key_from_bytes(data, "right").private_numbers() == key.private_numbers()
    with pytest.raises(ValidationFailed) as info:
        files.key_from_bytes(data, "wrong")
    assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
