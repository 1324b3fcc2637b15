"""An appliance killed mid-run: peers mark the link down, back off, and judge afresh.

In process (``Mesh.stop``/``Mesh.start``) the backoff is watched on trio's
MockClock: the dialer's attempts come 1, 2, 4 ... emulated seconds apart,
jumped by hand. As a process (``mesh node`` killed with SIGKILL) the peer is
an in-process sensor, so the test can revoke the console's certificate while
its process is dead and see the sensor halt the link when it returns.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys

import pytest
import trio
import trio.testing

from mesh.appliances import EngineSettings, LinkState
from mesh.errors import FailureCode
from mesh.events import LinkDown, LinkHalted, LinkUp
from mesh.pki.files import save_certificate, save_chain, save_key

from .conftest import wait_delivered, wait_link


async def _attempts(mesh) -> int:
    await trio.testing.wait_all_tasks_blocked()
    return mesh.link("sensor-1", "console").attempts


async def test_stopped_console_is_down_redialed_with_backoff_and_up_again(
    deployment, nursery, mock_clock
):
    mesh = deployment.pair()
    await nursery.start(mesh.run)
    await mesh.settle()
    before = mesh.link("sensor-1", "console")
    assert before.state is LinkState.UP

    await mesh.stop("console")
    down = await wait_link(mesh, "sensor-1", "console", LinkState.DOWN)
    assert "console" in down.reason
    assert mesh.events.of(LinkDown, listener="console")

    # The first redial is at once (the settle above asked for a fresh attempt),
    # then the gaps double on the emulated clock: 2, 4, 8 seconds.
    first = await _attempts(mesh)
    for n, gap in enumerate([2.0, 4.0, 8.0], start=1):
        mock_clock.jump(gap - 0.1)
        assert await _attempts(mesh) == first + n - 1, f"redialed before {gap} s"
        mock_clock.jump(0.2)
        assert await _attempts(mesh) == first + n, f"no redial after {gap} s"
    assert mesh.link("sensor-1", "console").state is LinkState.DOWN
    assert "not reachable (Connection refused)" in mesh.link("sensor-1", "console").reason

    await mesh.start("console")
    await mesh.settle()
    after = mesh.link("sensor-1", "console")
    assert after.state is LinkState.UP
    assert len(mesh.events.of(LinkUp, listener="console")) == 2
    mesh.raise_alert("sensor-1", "back")
    assert await wait_delivered(mesh, "sensor-1", "console", after.delivered) > before.delivered


async def test_revoked_while_down_is_halted_on_return(deployment, nursery):
    mesh = deployment.pair()
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP
    delivered = mesh.link("sensor-1", "console").delivered

    await mesh.stop("console")
    await wait_link(mesh, "sensor-1", "console", LinkState.DOWN)
    serial = await mesh.revoke("console")
    await mesh.start("console")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.HALTED
    assert (link.code, link.refused_by, link.serial) == (FailureCode.REVOKED, "sensor-1", serial)
    assert link.delivered == delivered  # nothing crossed the halted connection
    assert mesh.events.of(LinkHalted, refused_by="sensor-1", code=FailureCode.REVOKED)


async def test_dialer_stopped_and_started_revalidates(deployment, nursery):
    """The other way round: the dialer returns after a clock jump in which the certificates expired."""
    mesh = deployment.pair()
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.stop("sensor-1")
    assert mesh.link("sensor-1", "console").state is LinkState.DOWN
    await mesh.advance(dt.timedelta(days=400))  # its certificate expires
    await mesh.start("sensor-1")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.EXPIRED)


# -- a mesh node process killed with SIGKILL --


class Node:
    """A ``mesh node`` process; its stdout is read as JSON-line events."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def wait_for(self, kind: str) -> dict:
        while True:
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"the node exited before {kind!r}")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            event = json.loads(line)
            if event["kind"] == kind:
                return event

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


async def _console_node(folder, listen: str) -> Node:
    config = folder / "console.toml"
    config.write_text(
        f"""
name = "console"
hostname = "console.contoso.test"
role = "management-console"
listen = "{listen}"
certificate = "console.crt"
key = "console.key"
chain = "console.pem"
trust = ["root.crt"]
start = "2027-01-15T09:00:00Z"
"""
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "node", "--config", str(config)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Node(process)


@pytest.mark.slow
async def test_killed_node_process_is_down_then_revalidated_on_return(
    deployment, nursery, tmp_path
):
    pki = deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    material = pki.appliances["console"]
    save_certificate(tmp_path / "console.crt", material.cert)
    save_key(tmp_path / "console.key", material.issued.key)
    save_chain(tmp_path / "console.pem", material.chain)
    save_certificate(tmp_path / "root.crt", pki.root.cert)

    with trio.fail_after(60):
        console = await _console_node(tmp_path, "127.0.0.1:0")
        try:
            address = (await console.wait_for("appliance-started"))["address"]
            host, _, port = address.rpartition(":")
            mesh = deployment.mesh(
                [deployment.spec("sensor-1", "sensor", connects_to=["console"])],
                settings=EngineSettings(
                    handshake_timeout=5.0, verdict_timeout=5.0, crl_timeout=2.0,
                    backoff_initial=0.2, backoff_cap=0.5,
                ),
            )
            mesh.add_external("console", host, int(port), hostname="console.contoso.test")
            await nursery.start(mesh.run)
            await wait_link(mesh, "sensor-1", "console", LinkState.UP)
            await console.wait_for("message-delivered")  # heartbeats reach the process

            await console.kill()
            down = await wait_link(mesh, "sensor-1", "console", LinkState.DOWN)
            assert down.code is None

            # Healthy return: the sensor finds it again on its own (backoff, no settle).
            console = await _console_node(tmp_path, address)
            await console.wait_for("appliance-started")
            await wait_link(mesh, "sensor-1", "console", LinkState.UP)
            assert len(mesh.events.of(LinkUp, listener="console")) == 2

            # Revoked while dead: judged afresh on return, halted by the sensor.
            await console.kill()
            await wait_link(mesh, "sensor-1", "console", LinkState.DOWN)
            await mesh.revoke("console")
            console = await _console_node(tmp_path, address)
            await console.wait_for("appliance-started")
            link = await wait_link(mesh, "sensor-1", "console", LinkState.HALTED)
            assert (link.code, link.refused_by) == (FailureCode.REVOKED, "sensor-1")
            assert link.message == FailureCode.REVOKED.message
        finally:
            await console.kill()
