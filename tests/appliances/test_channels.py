"""The source document's channels: console <-> HA (both validate), forwarding, identity."""

from __future__ import annotations

from mesh.appliances import LinkState
from mesh.errors import FailureCode
from mesh.events import LinkHalted
from mesh.net.framing import FrameType
from mesh.pki.issue import Issued


def _issued(material) -> Issued:
    return Issued(cert=material.cert, key=material.issued.key, chain=material.chain)


def _topology(deployment, *, ha=None, target=None, console=None):
    deployment.build(
        ("sensor-1", "sensor"),
        ("console", "management-console"),
        ("ha", "ha-console"),
        ("siem", "forwarding-target"),
    )
    return deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec(
                "console",
                "management-console",
                connects_to=["ha"],
                forwards_to=["siem"],
                **(console or {}),
            ),
            # The HA console names the console too: still one link, dialed by the console.
            deployment.spec("ha", "ha-console", connects_to=["console"], **(ha or {})),
            deployment.spec("siem", "forwarding-target", **(target or {})),
        ]
    )


async def test_alerts_reach_the_console_the_ha_console_and_the_forwarding_target(
    deployment, nursery
):
    mesh = _topology(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    states = {(s.dialer, s.listener): s.state for s in mesh.links()}
    assert states == {
        ("sensor-1", "console"): LinkState.UP,
        ("console", "ha"): LinkState.UP,
        ("console", "siem"): LinkState.UP,
    }
    mesh.raise_alert("sensor-1", "unauthorised PLC write")
    await mesh.settle()
    console = mesh.appliance("console")
    assert [a["text"] for a in console.alerts.alerts] == ["unauthorised PLC write"]
    ha = mesh.appliance("ha").inbox
    [(_, snapshot), (sender, replicated)] = ha
    assert snapshot.type is replicated.type is FrameType.REPLICATE
    assert snapshot.body == {"snapshot": True, "alerts": 0}  # sent as the link came up
    assert (sender, replicated.body["text"], replicated.body["via"]) == (
        "console", "unauthorised PLC write", "sensor-1"
    )
    assert ha.counts == {FrameType.REPLICATE: 2}
    [(sender, forwarded)] = [
        (p, f) for p, f in mesh.appliance("siem").inbox if f.type is FrameType.FORWARD
    ]
    assert sender == "console" and forwarded.body["origin"] == "sensor-1"
    assert mesh.link("console", "siem").delivered == 1


async def test_an_alert_raised_while_the_target_is_down_is_forwarded_when_it_returns(
    deployment, nursery
):
    mesh = _topology(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.stop("siem")
    mesh.raise_alert("sensor-1", "port scan")
    await mesh.settle()
    await mesh.start("siem")
    await mesh.settle()
    assert [f.body["text"] for _, f in mesh.appliance("siem").inbox] == ["port scan"]


async def test_ha_console_validates_the_console_too(deployment, nursery):
    mesh = _topology(deployment, console={"identity": None})
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("console", "ha")
    assert link.state is LinkState.HALTED
    assert {name for name, _ in link.refusals} == {"ha"}
    # The sensor refuses the self-signed console as well: every peer validates.
    assert mesh.link("sensor-1", "console").refused_by == "sensor-1"


async def test_identity_a_sensor_certificate_presented_by_the_ha_console_is_refused(
    deployment, nursery
):
    mesh = _topology(deployment)
    pki = deployment.pki
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("console", "ha").state is LinkState.UP
    verdict = await mesh.upload("ha", _issued(pki.appliances["sensor-1"]))
    assert verdict.accepted  # a valid certificate: upload does not check whose it is
    await mesh.stop("ha")
    await mesh.start("ha")
    await mesh.settle()
    link = mesh.link("console", "ha")
    assert (link.state, link.code, link.refused_by) == (
        LinkState.HALTED,
        FailureCode.NAME_MISMATCH,
        "console",
    )
    assert "ha.contoso.test" in link.detail and "sensor-1.contoso.test" in link.detail
    assert mesh.events.of(LinkHalted, code=FailureCode.NAME_MISMATCH, refused_by="console")


async def test_forwarding_target_is_server_auth_only(deployment, nursery):
    # The target does not judge clients: a self-signed console may forward to it,
    # but the console still validates the target.
    mesh = _topology(deployment, target={"identity": None})
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("console", "siem")
    assert (link.state, link.code, link.refused_by) == (
        LinkState.HALTED,
        FailureCode.CHAIN_UNTRUSTED,
        "console",
    )
    assert link.refusals == (("console", FailureCode.CHAIN_UNTRUSTED),)
