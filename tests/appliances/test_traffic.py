"""Traffic on a live link: a peer that goes away ends the link, never the mesh."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.appliances import ApplianceSpec, LinkState, Mesh
from mesh.appliances.traffic import INBOX_WINDOW, Inbox, Plan, voices
from mesh.events import LinkDown, LinkUp
from mesh.net.framing import Frame, FramedStream, FrameType


@pytest.mark.parametrize("plan", [Plan.HEARTBEATS_AND_ALERTS, Plan.REPLICATE, Plan.FORWARD])
async def test_every_voice_speaking_into_a_closed_peer_raises_one_plain_link_error(epoch, plan):
    # The engine runs each voice as a task of the link's nursery and catches
    # LINK_ERRORS around it: anything else (an ExceptionGroup wrapping one)
    # would take the appliance down instead of the link.
    mesh = Mesh(start=epoch)
    sensor = mesh.add(ApplianceSpec(name="sensor-1", role="sensor", connects_to=["console"]))
    mesh.raise_alert("sensor-1", "alert 0")
    ours, theirs = trio.testing.memory_stream_pair()
    await theirs.aclose()
    link = mesh.book.get("sensor-1", "console")
    speaking = voices(sensor, link, FramedStream(ours), plan)
    assert len(speaking) == 1  # one task per speaking end, heartbeats and alerts alike
    for voice in speaking:
        with pytest.raises(trio.BrokenResourceError):
            await voice()
    assert voices(sensor, link, FramedStream(ours), Plan.NOTHING) == []


async def test_a_sensor_voice_sends_a_heartbeat_at_once_then_each_alert_as_it_is_posted(epoch):
    # One task waits for both: the next heartbeat (an hour away here) and an alert.
    mesh = Mesh(start=epoch)
    sensor = mesh.add(ApplianceSpec(name="sensor-1", role="sensor", connects_to=["console"],
                                    heartbeat_interval=3600))
    ours, theirs = trio.testing.memory_stream_pair()
    link = mesh.book.get("sensor-1", "console")
    (voice,) = voices(sensor, link, FramedStream(ours), Plan.HEARTBEATS_AND_ALERTS)
    received = FramedStream(theirs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voice)
        with trio.fail_after(5):
            first = await received.receive()
            mesh.raise_alert("sensor-1", "disk full")
            second = await received.receive()
        nursery.cancel_scope.cancel()
    assert (first.type, first.body["seq"]) == (FrameType.HEARTBEAT, 1)
    assert second.type is FrameType.ALERT and "disk full" in str(second.body)
    assert link.cursors == {"sensor-1": 1}


def test_the_inbox_counts_every_frame_and_keeps_the_last_few():
    inbox = Inbox(window=3)
    assert (list(inbox), len(inbox), inbox.received) == ([], 0, 0)
    for seq in range(5):
        inbox.add("sensor-1", Frame(type=FrameType.HEARTBEAT, body={"seq": seq}))
    inbox.add("console", Frame(type=FrameType.ALERT, body={"text": "x"}))
    assert [(peer, frame.body) for peer, frame in inbox] == [
        ("sensor-1", {"seq": 3}),
        ("sensor-1", {"seq": 4}),
        ("console", {"text": "x"}),
    ]
    assert (len(inbox), inbox.received) == (3, 6)
    assert inbox.counts == {FrameType.HEARTBEAT: 5, FrameType.ALERT: 1}
    assert Inbox().window == INBOX_WINDOW == 256


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


async def test_the_alert_board_keeps_a_window_and_counts_positions():
    from mesh.appliances.traffic import AlertBoard

    board = AlertBoard(window=2)
    for n in range(5):
        board.post({"n": n})
    assert board.count == 5 and board.alerts == [{"n": 3}, {"n": 4}]
    assert board.at(0) == (3, {"n": 3})  # fell behind: resumes at the oldest kept
    assert board.at(4) == (4, {"n": 4})
