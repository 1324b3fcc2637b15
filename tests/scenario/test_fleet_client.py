"""The driver's one client: an operator certificate instead of tokens, and one-line failures.

A real node (``run_node`` in this trio run) and a real CRL control API, on
loopback; the operator certificate is issued by an operator CA both trust.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from mesh.net.crl_server import CrlServer
from mesh.pki.operator import OperatorCa
from mesh.scenario.fleet_client import Api, FleetClient, FleetError, Operator
from tests.test_node import Capture, _started_node, _write

WALL = dt.datetime.now(dt.timezone.utc)


def _operator(tmp_path) -> tuple[Operator, OperatorCa]:
    ca = OperatorCa.create(not_before=WALL - dt.timedelta(days=1))
    alice = ca.issue("alice", not_before=WALL - dt.timedelta(hours=1))
    (tmp_path / "operator-ca.crt").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "alice.crt").write_bytes(alice.cert.public_bytes(serialization.Encoding.PEM))
    key = tmp_path / "alice.key"
    key.write_bytes(alice.key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    key.chmod(0o600)
    return Operator(certificate=tmp_path / "alice.crt", key=key), ca


async def test_an_operator_certificate_drives_a_node_and_the_crl_server(tmp_path, nursery):
    operator, ca = _operator(tmp_path)
    out = Capture()
    start = WALL.isoformat().replace("+00:00", "Z")
    await _started_node(nursery, _write(
        tmp_path, f'name = "a"\nrole = "sensor"\nstart = "{start}"\n'
                  'operator_ca = "operator-ca.crt"\n'), out)
    (listening,) = [e for e in out.events() if e["kind"] == "api-listening"]
    node = Api(name="a", url=listening["url"])  # no token: the certificate alone

    from functools import partial

    from mesh.crl_service import serve_crl_api

    server = CrlServer()
    await nursery.start(server.serve)
    url = await nursery.start(partial(serve_crl_api, server, token_file=tmp_path / "crl.token",
                                      operator_cas=(ca.cert,)))
    crl = Api(name="crl-server", url=url)
    async with FleetClient(operator=operator) as client:
        await client.set_validation(node, False)
        moved = await client.move_clock(node, WALL + dt.timedelta(days=1))
        assert moved >= WALL + dt.timedelta(days=1)
        await client.fault(crl, "down")
        assert server.fault().value == "down"
    kinds = [e["kind"] for e in out.events()]
    assert "validation-switched" in kinds and "clock-advanced" in kinds
    # Without the certificate: one line naming the appliance, the request and the fix.
    async with FleetClient() as client:
        with pytest.raises(FleetError) as info:
            await client.set_validation(node, True)
    line = info.value.line()
    assert line.startswith(f"a: PUT {listening['url']}/api/v1/validation: answered 401 unauthorized")
    assert "\n" not in line


async def test_an_api_nobody_answers_is_one_line():
    async with FleetClient(timeout=5) as client:
        with pytest.raises(FleetError) as info:
            await client.refresh(Api(name="cm", url="https://127.0.0.1:1", token="t"))
    assert "cm: POST https://127.0.0.1:1/api/v1/crls/refresh: cannot be reached" in info.value.line()
