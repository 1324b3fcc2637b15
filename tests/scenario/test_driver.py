"""The one scenario driver, on a backend that only records what it is asked."""

from __future__ import annotations

import datetime as dt

import pytest

from mesh.eventlog import EventLog
from mesh.scenario.actions import _CALLS, Action
from mesh.scenario.backend import Backend, UploadVerdict
from mesh.scenario.driver import Driver
from mesh.scenario.events import ExpectationsChecked, StepPlayed
from mesh.scenario.model import ApplianceDef, Expectation, Scenario, Step
from mesh.scenario.hosts import HostsBackend
from mesh.scenario.processes import ProcessesBackend
from mesh.scenario.result import LinkRow
from mesh.scenario.runner import MeshBackend

CM, S1 = "cm.contoso.test", "sensor-1.contoso.test"
START = dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc)


class Recorder:
    """A backend whose links are whatever the test says, and which logs every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.state = "up"
        self.clock = START

    def now(self) -> dt.datetime:
        return self.clock

    def links(self) -> list[LinkRow]:
        return [LinkRow(dialer=S1, listener=CM, state=self.state,
                        code="revoked" if self.state == "halted" else None)]

    async def advance(self, delta: dt.timedelta) -> None:
        self.calls.append(("advance", delta))
        self.clock += delta

    async def revoke(self, target: str) -> None:
        self.calls.append(("revoke", target))
        self.state = "halted"

    async def upload(self, target: str, certificate: str) -> UploadVerdict:
        self.calls.append(("upload", target, certificate))
        return UploadVerdict(accepted=False, code="expired", message="expired!")

    async def set_validation(self, target: str, enabled: bool) -> None:
        self.calls.append(("set_validation", target, enabled))

    async def crl_fault(self, fault: str) -> None:
        self.calls.append(("crl_fault", fault))

    async def stop(self, target: str) -> None:
        self.calls.append(("stop", target))

    async def start(self, target: str) -> None:
        self.calls.append(("start", target))

    async def block(self, source, destination, port, drop) -> None:
        self.calls.append(("block", source, destination, port, drop))

    async def unblock(self, source, destination, port) -> None:
        self.calls.append(("unblock", source, destination, port))

    async def partition(self, groups, drop) -> None:
        self.calls.append(("partition", groups, drop))

    async def heal(self) -> None:
        self.calls.append(("heal",))

    async def loss(self, target, percent) -> None:
        self.calls.append(("loss", target, percent))

    async def bandwidth(self, target, rate) -> None:
        self.calls.append(("bandwidth", target, rate))

    async def settle(self, where: str) -> None:
        self.calls.append(("settle", where))


def scenario(*steps: Step, expectations=()) -> Scenario:
    return Scenario(
        name="t",
        start=START,
        appliances=[ApplianceDef(name=CM, role="management-console"),
                    ApplianceDef(name=S1, role="sensor", connects_to=[CM])],
        steps=list(steps),
        expectations=list(expectations),
    )


async def test_a_step_jumps_the_clock_acts_settles_then_judges():
    backend = Recorder()
    events = EventLog()
    driver = Driver(
        scenario(
            Step(after=dt.timedelta(days=1), action="revoke", target=S1),
            expectations=[Expectation(link=f"{S1} -> {CM}", state="up", after_step=0),
                          Expectation(link=f"{S1} -> {CM}", state="halted", code="revoked")],
        ),
        backend,
        events,
    )
    await driver.start()
    record = await driver.play(1, driver.scenario.steps[0])
    assert backend.calls == [
        ("settle", "at start"),
        ("advance", dt.timedelta(days=1)),
        ("revoke", S1),
        ("settle", f"step 1 (+1d revoke {S1})"),
    ]
    assert record.outcome == "done" and record.at == START + dt.timedelta(days=1)
    result = driver.result(mode="test")
    assert [v.met for v in result.expectations] == [True, True]
    assert [type(e) for e in events.events] == [ExpectationsChecked, StepPlayed, ExpectationsChecked]
    # The table after start and after each step is kept for the report.
    assert result.start_links == (LinkRow(dialer=S1, listener=CM, state="up"),)
    assert result.steps[0].links == (
        LinkRow(dialer=S1, listener=CM, state="halted", code="revoked"),
    )


async def test_every_table_is_kept_even_when_no_expectation_is_due():
    backend = Recorder()
    driver = Driver(scenario(Step(action="revoke", target=S1)), backend, EventLog())
    await driver.start()
    await driver.play(1, driver.scenario.steps[0])
    result = driver.result(mode="test")
    assert [row.state for row in result.start_links] == ["up"]
    assert [[row.state for row in step.links] for step in result.steps] == [["halted"]]


async def test_an_upload_step_records_the_verdict():
    backend = Recorder()
    driver = Driver(
        scenario(
            Step(action="upload", target=S1, certificate="expired"),
            expectations=[Expectation(upload_step=1, verdict="refused", code="expired")],
        ),
        backend,
        EventLog(),
    )
    record = await driver.play(1, driver.scenario.steps[0])
    assert (record.outcome, record.code, record.message) == ("refused", "expired", "expired!")
    assert driver.result(mode="test").expectations[0].met


@pytest.mark.parametrize("action", list(Action))
async def test_every_action_is_one_backend_call(action):
    backend = Recorder()
    step = Step(action=action, target=S1 if action.targeted or "target" in action.keys else None,
                enabled=False if action is Action.SET_VALIDATION else None,
                source=S1, destination="crl", port=80, drop=True, between=[[S1], [CM]],
                percent=30, rate="1mbit")
    await action.apply(backend, step)
    expected = {
        Action.ADVANCE: [],
        Action.REVOKE: [("revoke", S1)],
        Action.UPLOAD: [("upload", S1, "ca-signed")],
        Action.SET_VALIDATION: [("set_validation", S1, False)],
        Action.CRL_DOWN: [("crl_fault", "down")],
        Action.CRL_UP: [("crl_fault", "ok")],
        Action.CRL_SLOW: [("crl_fault", "slow")],
        Action.CRL_GARBAGE: [("crl_fault", "garbage")],
        Action.STOP: [("stop", S1)],
        Action.START: [("start", S1)],
        Action.BLOCK: [("block", S1, "crl", 80, True)],
        Action.UNBLOCK: [("unblock", S1, "crl", 80)],
        Action.PARTITION: [("partition", ((S1,), (CM,)), True)],
        Action.HEAL: [("heal",)],
        Action.LOSS: [("loss", S1, 30)],
        Action.BANDWIDTH: [("bandwidth", S1, "1mbit")],
    }
    assert backend.calls == expected[action]


@pytest.mark.parametrize("backend", [MeshBackend, ProcessesBackend, HostsBackend, Recorder])
def test_every_backend_answers_every_call(backend):
    wanted = {name for name in dir(Backend) if not name.startswith("_")}
    assert wanted <= set(dir(backend)), wanted - set(dir(backend))
    for method, _ in _CALLS.values():
        assert callable(getattr(backend, method))


@pytest.mark.parametrize("backend", [MeshBackend, ProcessesBackend])
async def test_a_backend_without_hosts_fails_closed_on_a_network_step(backend):
    from mesh.errors import InputError

    with pytest.raises(InputError) as info:
        await backend.partition(object.__new__(backend), ((S1,), (CM,)), False)
    assert info.value.line() == ("step partition: needs hosts of their own, which this run does "
                                 "not give; run it with --hosts (as root)")
