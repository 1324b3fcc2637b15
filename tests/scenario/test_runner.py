"""The runner on the real engine: real sockets, a real CRL server, the emulated clock."""

from __future__ import annotations

import datetime as dt

from mesh.errors import FailureCode
from mesh.eventlog import EventLog
from mesh.events import LinkUp
from mesh.scenario.model import ApplianceDef, Expectation, PkiSpec, Scenario, Step
from mesh.scenario.report import render_plain
from mesh.scenario.runner import run_scenario

CM = "cm.contoso.test"
S1 = "sensor-1.contoso.test"
S2 = "sensor-2.contoso.test"


def small(*, steps=(), expectations=(), **sensor1) -> Scenario:
    return Scenario(
        name="small",
        pki=PkiSpec(root="Contoso Root CA", intermediate="Contoso Issuing CA"),
        appliances=[
            ApplianceDef(name=CM, role="management-console"),
            ApplianceDef(name=S1, role="sensor", connects_to=[CM], **sensor1),
            ApplianceDef(name=S2, role="sensor", connects_to=[CM]),
        ],
        steps=steps,
        expectations=expectations,
    )


async def test_a_revocation_mid_run_halts_the_link_at_its_next_connection(keys):
    scenario = small(
        steps=[Step(after=dt.timedelta(days=30), action="revoke", target=S1)],
        expectations=[
            Expectation(link=f"{S1} -> {CM}", state="up", after_step=0),
            Expectation(link=f"{S1} -> {CM}", state="halted", code="revoked"),
            Expectation(link=f"{S2} -> {CM}", state="up"),
        ],
    )
    events = EventLog()
    result = await run_scenario(scenario, keys=keys, events=events)
    assert result.ok, [v.to_json() for v in result.failures]
    row = result.link(f"{S1} -> {CM}")
    assert (row.state, row.code, row.refused_by) == ("halted", "revoked", CM)
    assert row.message == FailureCode.REVOKED.message
    assert result.ended - result.started >= dt.timedelta(days=30)
    # Emulated time also runs with the (few real) seconds the run takes.
    step_at = result.steps[0].at - scenario.start
    assert dt.timedelta(days=30) <= step_at < dt.timedelta(days=30, minutes=1)
    kinds = events.kinds()
    assert "certificate-revoked" in kinds and "link-halted" in kinds
    assert [v.when for v in result.expectations] == ["after start", "at the end", "at the end"]
    # The report keeps the table after start and after the step.
    assert [(r.link, r.outcome) for r in result.start_links] == [
        (f"{S1} -> {CM}", "up"), (f"{S2} -> {CM}", "up")]
    assert [(r.link, r.outcome) for r in result.steps[0].links] == [
        (f"{S1} -> {CM}", "halted/revoked"), (f"{S2} -> {CM}", "up")]


async def test_upload_verdicts_are_recorded_and_judged(keys):
    scenario = small(
        certificate="self-signed",
        steps=[
            Step(action="upload", target=S1, certificate="wrong-passphrase"),
            Step(action="upload", target=S1, certificate="key-mismatch"),
            Step(action="upload", target=S1),
        ],
        expectations=[
            Expectation(upload_step=1, verdict="refused", code="passphrase_mismatch"),
            Expectation(upload_step=2, verdict="refused", code="key_mismatch"),
            Expectation(upload_step=3, verdict="accepted"),
            Expectation(link=f"{S1} -> {CM}", state="halted", code="chain_untrusted", after_step=2),
            Expectation(link=f"{S1} -> {CM}", state="up"),
        ],
    )
    result = await run_scenario(scenario, keys=keys)
    assert result.ok, [v.to_json() for v in result.failures]
    assert [(r.outcome, r.code) for r in result.steps] == [
        ("refused", "passphrase_mismatch"), ("refused", "key_mismatch"), ("accepted", None),
    ]
    assert result.steps[0].message == FailureCode.PASSPHRASE_MISMATCH.message


