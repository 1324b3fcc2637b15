"""The Mesh runtime API over real loopback links."""

from __future__ import annotations

import pytest
import trio

from mesh.appliances import LinkState, MeshNotSettled
from mesh.errors import FailureCode
from mesh.events import CrlFetched, LinkHalted, LinkRecheck, LinkUp


async def test_healthy_sensor_links_up_and_heartbeats_flow(deployment, nursery):
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console"),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    [link] = mesh.links()
    assert (link.dialer, link.listener, link.state) == ("sensor-1", "console", LinkState.UP)
    assert link.code is None
    assert link.delivered == 1  # the sensor's first heartbeat; the next is 30 s away
    assert mesh.events.of(LinkUp, dialer="sensor-1")
    assert mesh.status("console").link_to("sensor-1").state is LinkState.UP
    fetched = {e.url for e in mesh.events.of(CrlFetched, appliance="console")}
    assert fetched == set(deployment.pki.crls())  # every CRL the sensor's path names


async def test_expired_sensor_is_halted_then_unvalidated_when_switched_off(deployment, nursery):
    deployment.build(("sensor-1", "sensor", "expired"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console"),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.HALTED
    assert link.code is FailureCode.EXPIRED
    assert link.refused_by == "console"
    assert link.message == FailureCode.EXPIRED.message
    assert link.delivered == 0
    [halted] = mesh.events.of(LinkHalted)
    assert halted.code is FailureCode.EXPIRED
    assert FailureCode.EXPIRED.message in mesh.status("console").errors[-1]

    mesh.set_validation("console", False)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.UP_UNVALIDATED
    assert link.would_fail == (FailureCode.EXPIRED,)
    assert link.delivered == 1  # nothing crossed while halted; then the first heartbeat


async def test_a_weak_certificate_is_presented_and_judged_by_the_validator(deployment, nursery):
    deployment.build(
        ("sensor-1", "sensor", "weak-key"),
        ("sensor-2", "sensor"),
        ("console", "management-console"),
    )
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("sensor-2", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console"),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    weak = mesh.link("sensor-1", "console")
    # OpenSSL's default security level would not even load an RSA-1024
    # certificate; the appliance presents it anyway and the console's validator
    # refuses it, with the design brief's code rather than a TLS error.
    assert (weak.state, weak.code) == (LinkState.HALTED, FailureCode.WEAK_CRYPTO)
    assert weak.delivered == 0
    assert mesh.link("sensor-2", "console").state is LinkState.UP
    await mesh.settle()
    assert mesh.status("sensor-1").running


async def test_mesh_as_an_async_context_manager_and_status_text(deployment):
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    specs = [
        deployment.spec("sensor-1", "sensor", connects_to=["console"]),
        deployment.spec("console", "management-console"),
    ]
    async with deployment.mesh(specs) as mesh:
        await mesh.settle()
        text = mesh.status("console").render()
        assert "console (management-console) running on 127.0.0.1:" in text
        assert "sensor-1 -> console: up" in text
        mesh.raise_alert("sensor-1", "x")
        await mesh.settle()
        assert [a["text"] for a in mesh.appliance("console").alerts.alerts] == ["x"]
    assert not mesh.status("console").running
    assert mesh.events.kinds().count("appliance-stopped") == 2


def _trio(deployment, *, sensor_fault: str = "ca-signed", **console):
    """sensor-1 -> console -> ha (the console dials the HA console), ha validation off."""
    deployment.build(
        ("sensor-1", "sensor", sensor_fault), ("console", "management-console"), ("ha", "ha-console")
    )
    return deployment.mesh(
        [
            deployment.spec("console", "management-console", connects_to=["ha"], **console),
            deployment.spec("ha", "ha-console", validation=False),
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
        ]
    )


async def test_refresh_judges_every_live_link_afresh_without_stopping_anything(
    deployment, nursery
):
    mesh = _trio(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    before = {(s.dialer, s.listener): s for s in mesh.links()}
    assert {s.state for s in before.values()} == {LinkState.UP, LinkState.UP_UNVALIDATED}
    ports = {name: mesh.appliance(name).port for name in mesh.names}
    mark = len(mesh.events)

    await mesh.refresh()

    after = {(s.dialer, s.listener): s for s in mesh.links()}
    for key, status in after.items():
        assert status.state is before[key].state
        assert status.since == before[key].since  # the same outcome: not a new episode
        assert status.attempts == before[key].attempts + 1
    assert {name: mesh.appliance(name).port for name in mesh.names} == ports
    kinds = [e.kind for e in mesh.events.since(mark)]
    rechecks = [e for e in mesh.events.since(mark) if isinstance(e, LinkRecheck)]
    assert sorted((e.dialer, e.listener, e.state) for e in rechecks) == [
        ("console", "ha", "up-unvalidated"),
        ("sensor-1", "console", "up"),
    ]
    # Unchanged outcomes are not reported again; nothing stopped, nothing broke.
    for quiet in ("appliance-stopped", "appliance-started", "link-down", "link-up",
                  "link-up-unvalidated", "validation-skipped", "link-halted"):
        assert quiet not in kinds, quiet
    # Traffic flows on the new connections.
    delivered = mesh.link("sensor-1", "console").delivered
    mesh.raise_alert("sensor-1", "after the re-check")
    await mesh.settle()
    assert mesh.link("sensor-1", "console").delivered > delivered


async def test_refresh_halts_a_live_link_whose_peer_was_revoked_meanwhile(deployment, nursery):
    mesh = _trio(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.revoke("sensor-1")
    await mesh.settle()
    # Validation happens at connection start: the live link stays up ...
    assert mesh.link("sensor-1", "console").state is LinkState.UP
    await mesh.refresh()
    # ... until the next connection, which refresh makes now.
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code, link.refused_by) == (LinkState.HALTED, FailureCode.REVOKED, "console")
    [halted] = mesh.events.of(LinkHalted)
    assert halted.code is FailureCode.REVOKED
    assert mesh.link("console", "ha").state is LinkState.UP_UNVALIDATED

    delivered = link.delivered
    mark = len(mesh.events)
    mesh.raise_alert("sensor-1", "must not cross")
    await mesh.refresh()
    assert mesh.link("sensor-1", "console").delivered == delivered
    # The halted link was not live (no re-check) and its refusal is not news.
    assert [e.kind for e in mesh.events.since(mark) if e.kind.startswith("link-")] == [
        "link-recheck"
    ]


async def test_a_mesh_that_does_not_settle_names_the_links_still_waiting(deployment, nursery):
    mesh = _trio(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.crl_fault("slow")  # the CRL server never answers: checks wait crl_timeout
    with pytest.raises(MeshNotSettled) as info:
        await mesh.refresh(timeout=0.2)
    assert isinstance(info.value, trio.TooSlowError)
    assert info.value.pending == ("console -> ha", "sensor-1 -> console")
    assert str(info.value) == (
        "the mesh did not settle within 0.2 s: no outcome yet for console -> ha, sensor-1 -> console"
    )


async def test_listeners_start_before_their_dialers_whatever_the_add_order(deployment, nursery):
    # The console is added first and dials the HA console, added last: it must
    # not report the HA console down before it had a chance to listen.
    mesh = _trio(deployment)
    assert mesh.names[0] == "console"
    await nursery.start(mesh.run)
    await mesh.settle()
    started = [e.appliance for e in mesh.events if e.kind == "appliance-started"]
    assert started.index("ha") < started.index("console") < started.index("sensor-1")
    assert "link-down" not in mesh.events.kinds()


async def test_a_sensor_that_nothing_dials_opens_no_listener(deployment, nursery):
    # Sensors only dial out: a listening socket each would be a descriptor and
    # a task per sensor for nothing. Consoles, and anything a peer dials, listen.
    mesh = await _sensor_and_console(deployment, nursery)
    sensor, console = mesh.appliance("sensor-1"), mesh.appliance("console")
    assert (sensor.listens, sensor.port, sensor.address) == (False, None, None)
    assert console.listens and console.port
    assert [link.state.value for link in mesh.links()] == ["up"]


async def test_a_sensor_dials_in_its_own_task_and_stops_like_any_appliance(deployment, nursery):
    # One dial and nothing to listen on: no nursery and no task of its own
    # for the dialer (memory at thousands of sensors); stop and start still work.
    mesh = await _sensor_and_console(deployment, nursery)
    tasks = [t.name for t in _all_tasks(nursery.parent_task)]
    assert not [name for name in tasks if name.endswith("Dialer.run")], tasks
    await mesh.stop("sensor-1")
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state.value == "down"
    await mesh.start("sensor-1")
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state.value == "up"


def _all_tasks(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    found = [task]
    for child_nursery in task.child_nurseries:
        for child in child_nursery.child_tasks:
            found += _all_tasks(child)
    return found


async def _sensor_and_console(deployment, nursery):
    """sensor-1 dialing a management console, running and settled."""
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    mesh = deployment.mesh([
        deployment.spec("sensor-1", "sensor", connects_to=["console"]),
        deployment.spec("console", "management-console"),
    ])
    await nursery.start(mesh.run)
    await mesh.settle()
    return mesh
