"""``mesh check`` and ``mesh run`` through ``mesh.cli.main``, in-process."""

from __future__ import annotations

import json

import pytest

from mesh.cli import main

GOOD = """
[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "up"
"""


def test_check_accepts_a_good_file(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path}: good")
    assert "2 appliances, 1 link, 0 steps, 1 expectation" in out


def test_check_prints_every_problem_of_every_file_and_exits_2(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    bad = tmp_path / "revoked.toml"
    bad.write_text(GOOD.replace('role = "sensor"', 'role = "sensr"').replace('"up"', '"upp"'))
    assert main(["check", str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"mesh: {bad}: appliance[2].role: 'sensr' is not a role; use one of sensor, "
        "management-console, ha-console, forwarding-target",
        f"mesh: {bad}: expect[1].state: 'upp' is not a link state; use one of up, "
        "up-unvalidated, halted, down, connecting",
    ]
    assert f"ok: {good}" in captured.out
    assert "Traceback" not in captured.err


def test_check_missing_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"mesh: {tmp_path / 'nope.toml'}: no such file; check the path\n"


FAILING = GOOD.replace('state = "up"', 'state = "halted"\ncode = "revoked"')


def test_run_writes_json_junit_and_events_and_exits_1_on_a_failed_expectation(tmp_path, capsys):
    import json
    import xml.etree.ElementTree as ET

    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    bad = tmp_path / "failing.toml"
    bad.write_text(FAILING)
    report, junit, events = tmp_path / "r.json", tmp_path / "j.xml", tmp_path / "e.jsonl"
    status = main(["run", str(good), str(bad), "--json", str(report), "--junit", str(junit),
                   "--events", str(events)])
    assert status == 1
    captured = capsys.readouterr()
    assert "PASS good: 1/1 expectations hold" in captured.out
    assert "FAIL failing: 0/1 expectations hold" in captured.out
    assert "1/2 scenarios passed" in captured.out
    assert captured.err.splitlines()[:2] == [
        "[1/2 good] building the PKI and the CRL server",
        "[1/2 good] started 2 appliances: 1 up",
    ]
    reports = json.loads(report.read_text())
    assert [r["ok"] for r in reports] == [True, False]
    assert reports[1]["expectations"][0] == {
        "link": "sensor-1.contoso.test -> cm.contoso.test", "expected": "halted/revoked",
        "actual": "up", "met": False, "mode": "on", "judged": True,
    }
    suites = ET.parse(junit).getroot()
    assert suites.get("tests") == "2" and suites.get("failures") == "1"
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert {"appliance-started", "link-up"} <= {line["kind"] for line in lines}
    assert not any("PRIVATE KEY" in line for line in events.read_text().splitlines())


def test_run_exits_0_when_everything_holds(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["run", "--quiet", str(good)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines()[-1].startswith("PASS good: 1/1")


def test_run_refuses_every_file_when_one_is_unusable(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + "\n[[step]]\naction = \"explode\"\n")
    assert main(["run", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran
    assert captured.err.startswith(f"mesh: {bad}: step[1].action: 'explode' is not an action")


NETWORK = GOOD + """
[[block]]
from = "sensor-1.contoso.test"
to = "crl"
port = 80
"""


def test_a_scenario_with_network_policy_alone_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "net.toml"
    path.write_text(NETWORK)
    assert main(["run", "--quiet", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"mesh: {path}: block[1]: firewall rules need hosts of their own, which a run in one "
        "process does not give; run it with --hosts (as root)\n"
    )


def test_among_several_a_scenario_with_network_policy_is_skipped_saying_so(tmp_path, capsys):
    good, net = tmp_path / "good.toml", tmp_path / "net.toml"
    good.write_text(GOOD)
    net.write_text(NETWORK)
    assert main(["run", "--quiet", str(good), str(net)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"mesh: skipped {net}: it has network policy, which only --hosts "
                            "enforces; run it with --hosts (as root)\n")
    assert captured.out.splitlines()[-1].startswith("PASS good: 1/1")
    assert main(["run", "--quiet", str(net), str(net)]) == 2  # nothing left to play


def test_mesh_run_as_a_process(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    library = Path(__file__).resolve().parents[2] / "scenarios"
    done = subprocess.run(
        [sys.executable, "-m", "mesh", "run", str(library / "troubleshoot-revoked.toml")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "PASS troubleshoot-revoked: 4/4 expectations hold" in done.stdout
    assert "Traceback" not in done.stderr


def test_an_input_error_inside_the_run_is_one_line(tmp_path, capsys, monkeypatch):
    from mesh.errors import InputError
    from mesh.scenario import world

    def refuse(*args, **kwargs):
        raise InputError("appliance 'cm.contoso.test' address 127.0.0.1:8443",
                         "cannot listen (Address already in use)", "pick a free port")

    monkeypatch.setattr(world, "build_pki", refuse)
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["run", "-q", str(good)]) == 2
    assert capsys.readouterr().err == (
        "mesh: appliance 'cm.contoso.test' address 127.0.0.1:8443: "
        "cannot listen (Address already in use); pick a free port\n"
    )


def test_live_and_processes_do_not_mix(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["run", "--live", "--processes", str(good)]) == 2
    assert capsys.readouterr().err == (
        "mesh: --live: cannot be combined with --processes; "
        "drop one of them (the live view follows the in-process run)\n"
    )


def test_a_mesh_that_does_not_settle_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    # 2, not 1: the expectations could not be judged at all, which CI must not
    # read as "judged and failed".
    from mesh.scenario import runner

    monkeypatch.setattr(runner, "SETTLE_TIMEOUT", 0.2)
    stuck = tmp_path / "stuck.toml"
    stuck.write_text(GOOD + '\n[[step]]\naction = "crl-slow"\n')
    assert main(["run", "-q", str(stuck)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mesh: scenario 'stuck' step 1 (+0s crl-slow): the mesh did not settle within 0.2 s: "
        "no outcome yet for sensor-1.contoso.test -> cm.contoso.test; a peer or CRL server "
        "that never answers keeps a link waiting; check what that step changed\n"
    )


def _interrupt_on(call_number, monkeypatch):
    """run_scenario that finishes ``call_number - 1`` scenarios, then sees a Ctrl-C."""
    from mesh.scenario import runner

    real = runner.run_scenario
    calls = []

    async def interrupted(scenario, **kwargs):
        calls.append(scenario.name)
        if len(calls) == call_number:
            raise KeyboardInterrupt
        return await real(scenario, **kwargs)

    monkeypatch.setattr(runner, "run_scenario", interrupted)


def test_ctrl_c_exits_130_and_reports_how_far_the_run_got(tmp_path, capsys, monkeypatch):
    _interrupt_on(2, monkeypatch)
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(GOOD)
    second.write_text(GOOD)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    assert main(["run", "-q", str(first), str(second), "--json", str(report),
                 "--junit", str(junit)]) == 130
    assert capsys.readouterr().err.endswith("mesh: interrupted\n")
    doc = json.loads(report.read_text())
    assert [(d["scenario"], d["ok"], d["interrupted"]) for d in doc] == [
        ("first", True, False), ("second", False, True)]
    assert 'errors="1"' in junit.read_text() and "Interrupted" in junit.read_text()


def test_ctrl_c_before_anything_finished_leaves_no_report(tmp_path, capsys, monkeypatch):
    _interrupt_on(1, monkeypatch)
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    assert main(["run", "-q", str(path), "--json", str(report), "--junit", str(junit)]) == 130
    assert not report.exists() and not junit.exists()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left either


def test_a_report_path_that_cannot_be_written_is_one_line_and_creates_nothing(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    missing = tmp_path / "no-such-folder" / "r.json"
    assert main(["run", "-q", str(path), "--json", str(missing)]) == 2
    assert capsys.readouterr().err == f"mesh: {missing}: cannot be written; choose another path\n"


def test_run_reuses_the_key_cache_and_fresh_keys_leaves_it_alone(tmp_path, capsys, monkeypatch):
    from mesh.pki import key_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("MESH_KEY_CACHE", str(cache))
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert main(["run", "--quiet", str(good)]) == 0
    stored = (cache / "rsa-2048.der").read_bytes()
    assert stored

    def never(sizes, **kwargs):
        raise AssertionError(f"generated {len(sizes)} keys although the cache holds them")

    monkeypatch.setattr(key_cache, "generate_keys", never)
    assert main(["run", "--quiet", str(good)]) == 0  # a second run generates nothing
    monkeypatch.undo()
    monkeypatch.setenv("MESH_KEY_CACHE", str(cache))
    assert main(["run", "--quiet", "--fresh-keys", str(good)]) == 0
    assert (cache / "rsa-2048.der").read_bytes() == stored
    capsys.readouterr()


def test_run_writes_an_html_report_of_a_library_scenario(tmp_path, capsys):
    import re
    from pathlib import Path

    from mesh.errors import FailureCode

    library = Path(__file__).resolve().parents[2] / "scenarios"
    page = tmp_path / "report.html"
    assert main(["run", "-q", str(library / "troubleshoot-revoked.toml"), "--html", str(page)]) == 0
    text = page.read_text()
    assert 'data-scenario="troubleshoot-revoked"' in text
    assert re.findall(r'data-testid="moment" data-step="(\d+)"', text) == ["0", "1"]
    assert text.count("<svg") == 2
    assert FailureCode.REVOKED.message in text and "halted: revoked" in text
    assert re.findall(r'data-verdict="(\w+)"', text) == ["pass"] * 4
    # The certificates it started with, and the recipe that made each one.
    rows = re.findall(r'<tr data-appliance="([^"]+)"><td>[^<]*</td><td class="recipe">(\w[\w-]*)',
                      text)
    assert rows == [("cm.contoso.test", "ca-signed"), ("sensor-1.contoso.test", "revoked"),
                    ("sensor-2.contoso.test", "ca-signed")]
    assert "CN=Contoso Issuing CA" in text and "RSA 2048 bits" in text
    assert 'data-kind="link-halted"' in text and 'data-kind="certificate-uploaded"' in text
    assert list(tmp_path.iterdir()) == [page]


def test_ctrl_c_keeps_the_html_report_of_the_finished_scenarios(tmp_path, capsys, monkeypatch):
    _interrupt_on(2, monkeypatch)
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(GOOD)
    second.write_text(GOOD)
    page = tmp_path / "r.html"
    assert main(["run", "-q", str(first), str(second), "--html", str(page)]) == 130
    text = page.read_text()
    assert 'data-scenario="first"' in text and 'data-scenario="second"' not in text
    assert "interrupted during scenario second" in text


def test_an_html_report_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    assert main(["run", "-q", str(path), "--html", str(tmp_path / "nowhere" / "r.html")]) == 2
    assert "r.html: cannot be written" in capsys.readouterr().err


def test_validation_both_puts_both_runs_in_the_html_report(tmp_path, capsys):
    import re

    path = tmp_path / "good.toml"
    path.write_text(GOOD.replace('state = "up"', 'state = "up"\nmode = "on"'))
    page = tmp_path / "r.html"
    assert main(["run", "-q", str(path), "--validation", "both", "--html", str(page)]) == 0
    text = page.read_text()
    assert re.findall(r'data-testid="run" data-validation="(on|off)"', text) == ["on", "off"]
    assert re.findall(r'data-verdict="([\w-]+)"', text) == ["pass", "not-judged"]
    assert text.count('data-testid="event-count"') == 2


@pytest.mark.slow
def test_processes_html_report_has_the_nodes_events_and_certificates(tmp_path, capsys):
    import re
    from pathlib import Path

    library = Path(__file__).resolve().parents[2] / "scenarios"
    page, events = tmp_path / "report.html", tmp_path / "events.jsonl"
    assert main(["run", "-q", "--processes", str(library / "troubleshoot-revoked.toml"),
                 "--html", str(page), "--events", str(events)]) == 0
    text = page.read_text()
    assert 'data-kind="link-halted"' in text and 'data-kind="appliance-started"' in text
    assert re.findall(r'<td class="recipe">([\w-]+)', text) == ["ca-signed", "revoked", "ca-signed"]
    # The --events file has each node line once, as before.
    lines = events.read_text().splitlines()
    assert len(lines) == len(set(lines)) > 0