async def test_a_failed_expectation_says_what_was_seen(keys):
    scenario = small(
        certificate="expired",
        expectations=[Expectation(link=f"{S1} -> {CM}", state="up")],
    )
    result = await run_scenario(scenario, keys=keys)
    assert not result.ok
    (verdict,) = result.failures
    assert verdict.actual == "halted/expired"
    assert verdict.message == FailureCode.EXPIRED.message
    assert "FAIL  expect[1]" in render_plain(result)


async def test_validation_off_shows_what_would_have_failed(keys):
    scenario = Scenario(
        name="off",
        appliances=[
            ApplianceDef(name=CM, role="management-console", validation=False),
            ApplianceDef(name=S1, role="sensor", connects_to=[CM], certificate="untrusted"),
        ],
    )
    result = await run_scenario(scenario, keys=keys)
    row = result.link(f"{S1} -> {CM}")
    assert (row.state, row.code) == ("up-unvalidated", "chain_untrusted")
    assert row.message.startswith(f"validation off on {CM}; would fail: Cannot validate chain")


async def test_progress_is_one_call_per_milestone_and_a_big_mesh_folds(keys):
    n = 45
    scenario = Scenario(
        name="fleet",
        appliances=[ApplianceDef(name=CM, role="management-console")]
        + [ApplianceDef(name=f"s{i}.contoso.test", role="sensor", connects_to=[CM])
           for i in range(n)],
        steps=[Step(after=dt.timedelta(days=1), action="revoke", target="s7.contoso.test"),
               Step(after=dt.timedelta(days=1), action="advance")],
    )
    calls = []
    result = await run_scenario(scenario, keys=keys,
                                progress=lambda kind, record, run: calls.append(kind))
    assert calls == ["building", "started", "step", "step"]
    assert result.counts() == {"up": n - 1, "halted": 1}
    text = render_plain(result)
    assert f"... and {n - 1} more links up" in text
    assert len(text.splitlines()) < 12


async def test_stop_start_and_a_crl_server_answering_garbage(keys):
    day = dt.timedelta(days=1)
    scenario = small(
        steps=[
            Step(action="stop", target=CM),
            Step(action="start", target=CM),
            Step(action="crl-garbage"),
            Step(after=8 * day, action="advance"),
            Step(action="crl-up"),
        ],
        expectations=[
            Expectation(link=f"{S1} -> {CM}", state="down", after_step=1),
            Expectation(link=f"{S1} -> {CM}", state="up", after_step=2),
            # Cached CRLs still serve until their next update (7 days)...
            Expectation(link=f"{S1} -> {CM}", state="up", after_step=3),
            # ...then nothing usable can be fetched.
            Expectation(link=f"{S1} -> {CM}", state="halted", code="crl_invalid", after_step=4),
            Expectation(link=f"{S1} -> {CM}", state="up"),
        ],
    )
    result = await run_scenario(scenario, keys=keys)
    assert result.ok, [v.to_json() for v in result.failures]


async def test_a_sensor_stopped_by_a_step_stays_stopped(keys):
    scenario = small(
        steps=[Step(action="stop", target=S1), Step(after=dt.timedelta(hours=1), action="advance")],
        expectations=[
            Expectation(link=f"{S1} -> {CM}", state="down", after_step=2),
            Expectation(link=f"{S2} -> {CM}", state="up", after_step=2),
        ],
    )
    result = await run_scenario(scenario, keys=keys)
    assert result.ok, [v.to_json() for v in result.failures]


async def test_a_crl_server_that_never_answers_halts_with_crl_unreachable(keys):
    # Real time: the CRL fetch times out after runner.CRL_TIMEOUT (1 s) per attempt.
    scenario = small(
        steps=[Step(action="crl-slow"), Step(after=dt.timedelta(days=8), action="advance")],
        expectations=[
            Expectation(link=f"{S1} -> {CM}", state="up", after_step=1),
            Expectation(link=f"{S1} -> {CM}", state="halted", code="crl_unreachable"),
        ],
    )
    result = await run_scenario(scenario, keys=keys)
    assert result.ok, [v.to_json() for v in result.failures]


