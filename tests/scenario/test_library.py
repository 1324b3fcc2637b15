"""The scenario library in ``scenarios/``: every file is sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.scenario.load import load_scenario, loads_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(LIBRARY.glob("*.toml"))

#: Scenarios with network policy (``[[block]]`` tables, network steps): only
#: ``mesh run --hosts`` plays them (tests/hosts/test_policy_scenarios.py, as
#: root); here they are refused in one line.
HOSTS_ONLY = [p for p in FILES if load_scenario(p).needs_hosts]
IN_PROCESS = [p for p in FILES if p not in HOSTS_ONLY]


def test_the_library_is_there():
    names = {p.stem for p in FILES}
    assert "showcase" in names
    rows = ["passphrase-mismatch", "chain-untrusted", "expired", "not-yet-valid", "revoked",
            "crl-unreachable", "validation-failed"]
    for row in rows:
        assert f"troubleshoot-{row}" in names
        assert f"troubleshoot-{row}-validation-off" in names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_library_scenario_loads(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.expectations, "a library scenario states what it expects"


@pytest.mark.parametrize("path", IN_PROCESS, ids=[p.stem for p in IN_PROCESS])
async def test_every_library_scenario_passes(path, keys):
    from mesh.scenario.runner import run_scenario

    result = await run_scenario(load_scenario(path), keys=keys)
    failures = [
        f"expect[{v.index}] {v.subject}: expected {v.expected} {v.when}, got {v.actual}"
        for v in result.failures
    ]
    assert result.ok, failures


def test_the_hosts_only_scenarios_are_the_network_ones():
    assert [p.stem for p in HOSTS_ONLY] == ["partition-is-not-a-validation-halt",
                                            "port-80-blocked-proxy-saves-the-day"]


@pytest.mark.parametrize("path", HOSTS_ONLY, ids=[p.stem for p in HOSTS_ONLY])
def test_a_hosts_only_scenario_run_in_process_is_one_line_exit_2(path, capsys):
    from mesh.cli import main

    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run it with --hosts (as root)" in err, err


async def test_the_readme_scenario_example_holds(keys):
    from mesh.scenario.runner import run_scenario

    readme = (LIBRARY.parent / "README.md").read_text()
    example = readme.split("## Scenarios", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = loads_scenario(example, source="README.md")
    assert scenario.name == "revoked-sensor"
    result = await run_scenario(scenario, keys=keys)
    assert result.ok and result.expectations[0].expected == "halted/revoked"


def _judged_off(path: Path) -> bool:
    return any(e.mode == "off" for e in load_scenario(path).expectations)


OFF_FILES = [p for p in FILES if _judged_off(p)]


def test_some_library_scenario_pins_the_validation_off_run():
    assert [p.stem for p in OFF_FILES] == ["a-year-later"]


@pytest.mark.parametrize("path", OFF_FILES, ids=[p.stem for p in OFF_FILES])
async def test_library_scenarios_with_off_expectations_pass_both_ways(path, keys):
    from mesh.scenario.both import BothResult
    from mesh.scenario.runner import run_scenario

    scenario = load_scenario(path)
    both = BothResult(on=await run_scenario(scenario, keys=keys),
                      off=await run_scenario(scenario, keys=keys, validation="off"))
    assert both.ok, [f"expect[{v.index}] [{v.mode}] {v.subject}: expected {v.expected} {v.when}, "
                     f"got {v.actual}" for v in both.failures]


async def test_the_readme_validation_both_example_is_what_mesh_prints(keys):
    from mesh.scenario.both import BothResult
    from mesh.scenario.report import render_both_plain
    from mesh.scenario.runner import run_scenario

    readme = (LIBRARY.parent / "README.md").read_text()
    example = readme.split("mesh run --validation both scenarios/a-year-later.toml", 1)[1]
    shown = example.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    scenario = load_scenario(LIBRARY / "a-year-later.toml")
    both = BothResult(on=await run_scenario(scenario, keys=keys),
                      off=await run_scenario(scenario, keys=keys, validation="off"))
    printed = render_both_plain(both).splitlines()
    table = printed[printed.index(shown[0]):]
    assert shown == table
