"""``mesh run --validation on|off|both``: one scenario with validation as written and off."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET

import attrs
import pytest

from mesh.cli import main
from mesh.errors import FailureCode
from mesh.scenario.both import BothResult
from mesh.scenario.model import ApplianceDef, Expectation, PkiSpec, Scenario, Step
from mesh.scenario.report import (
    json_report,
    junit_xml,
    print_result,
    render_both_plain,
    render_plain,
    summary_line,
    write_json,
)
from mesh.scenario.result import REPORT_FORMAT, LinkRow, RunResult, StepRecord, judge, not_judged
from mesh.scenario.runner import run_scenario

CM = "cm.contoso.test"
S1 = "sensor-1.contoso.test"
S2 = "sensor-2.contoso.test"
LINK = f"{S1} -> {CM}"


def revoked_sensor(*expectations: Expectation) -> Scenario:
    """A revoked sensor; step 1 switches the console's validation on, which it
    already is as written, and which the off run must skip to stay off."""
    return Scenario(
        name="revoked-sensor",
        pki=PkiSpec(root="Contoso Root CA", intermediate="Contoso Issuing CA"),
        appliances=[
            ApplianceDef(name=CM, role="management-console"),
            ApplianceDef(name=S1, role="sensor", connects_to=[CM], certificate="revoked"),
            ApplianceDef(name=S2, role="sensor", connects_to=[CM]),
        ],
        steps=[Step(after=dt.timedelta(hours=1), action="set-validation", target=CM, enabled=True)],
        expectations=expectations or (
            Expectation(link=LINK, state="halted", code="revoked"),
            Expectation(link=LINK, state="up-unvalidated", code="revoked", after_step=0, mode="off"),
            Expectation(link=LINK, state="up-unvalidated", code="revoked", mode="off"),
        ),
    )


async def test_the_run_as_written_judges_default_expectations_and_not_the_off_ones(keys):
    result = await run_scenario(revoked_sensor(), keys=keys)
    assert result.validation == "on"
    assert result.link(LINK).outcome == "halted/revoked"
    assert result.steps[0].outcome == "done"
    assert [(v.index, v.judged, v.met) for v in result.expectations] == [
        (1, True, True), (2, False, False), (3, False, False)]
    skipped = result.expectations[1]
    assert skipped.actual == "not judged"
    assert skipped.message == "judged only in the validation off run (mesh run --validation off or both)"
    assert skipped.when == "after start"
    assert result.ok and result.failures == [] and len(result.not_judged) == 2
    assert summary_line(result) == (
        "PASS revoked-sensor: 1/1 expectations hold, 2 not judged (2 links: 1 halted, 1 up)")


async def test_the_off_run_has_validation_off_everywhere_and_skips_set_validation(keys):
    result = await run_scenario(revoked_sensor(), keys=keys, validation="off")
    assert result.validation == "off"
    assert [a.validation for a in result.scenario.appliances] == [False, False, False]
    assert result.steps[0].outcome == "skipped (validation off run)"
    # Had the step run, the console would validate again and halt the link.
    row = result.link(LINK)
    assert (row.state, row.code, row.would_fail) == ("up-unvalidated", "revoked", ("revoked",))
    assert row.message.endswith(f"would fail: {FailureCode.REVOKED.message}")
    assert result.link(f"{S2} -> {CM}").outcome == "up-unvalidated"
    assert [(v.index, v.judged, v.met) for v in result.expectations] == [
        (1, False, False), (2, True, True), (3, True, True)]
    assert result.expectations[0].message == (
        "judged only in the validation on run (mesh run --validation on or both)")
    assert summary_line(result) == (
        "PASS revoked-sensor [validation off]: 2/2 expectations hold, 1 not judged "
        "(2 links: 2 up-unvalidated)")


# -- the reports, from hand-made results ------------------------------------

T0 = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(hours=1)
WOULD = FailureCode.REVOKED.message


def hand_made(validation: str) -> RunResult:
    """What the two runs of :func:`revoked_sensor` find, without running anything."""
    scenario = revoked_sensor()
    if validation == "on":
        rows = [LinkRow(dialer=S1, listener=CM, state="halted", code="revoked", message=WOULD,
                        refused_by=CM),
                LinkRow(dialer=S2, listener=CM, state="up")]
        record = StepRecord(index=1, step=scenario.steps[0], at=T1)
    else:
        scenario = scenario.with_validation_off()
        rows = [LinkRow(dialer=S1, listener=CM, state="up-unvalidated", code="revoked",
                        message=f"validation off on {CM}, {S1}; would fail: {WOULD}",
                        would_fail=("revoked",)),
                LinkRow(dialer=S2, listener=CM, state="up-unvalidated",
                        message=f"validation off on {CM}, {S2}")]
        record = StepRecord(index=1, step=scenario.steps[0], at=T1,
                            outcome="skipped (validation off run)")
    verdicts = [
        judge(i, e, links=rows, uploads={}, checked_after=1 if e.due is None else e.due, at=T1)
        if e.mode == validation else
        not_judged(i, e, checked_after=1 if e.due is None else e.due, at=T1)
        for i, e in enumerate(scenario.expectations, 1)
    ]
    return RunResult(scenario=scenario, links=rows, expectations=verdicts, steps=[record],
                     started=T0, ended=T1, seconds=0.25, validation=validation)


def test_a_plain_table_marks_expectations_of_the_other_run_not_judged():
    lines = render_plain(hand_made("on")).splitlines()
    assert lines[-4:] == [
        "PASS  expect[1] sensor-1.contoso.test -> cm.contoso.test  halted/revoked          at the end",
        "SKIP  expect[2] sensor-1.contoso.test -> cm.contoso.test  up-unvalidated/revoked  after start"
        "  not judged: judged only in the validation off run (mesh run --validation off or both)",
        "SKIP  expect[3] sensor-1.contoso.test -> cm.contoso.test  up-unvalidated/revoked  at the end "
        "  not judged: judged only in the validation off run (mesh run --validation off or both)",
        "PASS revoked-sensor: 1/1 expectations hold, 2 not judged (2 links: 1 halted, 1 up)",
    ]
    off = render_plain(hand_made("off")).splitlines()
    assert off[0] == "scenario revoked-sensor [validation off]"
    assert off[2] == ("  step 1  2027-01-15 10:00Z  +1h set-validation cm.contoso.test on"
                      " -> skipped (validation off run)")


def test_the_both_table_puts_each_link_with_validation_on_beside_off():
    both = BothResult(on=hand_made("on"), off=hand_made("off"))
    assert both.ok and [v.mode for v in both.verdicts] == ["on", "off", "off"]
    assert render_both_plain(both) == f"""\