async def test_a_topology_built_in_python_is_checked_like_a_file(keys):
    import pytest

    from mesh.scenario.load import ScenarioInvalid

    scenario = Scenario(
        name="typo",
        appliances=[ApplianceDef(name=S1, role="sensor", connects_to=["cm.contoso.tset"])],
    )
    with pytest.raises(ScenarioInvalid) as info:
        await run_scenario(scenario, keys=keys)
    assert info.value.lines() == [
        "typo: appliance[1].connects_to[1]: 'cm.contoso.tset' is not an appliance; "
        "use one of sensor-1.contoso.test"
    ]


async def test_the_event_stream_marks_steps_and_checks(keys):
    scenario = small(
        steps=[Step(action="revoke", target=S1)],
        expectations=[Expectation(link=f"{S1} -> {CM}", state="up")],
    )
    events = EventLog()
    result = await run_scenario(scenario, keys=keys, events=events)
    assert not result.ok
    kinds = events.kinds()
    assert kinds.index("scenario-step") < kinds.index("scenario-checked")
    step = [e for e in events if e.kind == "scenario-step"][0]
    assert (step.index, step.action, step.target) == (1, "revoke", S1)
    checked = [e for e in events if e.kind == "scenario-checked"][0]
    assert checked.met == 0 and checked.failed == (
        f"expect[1] {S1} -> {CM}: expected up, got halted/revoked",
    )
    assert '"kind":"scenario-step"' in step.to_json()


async def test_steps_judge_every_link_afresh_without_stopping_or_moving_appliances(keys):
    from mesh.scenario.runner import start_scenario

    scenario = small(
        steps=[Step(after=dt.timedelta(days=1), action="advance"), Step(action="revoke", target=S1)],
        expectations=[Expectation(link=f"{S1} -> {CM}", state="halted", code="revoked")],
    )
    events = EventLog()
    async with start_scenario(scenario, keys=keys, events=events) as run:
        ports = {name: run.mesh.appliance(name).port for name in run.mesh.names}
        mark = len(events)
        await run.play(1, scenario.steps[0])
        # Nothing changed: each live link was re-checked, and nothing else was said.
        assert sorted(e.kind for e in events.since(mark) if e.kind.startswith(("link-", "appliance-"))) == [
            "link-recheck", "link-recheck"
        ]
        await run.play(2, scenario.steps[1])
        assert {name: run.mesh.appliance(name).port for name in run.mesh.names} == ports
        result = run.result(started=scenario.start)
        steps = events.kinds()[events.kinds().index("scenario-step"):]
    assert result.ok, [v.to_json() for v in result.failures]
    assert "appliance-stopped" not in steps and "appliance-started" not in steps
    assert "link-down" not in steps
    assert steps.count("link-halted") == 1


async def test_a_mesh_that_does_not_settle_is_one_line_naming_the_scenario_and_step(keys):
    import pytest

    from mesh.errors import InputError
    from mesh.scenario.runner import ScenarioNotSettled

    # The CRL server never answers: each check waits runner.CRL_TIMEOUT (1 s),
    # longer than this run lets the mesh take to settle.
    scenario = small(steps=[Step(action="crl-slow")])
    with pytest.raises(ScenarioNotSettled) as info:
        await run_scenario(scenario, keys=keys, settle_timeout=0.2)
    assert isinstance(info.value, InputError)
    assert info.value.line() == (
        "scenario 'small' step 1 (+0s crl-slow): the mesh did not settle within 0.2 s: "
        f"no outcome yet for {S1} -> {CM}, {S2} -> {CM}; a peer or CRL server that never "
        "answers keeps a link waiting; check what that step changed"
    )


