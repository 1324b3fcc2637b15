"""``mesh diff``: the links two runs' JSON reports disagree on, one line each."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from mesh.cli import main
from mesh.errors import FailureCode, InputError
from mesh.scenario.diff import compare, read_report
from mesh.scenario.result import REPORT_FORMAT

CM, S1, S2, S3 = ("cm.contoso.test", "sensor-1.contoso.test", "sensor-2.contoso.test",
                  "sensor-3.contoso.test")
REVOKED = FailureCode.REVOKED.message
EXPIRED = FailureCode.EXPIRED.message


def row(dialer, state="up", code=None, message="", listener=CM):
    return {"from": dialer, "to": listener, "state": state, "code": code, "message": message,
            "notes": []}


def report(name="demo", links=None, *, start=None, steps=None):
    """A format-3 report of one scenario, as ``mesh run --json`` writes it."""
    links = [row(S1), row(S2)] if links is None else links
    steps = [links] if steps is None else steps
    return {
        "format": 3, "scenario": name, "ok": True, "interrupted": False,
        "start": {"at": "2027-01-15T09:00:00+00:00", "links": links if start is None else start},
        "links": links, "expectations": [],
        "steps": [{"index": i, "after": "1d", "action": "advance", "target": None,
                   "at": "2027-01-16T09:00:00+00:00", "outcome": "done", "code": None,
                   "message": "", "links": table} for i, table in enumerate(steps, 1)],
    }


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Write reports as before.json / after.json in the working folder; return the names."""
    monkeypatch.chdir(tmp_path)

    def write(before, after):
        for name, document in (("before.json", before), ("after.json", after)):
            (tmp_path / name).write_text(json.dumps(document))
        return "before.json", "after.json"

    return write


