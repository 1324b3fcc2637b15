import pytest
from cryptography.hazmat.primitives import serialization

from mesh.errors import InputError
from mesh.pki import file_input
from mesh.pki.file_output import certificate_bytes, key_bytes


@pytest.mark.parametrize(("content", "line"), [
    (None, "{path}: no such key file; check the path"),
    (b" \n\t", "{path}: is empty; give a key file with content"),
])
def test_read_input_names_the_file_and_the_fix(tmp_path, content, line):
    path = tmp_path / "a.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        file_input.read_input(path, "key file")
    assert info.value.line() == line.format(path=path)


def test_read_input_of_a_folder(tmp_path):
    with pytest.raises(InputError) as info:
        file_input.read_input(tmp_path, "certificate file")
    assert info.value.line() == (
        f"{tmp_path}: is a folder, not a certificate file; name the certificate file itself")


def test_pem_blocks_in_order_and_a_truncated_one(material):
    root, issuing, leaf = material
    data = b"Bag Attributes\n" + certificate_bytes(issuing.cert) + key_bytes(leaf.key)
    assert [label for label, _ in file_input.pem_blocks(data, "x.pem")] == [
        b"CERTIFICATE", b"PRIVATE KEY"]
    with pytest.raises(InputError) as info:
        file_input.pem_blocks(data[:-40], "x.pem")
    assert info.value.line() == (
        "x.pem: truncated PEM: a BEGIN PRIVATE KEY has no matching END line; "
        "copy the whole file again")


def test_what_a_file_holds(material):
    _, _, leaf = material
    der_key = leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der_cert = certificate_bytes(leaf.cert, der=True)
    assert file_input.is_der_private_key(der_key)
    assert not file_input.is_der_private_key(der_cert)
    assert file_input.looks_pem(certificate_bytes(leaf.cert)) and not file_input.looks_pem(der_cert)
    assert [file_input.kind_of(label) for label in (
        b"TRUSTED CERTIFICATE", b"EC PRIVATE KEY", b"X509 CRL", b"CERTIFICATE REQUEST", b"PKCS7"
    )] == ["certificate", "private key", "CRL", "certificate signing request", "pkcs7"]
    assert file_input.passphrase_bytes("") is None and file_input.passphrase_bytes("é") == b"\xc3\xa9"
