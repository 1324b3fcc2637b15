"""Reports from a hand-made RunResult: plain table, JSON contract, JUnit XML."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from mesh.errors import FailureCode
from mesh.scenario.model import ApplianceDef, Expectation, Scenario, Step
from mesh.scenario.report import json_report, junit_xml, print_result, render_plain, summary_line, write_json
from mesh.scenario.result import REPORT_FORMAT, LinkRow, RunResult, StepRecord, judge

T0 = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(days=90)


def make_result(n_sensors: int = 2, *, wrong: bool = True) -> RunResult:
    appliances = [ApplianceDef(name="cm.test", role="management-console")] + [
        ApplianceDef(name=f"s{i}.test", role="sensor", connects_to=["cm.test"])
        for i in range(1, n_sensors + 1)
    ]
    expectations = [
        Expectation(link="s1.test -> cm.test", state="halted", code="revoked", after_step=1),
        Expectation(link="s2.test -> cm.test", state="halted" if wrong else "up"),
        Expectation(upload_step=2, verdict="refused", code="passphrase_mismatch"),
    ]
    scenario = Scenario(
        name="revoked-sensor", description="A revoked sensor <halts> & stays down.",
        appliances=appliances,
        steps=[Step(after=dt.timedelta(days=90), action="revoke", target="s1.test"),
               Step(action="upload", target="s2.test", certificate="wrong-passphrase")],
        expectations=expectations, source="revoked.toml",
    )
    rows = [LinkRow(dialer="s1.test", listener="cm.test", state="halted", code="revoked",
                    message=FailureCode.REVOKED.message, refused_by="cm.test")]
    rows += [LinkRow(dialer=f"s{i}.test", listener="cm.test", state="up")
             for i in range(2, n_sensors + 1)]
    healthy = [LinkRow(dialer=f"s{i}.test", listener="cm.test", state="up")
               for i in range(1, n_sensors + 1)]
    steps = [
        StepRecord(index=1, step=scenario.steps[0], at=T1, links=rows),
        StepRecord(index=2, step=scenario.steps[1], at=T1, outcome="refused",
                   code="passphrase_mismatch", message=FailureCode.PASSPHRASE_MISMATCH.message,
                   links=rows),
    ]
    uploads = {2: steps[1]}
    verdicts = [judge(i, e, links=rows, uploads=uploads, checked_after=e.due or 2, at=T1)
                for i, e in enumerate(expectations, 1)]
    return RunResult(scenario=scenario, links=rows, expectations=verdicts, steps=steps,
                     start_links=healthy, started=T0, ended=T1, seconds=0.25)


def test_judge_compares_state_and_code():
    result = make_result()
    assert [v.met for v in result.expectations] == [True, False, True]
    assert result.expectations[1].actual == "up"
    assert result.expectations[0].actual == "halted/revoked"
    assert result.expectations[2].actual == "refused/passphrase_mismatch"
    assert not result.ok
    assert make_result(wrong=False).ok


def test_plain_table_reads_at_a_glance():
    text = render_plain(make_result())
    lines = text.splitlines()
    assert lines[0] == "scenario revoked-sensor: A revoked sensor <halts> & stays down."
    assert lines[1] == "  emulated 2027-01-15 09:00Z -> 2027-04-15 09:00Z, 2 steps, 0.2 s"
    assert lines[2] == "  step 1  2027-04-15 09:00Z  +90d revoke s1.test"
    assert lines[3] == ("  step 2  2027-04-15 09:00Z  +0s upload s2.test wrong-passphrase"
                        " -> refused (passphrase_mismatch)")
    assert lines[5].split() == ["LINK", "STATE", "CODE", "MESSAGE"]
    assert lines[6].startswith("s1.test -> cm.test  halted  revoked  This certificate has been revoked")
    assert lines[7].split() == ["s2.test", "->", "cm.test", "up", "-"]
    assert any(line.startswith("FAIL  expect[2] s2.test -> cm.test") and line.endswith("got up")
               for line in lines)
    assert lines[-1] == "FAIL revoked-sensor: 2/3 expectations hold (2 links: 1 halted, 1 up)"


def test_a_big_mesh_folds_healthy_links():
    result = make_result(200, wrong=False)
    text = render_plain(result)
    assert "... and 198 more links up" in text
    assert len(text.splitlines()) < 20
    assert summary_line(result).startswith("PASS revoked-sensor: 3/3 expectations hold (200 links")


def test_print_result_is_plain_when_not_a_tty():
    out = io.StringIO()
    print_result(make_result(), out)
    assert out.getvalue() == render_plain(make_result())


def test_json_report_has_the_documented_shape(tmp_path):
    path = tmp_path / "r.json"
    write_json([make_result()], path)
    report = json.loads(path.read_text())
    assert set(report) == {
        "format", "scenario", "ok", "interrupted", "validation", "start", "links", "expectations",
        "steps",
    }
    assert report["format"] == REPORT_FORMAT == 5
    assert report["scenario"] == "revoked-sensor" and report["ok"] is False
    assert report["validation"] == "on"
    assert report["links"][0] == {
        "from": "s1.test", "to": "cm.test", "state": "halted", "code": "revoked",
        "message": FailureCode.REVOKED.message, "notes": [], "reason": None,
    }
    assert report["expectations"][1] == {
        "link": "s2.test -> cm.test", "expected": "halted", "actual": "up", "met": False,
        "mode": "on", "judged": True,
    }
    assert set(report["links"][1]) == {"from", "to", "state", "code", "message", "notes",
                                      "reason"}
    assert report["steps"][1]["outcome"] == "refused"
    assert report["steps"][0]["after"] == "90d"
    # The link table after the start settle and after every step, rows as in links.
    assert report["start"] == {
        "at": "2027-01-15T09:00:00+00:00",
        "links": [
            {"from": "s1.test", "to": "cm.test", "state": "up", "code": None, "message": "",
             "notes": [], "reason": None},
            {"from": "s2.test", "to": "cm.test", "state": "up", "code": None, "message": "",
             "notes": [], "reason": None},
        ],
    }
    assert [step["links"] for step in report["steps"]] == [report["links"], report["links"]]
    write_json([make_result(), make_result(wrong=False)], path)
    assert [r["ok"] for r in json.loads(path.read_text())] == [False, True]


def test_an_interrupted_scenario_has_the_same_keys_with_nothing_in_them():
    report = json_report([make_result()], interrupted="stopped")
    assert isinstance(report, list)
    assert set(report[1]) == set(report[0])
    assert report[1] == {
        "format": REPORT_FORMAT, "scenario": "stopped", "ok": False, "interrupted": True, "validation": "on",
        "start": {"at": None, "links": []}, "links": [], "expectations": [], "steps": [],
    }


def test_junit_has_one_case_per_expectation_and_parses():
    text = junit_xml([make_result(), make_result(wrong=False)])
    root = ET.fromstring(text.encode())
    assert root.tag == "testsuites" and root.get("tests") == "6" and root.get("failures") == "1"
    suite = root.find("testsuite")
    assert suite.get("name") == "revoked-sensor" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert len(cases) == 3
    failure = cases[1].find("failure")
    assert failure.get("message") == "expected halted, actual up"
    assert "expected: halted\nactual: up" in failure.text
    assert cases[0].find("failure") is None


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed")
def test_junit_is_well_formed_for_xmllint(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml([make_result()]))
    subprocess.run(["xmllint", "--noout", str(path)], check=True)