async def test_a_revoked_certificate_without_a_cdp_is_up_with_the_no_cdp_note_everywhere(keys):
    """Nothing refuses it (there is nowhere to look its revocation up), but nothing hides it."""
    scenario = small(
        certificate="no-cdp",
        steps=[Step(after=dt.timedelta(hours=1), action="revoke", target=S1)],
        expectations=[Expectation(link=f"{S1} -> {CM}", state="up")],
    )
    events = EventLog()
    result = await run_scenario(scenario, keys=keys, events=events)
    assert result.ok, [v.to_json() for v in result.failures]
    row = result.link(f"{S1} -> {CM}")
    assert (row.state, row.code, row.notes) == ("up", None, ("no_cdp",))
    assert row.message == f"note: no_cdp: {FailureCode.NO_CDP.message}"
    assert row.to_json()["notes"] == ["no_cdp"]
    assert f"note: no_cdp: {FailureCode.NO_CDP.message}" in render_plain(result)
    # The other sensor's certificate names its CDP: no note.
    assert result.link(f"{S2} -> {CM}").notes == ()
    [up, *_] = [e for e in events.of(LinkUp) if e.dialer == S1]
    assert up.notes == ("no_cdp",)
    assert "note: no_cdp" in up.log_line()


async def test_firewall_rules_are_refused_where_nothing_enforces_them(keys):
    import pytest
    from attrs import evolve

    from mesh.errors import InputError
    from mesh.scenario.model import Block

    scenario = evolve(small(), blocks=[Block(source=S2, destination="crl", port=80, origin="block[1]")])
    with pytest.raises(InputError) as info:
        await run_scenario(scenario, keys=keys)
    assert info.value.line() == ("small: block[1]: firewall rules need hosts of their own, "
                                 "which a run in one process does not give; run it with --hosts (as root)")


async def test_network_steps_are_refused_where_nothing_enforces_them(keys):
    import pytest
    from attrs import evolve

    from mesh.errors import InputError
    from mesh.scenario.model import Step
    from mesh.scenario.processes import run_in_processes

    scenario = evolve(small(), steps=[Step(action="advance"),
                                      Step(action="partition", between=[[S2], ["crl"]])])
    with pytest.raises(InputError) as info:
        await run_scenario(scenario, keys=keys)
    assert info.value.line() == ("small: step[2] partition: a network step needs hosts of their "
                                 "own, which a run in one process does not give; run it with "
                                 "--hosts (as root)")
    with pytest.raises(InputError) as info:
        await run_in_processes(scenario, keys=keys)
    assert info.value.line().startswith("small: step[2] partition: a network step needs hosts "
                                        "of their own, which --processes does not give")


async def test_a_step_judges_halted_links_once_after_its_action_not_at_the_jump(keys):
    # Halted dialers back off; a step's `after` ends their backoff. Woken by
    # the jump, they would retry while the CRL server is still down (halted
    # again, before the step's crl-up), then again in the settle.
    import trio.testing

    from mesh.scenario.runner import start_scenario

    steps = [Step(action="crl-down"), Step(after=dt.timedelta(days=8), action="advance"),
             Step(after=dt.timedelta(hours=1), action="crl-up")]
    async with start_scenario(small(), keys=keys) as run:
        for step in steps[:2]:
            await run.step(step)
        assert {(r.link, r.state) for r in run.links()} >= {(f"{S1} -> {CM}", "halted")}
        await trio.testing.wait_all_tasks_blocked()
        link = run.mesh.book.find(S1, CM)
        assert link is not None
        attempts = link.attempts
        record = await run.step(steps[2])
    assert {(r.link, r.state) for r in record.links} == {(f"{S1} -> {CM}", "up"),
                                                           (f"{S2} -> {CM}", "up")}
    assert link.attempts - attempts == 1


async def test_a_fleet_past_one_process_descriptors_is_one_line_naming_workers(keys):
    import pytest

    from mesh.errors import InputError
    from mesh.scenario.load import loads_scenario

    scenario = loads_scenario(
        '[[appliance]]\nname = "cm.contoso.test"\nrole = "management-console"\n'
        '[[appliance]]\nname = "sensor-{n}.contoso.test"\nrole = "sensor"\ncount = 9000\n'
        'connects_to = ["cm.contoso.test"]\n', source="fleet.toml")
    with pytest.raises(InputError) as info:
        await run_scenario(scenario, keys=keys)
    assert info.value.line() == (
        "fleet.toml: has 9,000 links: a run in one process would hold 18,001 sockets, "
        "more than the 18,000 one process may; spread it over processes with --workers N")
