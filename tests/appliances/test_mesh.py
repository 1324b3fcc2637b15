"""The Mesh runtime API over real loopback links."""

from __future__ import annotations

from mesh.appliances import LinkState
from mesh.errors import FailureCode
from mesh.events import CrlFetched, LinkHalted, LinkUp


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
    assert link.delivered >= 1
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
    assert link.delivered >= 1


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
