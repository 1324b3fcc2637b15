import pytest

from mesh.errors import InputError
from mesh.pki import cert_input
from mesh.pki.file_output import chain_bytes, save_chain


def test_chain_with_bag_attributes(material, tmp_path):
    root, issuing, leaf = material
    pem = chain_bytes([issuing.cert, root.cert]).decode()
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
    assert cert_input.load_certificates(tmp_path / "chain.pem") == [issuing.cert, root.cert]
    save_chain(tmp_path / "out.pem", [issuing.cert, root.cert])
    assert cert_input.load_certificates(tmp_path / "out.pem") == [issuing.cert, root.cert]


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
        cert_input.load_certificate(path)
    assert info.value.where == str(path)
    assert problem in info.value.problem
    assert "\n" not in info.value.line()
