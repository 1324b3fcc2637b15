"""Traffic on a live link: a peer that goes away ends the link, never the mesh."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.appliances import ApplianceSpec, LinkState, Mesh
from mesh.appliances.traffic import Plan, speak
from mesh.events import LinkDown, LinkUp
from mesh.net.framing import FramedStream


@pytest.mark.parametrize("alerts", [0, 3], ids=["heartbeat", "alerts"])
async def test_a_sensor_speaking_into_a_closed_peer_raises_one_broken_resource_error(
    epoch, alerts
):
    # The heartbeats run beside the alert stream in a nursery of their own;
    # what the caller sees must still be the plain connection error it
    # handles, not an ExceptionGroup wrapping it.
    mesh = Mesh(start=epoch)
    sensor = mesh.add(ApplianceSpec(name="sensor-1", role="sensor", connects_to=["console"]))
    for n in range(alerts):
        mesh.raise_alert("sensor-1", f"alert {n}")
    ours, theirs = trio.testing.memory_stream_pair()
    await theirs.aclose()
    link = mesh.book.get("sensor-1", "console")
    with pytest.raises(trio.BrokenResourceError):
        await speak(sensor, link, FramedStream(ours), Plan.HEARTBEATS_AND_ALERTS)


async def test_a_console_stopped_while_sensors_are_up_takes_their_links_down_not_the_mesh(
    deployment, nursery
):
    sensors = [f"sensor-{n}" for n in range(1, 9)]
    deployment.build(*[(name, "sensor") for name in sensors], ("console", "management-console"))
    mesh = deployment.mesh(
        [deployment.spec("console", "management-console")]
        + [deployment.spec(name, "sensor", connects_to=["console"]) for name in sensors]
    )
    await nursery.start(mesh.run)
    for _ in range(2):
        await mesh.settle()
        assert {link.state for link in mesh.links()} == {LinkState.UP}
        # The sensors keep sending while the console goes away under them, so
        # some of them write into a connection the console has already closed.
        async with trio.open_nursery() as stopping:
            stopping.start_soon(mesh.stop, "console")
            while mesh.appliance("console").running:
                for name in sensors:
                    mesh.raise_alert(name, "still here")
                await trio.lowlevel.checkpoint()
        await mesh.settle()
        assert {link.state for link in mesh.links()} == {LinkState.DOWN}
        assert all(mesh.appliance(name).running for name in sensors)
        await mesh.start("console")
    await mesh.settle()
    assert {link.state for link in mesh.links()} == {LinkState.UP}
    assert len(mesh.events.of(LinkDown, listener="console")) == 2 * len(sensors)
    assert len(mesh.events.of(LinkUp, listener="console")) == 3 * len(sensors)