def run_diff(capsys, *args):
    status = main(["diff", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


# -- the comparison --


def test_identical_reports_change_nothing(files, capsys):
    assert run_diff(capsys, *files(report(), report())) == (0, ["no link changed"], [])


def test_a_changed_state_code_and_message_is_one_line(files, capsys):
    after = report(links=[row(S1, "halted", "revoked", REVOKED), row(S2)])
    assert run_diff(capsys, *files(report(), after)) == (1, [
        f'{S1} -> {CM}: up -> halted/revoked "{REVOKED}"',
    ], [])


def test_a_changed_message_alone_is_a_change(files, capsys):
    before = report(links=[row(S1, "halted", "expired", "old words"), row(S2)])
    after = report(links=[row(S1, "halted", "expired", EXPIRED), row(S2)])
    assert run_diff(capsys, *files(before, after)) == (1, [
        f'{S1} -> {CM}: halted/expired "old words" -> halted/expired "{EXPIRED}"',
    ], [])


def test_notes_alone_are_not_compared(files, capsys):
    after = report()
    after["links"][0]["notes"] = ["no_cdp"]
    assert run_diff(capsys, *files(report(), after)) == (0, ["no link changed"], [])


def test_links_in_only_one_report_are_listed(files, capsys):
    before = report(links=[row(S1), row(S2)])
    after = report(links=[row(S1), row(S3, "halted", "expired", EXPIRED)])
    assert run_diff(capsys, *files(before, after)) == (1, [
        f"{S2} -> {CM}: only in before.json: up",
        f'{S3} -> {CM}: only in after.json: halted/expired "{EXPIRED}"',
    ], [])


def test_several_scenarios_are_matched_by_name_and_named_on_each_line(files, capsys):
    before = [report("a"), report("b"), report("gone")]
    after = [report("b", [row(S1), row(S2, "down", None, "connection refused")]), report("a"),
             report("new", [row(S1)])]
    assert run_diff(capsys, *files(before, after)) == (1, [
        f'[b] {S2} -> {CM}: up -> down "connection refused"',
        "[gone] scenario only in before.json (2 links)",
        "[new] scenario only in after.json (1 link)",
    ], [])


def test_a_scenario_run_twice_is_matched_run_by_run(files, capsys):
    # mesh run a.toml a.toml: the second run of a name meets the second run.
    before = [report("a"), report("a")]
    after = [report("a"), report("a", [row(S1), row(S2, "halted", "expired", EXPIRED)])]
    assert run_diff(capsys, *files(before, after)) == (1, [
        f'[a #2] {S2} -> {CM}: up -> halted/expired "{EXPIRED}"',
    ], [])


def test_one_scenario_each_is_compared_whatever_the_names(files, capsys):
    # The same scenario renamed, or a healthy and a broken variant of it.
    after = report("demo-revoked", [row(S1, "halted", "revoked", REVOKED), row(S2)])
    status, out, _ = run_diff(capsys, *files(report("demo-healthy"), after))
    assert (status, out) == (1, [f'{S1} -> {CM}: up -> halted/revoked "{REVOKED}"'])


def test_a_report_of_one_scenario_against_a_list_matches_by_name(files, capsys):
    before = report("a")
    after = [report("a"), report("b")]
    assert run_diff(capsys, *files(before, after)) == (1, [
        "[b] scenario only in after.json (2 links)",
    ], [])


def test_an_interrupted_scenario_is_named_not_compared(files, capsys):
    interrupted = {"format": 3, "scenario": "b", "ok": False, "interrupted": True,
                   "start": {"at": None, "links": []}, "links": [], "expectations": [],
                   "steps": []}
    assert run_diff(capsys, *files([report("a"), report("b")],
                                   [report("a"), interrupted])) == (1, [
        "[b] interrupted in after.json: its links were not compared",
    ], [])


def test_json_lists_the_differences(files, capsys):
    before = [report("a"), report("gone")]
    after = [report("a", [row(S1, "halted", "revoked", REVOKED), row(S3)])]
    status, out, _ = run_diff(capsys, *files(before, after), "--json")
    assert status == 1
    assert json.loads("\n".join(out)) == [
        {"scenario": "a", "change": "changed", "link": f"{S1} -> {CM}", "from": S1, "to": CM,
         "before": {"state": "up", "code": None, "message": ""},
         "after": {"state": "halted", "code": "revoked", "message": REVOKED}},
        {"scenario": "a", "change": "only-before", "link": f"{S2} -> {CM}", "from": S2, "to": CM,
         "before": {"state": "up", "code": None, "message": ""}, "after": None},
        {"scenario": "a", "change": "only-after", "link": f"{S3} -> {CM}", "from": S3, "to": CM,
         "before": None, "after": {"state": "up", "code": None, "message": ""}},
        {"scenario": "gone", "change": "only-before", "link": None, "from": None, "to": None,
         "before": {"interrupted": False, "links": 2}, "after": None},
    ]


def test_json_of_nothing_changed_is_an_empty_list(files, capsys):
    status, out, _ = run_diff(capsys, *files(report(), report()), "--json")
    assert (status, json.loads("\n".join(out))) == (0, [])


# -- steps --


def test_step_n_compares_the_tables_after_that_step(files, capsys):
    halted = [row(S1, "halted", "revoked", REVOKED), row(S2)]
    before = report(steps=[[row(S1), row(S2)], [row(S1), row(S2)]])
    after = report(start=halted, steps=[halted, [row(S1), row(S2)]])
    names = files(before, after)
    line = f'{S1} -> {CM}: up -> halted/revoked "{REVOKED}"'
    assert run_diff(capsys, *names) == (0, ["no link changed"], [])
    assert run_diff(capsys, *names, "--step", "0") == (1, [line], [])
    assert run_diff(capsys, *names, "--step", "1") == (1, [line], [])
    assert run_diff(capsys, *names, "--step", "2") == (0, ["no link changed"], [])


def test_a_step_a_scenario_did_not_play_is_one_line(files, capsys):
    assert run_diff(capsys, *files(report(), report()), "--step", "3") == (2, [], [
        "mesh: before.json: scenario 'demo' has no step 3 (it played 1); "
        "pick a step from 0 (after start) to 1",
    ])


def test_a_negative_step_is_one_line(files, capsys):
    assert run_diff(capsys, *files(report(), report()), "--step", "-1") == (2, [], [
        "mesh: --step: -1 is not a step; use 0 (after start) or a step number",
    ])


def test_step_needs_format_3_on_both_sides(files, capsys):
    old = report()
    old["format"] = 2
    del old["start"]
    for step in old["steps"]:
        del step["links"]
    assert run_diff(capsys, *files(report(), old), "--step", "1") == (2, [], [
        "mesh: after.json: report format 2 keeps only the final link table; "
        "--step needs format 3 or later on both sides: compare without --step, or run again",
    ])


# -- older and newer formats --


def format_2(document):
    old = copy.deepcopy(document)
    old["format"] = 2
    del old["start"]
    for step in old["steps"]:
        del step["links"]
    return old


def format_1(document):
    old = format_2(document)
    del old["format"]
    for item in old["links"]:
        del item["notes"]
    return old


@pytest.mark.parametrize("older", [format_1, format_2])
def test_older_formats_are_read(files, capsys, older):
    changed = report(links=[row(S1, "halted", "revoked", REVOKED), row(S2)])
    assert run_diff(capsys, *files(older(report()), report())) == (0, ["no link changed"], [])
    assert run_diff(capsys, *files(older(report()), older(changed))) == (1, [
        f'{S1} -> {CM}: up -> halted/revoked "{REVOKED}"',
    ], [])


def test_a_newer_format_is_refused_naming_both_versions(files, capsys):
    newer = report()
    newer["format"] = REPORT_FORMAT + 1
    assert run_diff(capsys, *files(newer, report())) == (2, [], [
        f"mesh: before.json: report format {REPORT_FORMAT + 1} is newer than this mesh reads "
        f"({REPORT_FORMAT}); upgrade mesh",
    ])


def test_a_newer_format_inside_a_list_is_refused_too(files, capsys):
    newer = report("b")
    newer["format"] = REPORT_FORMAT + 1
    assert run_diff(capsys, *files(report(), [report("a"), newer]))[2] == [
        f"mesh: after.json: report format {REPORT_FORMAT + 1} is newer than this mesh reads "
        f"({REPORT_FORMAT}); upgrade mesh",
    ]


# -- unusable input --


@pytest.mark.parametrize("text, problem", [
    (None, "no such file"),
    ("", "is not JSON (Expecting value at line 1 column 1)"),
    ("{not json", "is not JSON (Expecting property name enclosed in double quotes at line 1 "
                  "column 2)"),
    (b"\xff", "is not JSON (not UTF-8 text)"),
    ("42", "is not a mesh report (the top level is not an object or a list of objects)"),
    ("[]", "is not a mesh report (an empty list)"),
    ('{"hello": 1}', "is not a mesh report (no 'scenario' name)"),
    ('{"scenario": "x"}', "is not a mesh report (no 'links' list)"),
    ('[{"scenario": "x", "links": []}, {"scenario": "y", "links": [{"from": "a", "to": "b"}]}]',
     "is not a mesh report ([1].links[0]: no 'state')"),
    ('{"scenario": "x", "links": [{"from": "a", "to": "b", "state": 3}]}',
     "is not a mesh report (links[0].state is 3, not text)"),
    ('{"format": "3", "scenario": "x", "links": []}',
     "is not a mesh report (format is '3', not a version number)"),
])
def test_an_unusable_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys, text, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.json").write_text(json.dumps(report()))
    if isinstance(text, bytes):
        (tmp_path / "bad.json").write_bytes(text)
    elif text is not None:
        (tmp_path / "bad.json").write_text(text)
    for args in (["bad.json", "good.json"], ["good.json", "bad.json"]):
        assert run_diff(capsys, *args) == (2, [], [
            f"mesh: bad.json: {problem}; pass a report written by mesh run --json",
        ])


def test_a_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.json").write_text(json.dumps(report()))
    (tmp_path / "reports").mkdir()
    status, out, err = run_diff(capsys, "reports", "good.json")
    assert (status, out) == (2, [])
    assert err == ["mesh: reports: is a folder; pass a report written by mesh run --json"]


def test_the_library_reads_and_compares(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(report()))
    (tmp_path / "b.json").write_text(json.dumps(report(links=[row(S1)])))
    diff = compare(read_report(tmp_path / "a.json"), read_report(tmp_path / "b.json"))
    assert diff.lines() == [f"{S2} -> {CM}: only in {tmp_path / 'a.json'}: up"]
    assert diff.changed
    with pytest.raises(InputError, match="no such file"):
        read_report(tmp_path / "missing.json")


# -- end to end --

HEALTHY = """
[scenario]
name = "diff-demo"
description = "Two sensors and a console; a day passes."
start = 2027-01-15T09:00:00Z

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "sensor-2.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[step]]
after = "1d"
action = "advance"
"""

#: The same mesh, sensor-1 starting with a certificate its CA has revoked.
REVOKED_SENSOR = HEALTHY.replace(
    'name = "sensor-1.contoso.test"\nrole = "sensor"\n',
    'name = "sensor-1.contoso.test"\nrole = "sensor"\ncertificate = "revoked"\n',
)


def test_two_runs_of_a_scenario_diffed_end_to_end(tmp_path, capsys):
    assert REVOKED_SENSOR != HEALTHY
    healthy, revoked = tmp_path / "healthy.toml", tmp_path / "revoked.toml"
    healthy.write_text(HEALTHY)
    revoked.write_text(REVOKED_SENSOR)
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    assert main(["run", "-q", str(healthy), "--json", str(before)]) == 0
    assert main(["run", "-q", str(revoked), "--json", str(after)]) == 0
    capsys.readouterr()
    line = f'{S1} -> {CM}: up -> halted/revoked "{REVOKED}"'
    for step in ([], ["--step", "0"], ["--step", "1"]):
        done = subprocess.run([sys.executable, "-m", "mesh", "diff", str(before), str(after), *step],
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (1, line + "\n", ""), step
    assert main(["diff", str(before), str(before)]) == 0
    assert capsys.readouterr().out == "no link changed\n"
