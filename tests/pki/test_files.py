"""The files facade: every reader and writer behind one name, and what they all promise."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki import files


def _bad(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


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

