"""The two-nodes measurement's clients: admitted in full, and a refusal is never counted.

Real ``mesh node`` processes, a real ``CrlServer`` and the ``openssl s_time``
CLI; each trial runs for s_time's minimum of one second.
"""

from __future__ import annotations

import shutil
import subprocess

import attrs
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.bench.material import Material
from mesh.bench.nodes import _check_admitted, _ecdsa_client, _start_node, _trial
from mesh.net.crl_server import CrlServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _verify(material: Material, cert) -> subprocess.CompletedProcess:
    crl = material.directory / "root.crl.pem"
    crl.write_bytes(
        material.root.crl(this_update=material.at).public_bytes(serialization.Encoding.PEM)
    )
    return subprocess.run(
        ["openssl", "verify", "-auth_level", "2", "-purpose", "sslclient", "-crl_check",
         "-CRLfile", str(crl), "-CAfile", str(material.root_pem), str(cert)],
        capture_output=True, text=True, check=False,
    )


def test_the_client_certificate_is_p256_from_the_root_and_openssl_accepts_it(tmp_path, keys):
    material = Material.build(2048, keys, tmp_path / "pki", intermediate=False)
    client = _ecdsa_client(material, tmp_path / "clients")
    cert = x509.load_pem_x509_certificate(client.cert.read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert cert.issuer == material.root.cert.subject
    assert client.key.stat().st_mode & 0o777 == 0o600
    assert "Groups = P-256" in client.openssl_conf.read_text()
    done = _verify(material, client.cert)
    assert done.returncode == 0, done.stderr


async def test_a_node_admits_the_p256_client_and_a_refused_one_fails_the_run(tmp_path, keys):
    openssl = shutil.which("openssl")
    server = CrlServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        material = Material.build(
            2048, keys, tmp_path / "pki", crl_base_url=f"{server.base_url}/crl", intermediate=False
        )
        server.set_documents(material.crl_documents())
        client = _ecdsa_client(material, tmp_path / "clients")
        nodes = [await _start_node(nursery, tmp_path, material, 0)]
        try:
            good = await _trial(nodes, client, 1, openssl)
            assert good.count == 1 and good.handshakes[0] > 0
            assert good.node_cpu > 0 and good.client_cpu > 0
            _check_admitted(nodes)  # every one of them validated and let in

            # A client from another root: s_time still completes (and counts)
            # TLS 1.3 handshakes, but the node refuses each one.
            other = Material.build(2048, keys, tmp_path / "other", intermediate=False)
            stranger = attrs.evolve(_ecdsa_client(other, tmp_path / "stranger"), root=material.root_pem)
            bad = await _trial(nodes, stranger, 1, openssl)
            assert bad.handshakes[0] > 0
            with trio.fail_after(10):
                await nodes[0].refused.wait()
            with pytest.raises(RuntimeError, match="link-halted"):
                _check_admitted(nodes)
            assert "chain_untrusted" in nodes[0].refusals["link-halted"]
        finally:
            for node in nodes:
                node.process.terminate()
                await node.process.wait()
        # The node checked revocation too: it fetched the root's CRL.
        assert sum(server.requests(path) for path in server.paths) >= 1
        nursery.cancel_scope.cancel()
