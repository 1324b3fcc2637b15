"""The openssl CLI as an independent peer: s_client against an appliance, s_server dialed by one.

These wait on another OS process, so they run on trio's real clock (see
mesh.clock) and wait for events, never for time.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess

import pytest
import trio

from mesh.appliances import LinkState
from mesh.errors import FailureCode
from mesh.events import Event, LinkDown, LinkHalted, LinkUp
from mesh.net.framing import Frame, FrameType, encode
from mesh.pki.files import save_certificate, save_chain, save_key

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]

#: What a well-behaved dialer sends after the handshake: its ACCEPT verdict.
ACCEPT = encode(Frame(type=FrameType.ACCEPT, body={"appliance": "sensor-1", "enforced": True}))


def _files(tmp_path, material, stem):
    cert = save_certificate(tmp_path / f"{stem}.crt", material.cert)
    key = save_key(tmp_path / f"{stem}.key", material.issued.key)
    chain = save_chain(tmp_path / f"{stem}.pem", material.chain)
    return str(cert), str(key), str(chain)


async def _wait_for(mesh, cls: type[Event], **fields) -> Event:
    channel = mesh.events.subscribe()
    for event in mesh.events.of(cls, **fields):
        return event
    async for event in channel:
        if isinstance(event, cls) and all(getattr(event, k) == v for k, v in fields.items()):
            return event
    raise AssertionError("event log closed")


async def _s_client(port, cert, key, chain):
    return await trio.lowlevel.open_process(
        [
            "openssl", "s_client", "-connect", f"127.0.0.1:{port}",
            "-cert", cert, "-key", key, "-cert_chain", chain, "-no_ign_eof",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


async def _console(deployment, nursery, sensor_fault):
    deployment.build(("sensor-1", "sensor", sensor_fault), ("console", "management-console"))
    mesh = deployment.mesh([deployment.spec("console", "management-console")])
    await nursery.start(mesh.run)
    return mesh


async def test_s_client_with_a_good_client_certificate_is_accepted(
    deployment, nursery, tmp_path
):
    mesh = await _console(deployment, nursery, "ca-signed")
    files = _files(tmp_path, deployment.pki.appliances["sensor-1"], "sensor-1")
    process = await _s_client(mesh.appliance("console").port, *files)
    with trio.fail_after(20):
        await process.stdin.send_all(ACCEPT)
        up = await _wait_for(mesh, LinkUp, listener="console")
        assert up.dialer == "sensor-1"
        assert mesh.link("sensor-1", "console").state is LinkState.UP
        await process.stdin.aclose()  # s_client closes the connection at EOF
        await _wait_for(mesh, LinkDown, dialer="sensor-1")
        assert await process.wait() == 0
    output = await _read_all(process)
    assert b"CN = console.contoso.test" in output
    assert b'"appliance":"console"' in output  # the console's ACCEPT frame reached the client


async def test_s_client_with_a_bad_client_certificate_is_refused(deployment, nursery, tmp_path):
    mesh = await _console(deployment, nursery, "expired")
    files = _files(tmp_path, deployment.pki.appliances["sensor-1"], "sensor-1")
    process = await _s_client(mesh.appliance("console").port, *files)
    with trio.fail_after(20):
        await process.stdin.send_all(ACCEPT)
        halted = await _wait_for(mesh, LinkHalted, refused_by="console")
        assert halted.code is FailureCode.EXPIRED
        assert halted.dialer == "sensor-1"
        await process.wait()  # the console closed the connection: s_client ends
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code, link.delivered) == (LinkState.HALTED, FailureCode.EXPIRED, 0)
    assert b'"code":"expired"' in await _read_all(process)


async def _read_all(process) -> bytes:
    output = b""
    while chunk := await process.stdout.receive_some(1 << 20):
        output += chunk
    return output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_s_server_that_refuses_the_appliance_halts_with_validation_failed(
    deployment, nursery, tmp_path
):
    """A real TLS server whose own check fails: the design brief's generic code."""
    deployment.build(("sensor-1", "sensor"), ("siem", "forwarding-target"))
    cert, key, _ = _files(tmp_path, deployment.pki.appliances["siem"], "siem")
    # It trusts only its own certificate, so it rejects the sensor's.
    unrelated = save_certificate(tmp_path / "unrelated.crt", deployment.pki.appliances["siem"].cert)
    port = _free_port()
    server = await trio.lowlevel.open_process(
        [
            "openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert, "-key", key,
            "-cert_chain", str(tmp_path / "siem.pem"), "-CAfile", str(unrelated),
            "-Verify", "1", "-verify_return_error", "-quiet", "-naccept", "50",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        mesh = deployment.mesh([deployment.spec("sensor-1", "sensor", connects_to=["siem"])])
        mesh.add_external("siem", "127.0.0.1", port, hostname="siem.contoso.test")
        await nursery.start(mesh.run)
        with trio.fail_after(20):
            halted = await _wait_for(mesh, LinkHalted, refused_by="siem")
        assert halted.code is FailureCode.VALIDATION_FAILED
        assert "refused the TLS handshake" in halted.detail
        link = mesh.link("sensor-1", "siem")
        assert (link.state, link.code, link.delivered) == (
            LinkState.HALTED,
            FailureCode.VALIDATION_FAILED,
            0,
        )
        assert link.message == "Certificate validation failed"
    finally:
        server.kill()
        await server.wait()


async def _listening(port: int) -> None:
    """Wait until a process listens on ``port`` (one probe connection, closed at once)."""
    while True:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.02)
            continue
        await stream.aclose()
        return


async def test_a_third_party_target_that_refuses_the_appliance_halts_it_without_a_flap(
    deployment, nursery, tmp_path
):
    """TLS 1.3: the server's alert comes after our handshake; it is its refusal, not a drop."""
    deployment.build(("sensor-1", "sensor"), ("siem", "forwarding-target"))
    cert, key, chain = _files(tmp_path, deployment.pki.appliances["siem"], "siem")
    # It trusts only its own certificate, so it rejects the sensor's.
    unrelated = save_certificate(tmp_path / "unrelated.crt", deployment.pki.appliances["siem"].cert)
    port = _free_port()
    # Four connections, then it exits: the probe below and three attempts.
    server = await trio.lowlevel.open_process(
        [
            "openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert, "-key", key,
            "-cert_chain", chain, "-CAfile", str(unrelated), "-Verify", "1",
            "-verify_return_error", "-quiet", "-naccept", "4", "-tls1_3",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(20):
            await _listening(port)
            mesh = deployment.mesh([deployment.spec("sensor-1", "sensor", forwards_to=["siem"])])
            mesh.add_external("siem", "127.0.0.1", port, hostname="siem.contoso.test", speaks_mesh=False)
            await nursery.start(mesh.run)
            halted = await _wait_for(mesh, LinkHalted, refused_by="siem")
            while server.returncode is None:  # redialed after each backoff, refused again
                mesh.clock.jump(dt.timedelta(seconds=60))
                with trio.move_on_after(0.05):
                    await server.wait()
        assert halted.code is FailureCode.VALIDATION_FAILED
        assert "siem refused the TLS handshake" in halted.detail
        assert "unknown ca" in halted.detail
        link = mesh.link("sensor-1", "siem")
        assert (link.state, link.delivered) == (LinkState.HALTED, 0)
        # Never up, never merely down, and one halt for three refusals: no flap.
        assert len(mesh.events.of(LinkHalted)) == 1
        assert not mesh.events.of(LinkUp) and not mesh.events.of(LinkDown)
    finally:
        server.kill()
        await server.wait()


async def test_an_appliance_forwards_alerts_to_an_s_server_that_accepts_it(
    deployment, nursery, tmp_path
):
    """A third-party forwarding target: server-auth for us, -Verify 1 for it."""
    deployment.build(("sensor-1", "sensor"), ("siem", "forwarding-target"))
    cert, key, chain = _files(tmp_path, deployment.pki.appliances["siem"], "siem")
    root = save_certificate(tmp_path / "root.crt", deployment.pki.root.cert)
    port = _free_port()
    server = await trio.lowlevel.open_process(
        [
            "openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert, "-key", key,
            "-cert_chain", chain, "-CAfile", str(root), "-Verify", "1",
            "-verify_return_error", "-quiet", "-naccept", "1", "-attime",
            str(int(deployment.epoch.timestamp())),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        mesh = deployment.mesh([deployment.spec("sensor-1", "sensor", forwards_to=["siem"])])
        mesh.add_external("siem", "127.0.0.1", port, hostname="siem.contoso.test", speaks_mesh=False)
        await nursery.start(mesh.run)
        with trio.fail_after(20):
            up = await _wait_for(mesh, LinkUp, listener="siem")
            assert up.dialer == "sensor-1"
            mesh.raise_alert("sensor-1", "unauthorised PLC write")
            received = b""
            while b"unauthorised PLC write" not in received:
                received += await server.stdout.receive_some(65536)
        line = received.splitlines()[-1]
        assert json.loads(line)["type"] == "forward"
        assert mesh.link("sensor-1", "siem").state is LinkState.UP
    finally:
        server.kill()
        await server.wait()