scenario revoked-sensor
  validation on (as written) and off (on every appliance from the start), side by side
  emulated 2027-01-15 09:00Z -> 2027-01-15 10:00Z, 1 steps, 0.2 s + 0.2 s
  step 1  2027-01-15 10:00Z  +1h set-validation cm.contoso.test on; off run: skipped (validation off run)

LINK                                      VALIDATION ON   VALIDATION OFF          OFF: WOULD FAIL
sensor-1.contoso.test -> cm.contoso.test  halted/revoked  up-unvalidated/revoked  revoked: {WOULD}
sensor-2.contoso.test -> cm.contoso.test  up              up-unvalidated          -

PASS  on   expect[1] sensor-1.contoso.test -> cm.contoso.test  halted/revoked          at the end
PASS  off  expect[2] sensor-1.contoso.test -> cm.contoso.test  up-unvalidated/revoked  after start
PASS  off  expect[3] sensor-1.contoso.test -> cm.contoso.test  up-unvalidated/revoked  at the end
PASS revoked-sensor: 3/3 expectations hold (validation on 1/1, off 2/2; 2 links: on 1 halted, 1 up; off 2 up-unvalidated)
"""
    out = io.StringIO()
    print_result(both, out)
    assert out.getvalue() == render_both_plain(both)
    assert summary_line(both) == render_both_plain(both).splitlines()[-1]


def test_a_failed_expectation_of_the_off_run_fails_the_pair():
    off = hand_made("off")
    wrong = attrs.evolve(off.expectations[2], met=False, actual="halted/revoked")
    off = attrs.evolve(off, expectations=[*off.expectations[:2], wrong])
    both = BothResult(on=hand_made("on"), off=off)
    assert not both.ok and [v.index for v in both.failures] == [3]
    lines = render_both_plain(both).splitlines()
    assert lines[-2] == ("FAIL  off  expect[3] sensor-1.contoso.test -> cm.contoso.test  "
                         "up-unvalidated/revoked  at the end   got halted/revoked")
    assert lines[-1].startswith("FAIL revoked-sensor: 2/3 expectations hold (validation on 1/1, off 1/2;")


def test_the_runs_of_a_pair_are_checked():
    with pytest.raises(ValueError, match="off: the validation on run, not the validation off one"):
        BothResult(on=hand_made("on"), off=hand_made("on"))


def test_the_json_report_of_a_plain_run_says_which_expectations_were_judged():
    report = json_report([hand_made("on")])
    assert report["validation"] == "on"
    assert report["expectations"] == [
        {"link": LINK, "expected": "halted/revoked", "actual": "halted/revoked", "met": True,
         "mode": "on", "judged": True},
        {"link": LINK, "expected": "up-unvalidated/revoked", "actual": None, "met": None,
         "mode": "off", "judged": False},
        {"link": LINK, "expected": "up-unvalidated/revoked", "actual": None, "met": None,
         "mode": "off", "judged": False},
    ]


def test_the_json_report_of_a_both_run_holds_both_runs(tmp_path):
    both = BothResult(on=hand_made("on"), off=hand_made("off"))
    path = tmp_path / "r.json"
    write_json([both], path)
    report = json.loads(path.read_text())
    assert set(report) == {"format", "scenario", "validation", "ok", "interrupted", "runs"}
    assert (report["format"], report["scenario"], report["validation"], report["ok"],
            report["interrupted"]) == (REPORT_FORMAT, "revoked-sensor", "both", True, False)
    on, off = report["runs"]["on"], report["runs"]["off"]
    assert on == hand_made("on").to_json() and off == hand_made("off").to_json()
    assert (on["validation"], off["validation"]) == ("on", "off")
    assert off["links"][0]["state"] == "up-unvalidated" and off["links"][0]["code"] == "revoked"
    assert off["steps"][0]["outcome"] == "skipped (validation off run)"
    assert [e["judged"] for e in off["expectations"]] == [False, True, True]
    write_json([both, hand_made("on")], path)
    assert [r["validation"] for r in json.loads(path.read_text())] == ["both", "on"]


def test_junit_skips_what_a_run_does_not_judge_and_names_the_mode():
    suite = ET.fromstring(junit_xml([hand_made("on")]).encode()).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "2")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        f"expect[1] {LINK} is halted/revoked at the end",
        f"expect[2] {LINK} is up-unvalidated/revoked after start [validation off]",
        f"expect[3] {LINK} is up-unvalidated/revoked at the end [validation off]",
    ]
    assert cases[0].find("skipped") is None
    assert cases[1].find("skipped").get("message") == (
        "not judged: judged only in the validation off run (mesh run --validation off or both)")
    assert cases[1].find("failure") is None


def test_junit_of_a_both_run_has_each_expectation_once_named_with_its_run():
    off = hand_made("off")
    wrong = attrs.evolve(off.expectations[2], met=False, actual="halted/revoked")
    both = BothResult(on=hand_made("on"), off=attrs.evolve(off, expectations=[*off.expectations[:2], wrong]))
    root = ET.fromstring(junit_xml([both]).encode())
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "0")
    suite = root.find("testsuite")
    assert suite.get("name") == "revoked-sensor" and suite.get("time") == "0.500"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        f"expect[1] {LINK} is halted/revoked at the end [validation on]",
        f"expect[2] {LINK} is up-unvalidated/revoked after start [validation off]",
        f"expect[3] {LINK} is up-unvalidated/revoked at the end [validation off]",
    ]
    assert cases[2].find("failure").get("message") == "expected up-unvalidated/revoked, actual halted/revoked"
    assert suite.find("system-out").text == render_both_plain(both)


# -- mesh run --validation ----------------------------------------------------

FILE = f"""
[scenario]
name = "revoked-sensor"

