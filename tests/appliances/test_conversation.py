"""One connection judged end to end: each design-brief code from a real link (validation
on halts, off warns), and a live link judged again when the spec asks."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mesh.appliances import LinkState
from mesh.errors import FailureCode
from mesh.events import LinkHalted, LinkUpUnvalidated, MessageDelivered, ValidationSkipped

#: Recipes a connection sees (upload-only ones are tested with uploads).
LINK_FAULTS = {
    "expired": FailureCode.EXPIRED,
    "not-yet-valid": FailureCode.NOT_YET_VALID,
    "revoked": FailureCode.REVOKED,
    "untrusted": FailureCode.CHAIN_UNTRUSTED,
    "self-signed": FailureCode.CHAIN_UNTRUSTED,
    "missing-intermediate": FailureCode.CHAIN_UNTRUSTED,
    "crl-unreachable": FailureCode.CRL_UNREACHABLE,
    "weak-key": FailureCode.WEAK_CRYPTO,
    "sha1": FailureCode.WEAK_CRYPTO,
    "expired-intermediate": FailureCode.EXPIRED,
    "revoked-intermediate": FailureCode.REVOKED,
}

#: Recipes whose refusal names the intermediate (the sensor's own certificate is fine).
INTERMEDIATE_AT_FAULT = {"expired-intermediate", "revoked-intermediate"}


def _mesh(deployment, fault, *, validation=True):
    deployment.build(("sensor-1", "sensor", fault), ("console", "management-console"))
    return deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console", validation=validation),
        ]
    )


@pytest.mark.parametrize("fault", sorted(LINK_FAULTS))
async def test_validation_on_halts_with_the_exact_message(deployment, nursery, fault):
    code = LINK_FAULTS[fault]
    mesh = _mesh(deployment, fault)
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code, link.refused_by) == (LinkState.HALTED, code, "console"), link
    assert link.message == code.message
    assert link.delivered == 0
    assert not mesh.events.of(MessageDelivered)
    [halted] = mesh.events.of(LinkHalted, refused_by="console")
    assert halted.code is code
    assert json.loads(halted.to_json())["message"] == code.message
    material = deployment.pki.appliances["sensor-1"]
    concerned = material.chain[0] if fault in INTERMEDIATE_AT_FAULT else material.cert
    assert (halted.serial, halted.subject) == (
        concerned.serial_number, concerned.subject.rfc4514_string()
    )
    status = mesh.status("console")
    assert status.link_to("sensor-1").code is code
    assert status.errors == (halted.log_line(),)
    assert code.message in status.render()


@pytest.mark.parametrize("fault", sorted(LINK_FAULTS))
async def test_validation_off_comes_up_with_the_warning(deployment, nursery, fault):
    code = LINK_FAULTS[fault]
    mesh = _mesh(deployment, fault, validation=False)
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.UP_UNVALIDATED, link
    assert link.would_fail == (code,)
    assert link.delivered == 1  # the sensor's first heartbeat; the next is 30 s away
    [skipped] = mesh.events.of(ValidationSkipped, appliance="console")
    assert (skipped.would_fail, skipped.messages) == ((code.code,), (code.message,))
    assert skipped.severity.value == "warning"
    assert mesh.events.of(LinkUpUnvalidated, unvalidated_by=("console",))
    assert not mesh.events.of(LinkHalted)


async def test_periodic_revalidation_halts_a_live_link_when_asked_for(deployment, nursery):
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console", revalidate_every=3600.0),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP
    await mesh.advance(dt.timedelta(days=400))
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.EXPIRED)
    assert mesh.events.of(LinkHalted, refused_by="console", code=FailureCode.EXPIRED)
