"""The console's TLS contexts: built per certificate, keys never left on disk."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from mesh.web.tls import IdentityContexts, build_context


def test_context_built_once_per_certificate(pki):
    current = {"identity": pki.self_signed}
    contexts = IdentityContexts(lambda: current["identity"], lambda: (pki.root.cert,))
    first = contexts.context()
    assert contexts.context() is first
    current["identity"] = pki.leaf
    second = contexts.context()
    assert second is not first and contexts.builds == 2
    assert second.verify_mode is ssl.CERT_OPTIONAL
    assert second.minimum_version is ssl.TLSVersion.TLSv1_2


def test_no_key_file_stays_behind(pki, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    build_context(pki.leaf)
    assert list(Path(tmp_path).iterdir()) == []


def test_a_weak_certificate_of_the_appliance_is_still_served(keys, epoch):
    """SHA-1 and small keys are scenario recipes: the console presents them, as the
    appliance does, instead of stopping the node (OpenSSL's default level refuses them)."""
    import pytest

    from mesh.pki.deployment import ApplianceRequest, Pki

    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="s1", fault="sha1"),
                                          ApplianceRequest(name="s2", fault="weak-key")], keys=keys)
    for name in ("s1", "s2"):
        default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with pytest.raises(ssl.SSLError):
            _load(default, pki.appliances[name].issued)
        assert isinstance(build_context(pki.appliances[name].issued), ssl.SSLContext)


def _load(context: ssl.SSLContext, issued) -> None:
    from cryptography.hazmat.primitives import serialization

    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder, "c.pem"), Path(folder, "k.pem")
        cert.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(issued.key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        context.load_cert_chain(cert, key)