[[appliance]]
name = "{CM}"
role = "management-console"

[[appliance]]
name = "{S1}"
role = "sensor"
certificate = "revoked"
connects_to = ["{CM}"]

[[step]]
after = "1h"
action = "set-validation"
target = "{CM}"
enabled = true

[[expect]]
link = "{LINK}"
state = "halted"
code = "revoked"

[[expect]]
link = "{LINK}"
state = "up-unvalidated"
code = "revoked"
mode = "off"
"""


def scenario_file(tmp_path, text=FILE):
    path = tmp_path / "revoked-sensor.toml"
    path.write_text(text)
    return str(path)


def test_run_both_prints_one_table_and_writes_both_runs(tmp_path, capsys):
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    status = main(["run", "--validation", "both", scenario_file(tmp_path),
                   "--json", str(report), "--junit", str(junit)])
    captured = capsys.readouterr()
    assert status == 0, captured
    out = captured.out.splitlines()
    assert out[1] == "  validation on (as written) and off (on every appliance from the start), side by side"
    assert out[3].endswith("+1h set-validation cm.contoso.test on; off run: skipped (validation off run)")
    assert out[5].split() == ["LINK", "VALIDATION", "ON", "VALIDATION", "OFF", "OFF:", "WOULD", "FAIL"]
    assert out[6] == (f"{LINK}  halted/revoked  up-unvalidated/revoked  "
                      f"revoked: {FailureCode.REVOKED.message}")
    assert out[8].startswith("PASS  on   expect[1]") and out[9].startswith("PASS  off  expect[2]")
    assert out[-1] == ("PASS revoked-sensor: 2/2 expectations hold (validation on 1/1, off 1/1; "
                       "1 link: on 1 halted; off 1 up-unvalidated)")
    err = captured.err.splitlines()
    assert err[0] == "[revoked-sensor, validation on] building the PKI and the CRL server"
    assert "[revoked-sensor, validation off] step 1/1 +1h set-validation cm.contoso.test on " \
           "-> skipped (validation off run): 1 up-unvalidated" in err
    document = json.loads(report.read_text())
    assert (document["validation"], document["ok"], list(document["runs"])) == ("both", True, ["on", "off"])
    assert document["runs"]["off"]["links"][0]["state"] == "up-unvalidated"
    cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")
    assert [c.get("name").rsplit(" [", 1)[1] for c in cases] == ["validation on]", "validation off]"]


def test_run_off_plays_only_the_off_run(tmp_path, capsys):
    assert main(["run", "-q", "--validation", "off", scenario_file(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "scenario revoked-sensor [validation off]"
    assert out[-3].startswith("SKIP  expect[1]")
    assert out[-1] == ("PASS revoked-sensor [validation off]: 1/1 expectations hold, 1 not judged "
                       "(1 link: 1 up-unvalidated)")


def test_an_expectation_a_plain_run_does_not_judge_never_changes_its_exit_status(tmp_path, capsys):
    # Judged, this one would fail: the off run's link is up-unvalidated.
    wrong = FILE.replace('state = "up-unvalidated"\ncode = "revoked"\nmode = "off"',
                         'state = "halted"\ncode = "revoked"\nmode = "off"')
    path = scenario_file(tmp_path, wrong)
    for argv in (["run", "-q", path], ["run", "-q", "--validation", "on", path]):
        assert main(argv) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1] == "PASS revoked-sensor: 1/1 expectations hold, 1 not judged (1 link: 1 halted)"
    assert main(["run", "-q", "--validation", "both", path]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        "FAIL revoked-sensor: 1/2 expectations hold (validation on 1/1, off 0/1;")


def test_run_with_a_validation_that_is_not_a_run_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--validation", "maybe", scenario_file(tmp_path)])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mesh run: error: argument --validation: invalid choice: 'maybe' (choose from 'on', 'off', 'both')")


def test_run_both_with_processes(tmp_path, capsys):
    assert main(["run", "-q", "--processes", "--validation", "both", scenario_file(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[6] == (f"{LINK}  halted/revoked  up-unvalidated/revoked  "
                      f"revoked: {FailureCode.REVOKED.message}")
    assert out[-1].startswith("PASS revoked-sensor: 2/2 expectations hold (validation on 1/1, off 1/1;")


def test_on_a_terminal_the_both_table_is_drawn_with_rich(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "200")
    out = Terminal()
    print_result(BothResult(on=hand_made("on"), off=hand_made("off")), out)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # without the colours
    assert "validation on" in text and "off: would fail" in text
    assert "halted/revoked" in text and "up-unvalidated/revoked" in text
    assert f"revoked: {WOULD}" in text
    assert "PASS  off  expect[2]" in text and "PASS revoked-sensor: 3/3 expectations hold" in text


def test_ctrl_c_in_the_off_run_of_a_second_scenario_keeps_the_first_pair(tmp_path, capsys, monkeypatch):
    from mesh.scenario import runner

    real, calls = runner.run_scenario, []

    async def interrupted(scenario, **kwargs):
        calls.append(kwargs["validation"])
        if len(calls) == 4:  # the second scenario's off run
            raise KeyboardInterrupt
        return await real(scenario, **kwargs)

    monkeypatch.setattr(runner, "run_scenario", interrupted)
    first = scenario_file(tmp_path)
    second = tmp_path / "second.toml"
    second.write_text(FILE.replace('name = "revoked-sensor"', 'name = "second"'))
    report = tmp_path / "r.json"
    assert main(["run", "-q", "--validation", "both", first, str(second), "--json", str(report)]) == 130
    assert calls == ["on", "off", "on", "off"]
    done, stopped = json.loads(report.read_text())
    assert (done["validation"], done["ok"], list(done["runs"])) == ("both", True, ["on", "off"])
    assert (stopped["scenario"], stopped["validation"], stopped["interrupted"]) == ("second", "both", True)


def test_mesh_diff_reads_a_both_report_as_its_two_runs(tmp_path, capsys):
    from mesh.scenario.diff import read_report

    both = tmp_path / "both.json"
    write_json([BothResult(on=hand_made("on"), off=hand_made("off"))], both)
    assert [s.name for s in read_report(both).scenarios] == [
        "revoked-sensor", "revoked-sensor, validation off"]
    # A run as written and a --validation off run, each reported alone, match the pair's runs.
    apart = tmp_path / "apart.json"
    write_json([hand_made("on"), hand_made("off")], apart)
    assert main(["diff", str(apart), str(both)]) == 0
    assert capsys.readouterr().out == "no link changed\n"
    off = hand_made("off")
    halted = attrs.evolve(off.links[0], state="halted", message=WOULD)
    changed = tmp_path / "changed.json"
    write_json([BothResult(on=hand_made("on"), off=attrs.evolve(off, links=[halted, off.links[1]]))],
               changed)
    assert main(["diff", str(both), str(changed)]) == 1
    assert capsys.readouterr().out.splitlines()[0].startswith(
        f"[revoked-sensor, validation off] {LINK}: up-unvalidated/revoked")


def test_mesh_diff_names_where_a_both_report_broke(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": 3, "scenario": "x", "validation": "both", "ok": True,
                                  "runs": {"on": []}}))
    assert main(["diff", str(broken), str(broken)]) == 2
    assert capsys.readouterr().err == (
        f"mesh: {broken}: is not a mesh report (runs.on is [], not an object); "
        "pass a report written by mesh run --json\n")
